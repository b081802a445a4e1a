"""`tracker tiles export DIR`: the tiled log as static files. Checked against the live /tlog/ API and the
independent layout in tests/c2sp/ref.py, then served by a plain static file server (Python's http.server)
that a mirror copies and verifies the ledger from -- the claim that a CDN or static host can serve it."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.c2sp import ref
from tests.conftest import T0, fixed_key
from tests.web.test_tiles import ORIGIN, _client, _entries, _grow
from tracker.checkpoint import verify_checkpoint
from tracker.errors import InvalidInput
from tracker.ledger import Ledger
from tracker.mirror import Mirror
from tracker.store import open_store
from tracker.tiles_export import export_tiles
from web.mirror_cli import HttpTileSource


@pytest.fixture
def world(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    admin = fixed_key("tiles-admin")
    ledger = Ledger.create(store, origin=ORIGIN, ledger_key=fixed_key("tiles-ledger"), admin_key=admin, now=T0)
    yield ledger, admin
    store.close()


@pytest.fixture
def static_host(tmp_path):
    """A plain static file server over a directory (no Waybill code on the serving side)."""
    root = tmp_path / "www"
    (root / "tlog").mkdir(parents=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root / "tlog", f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test output stays readable
        pass


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_export_is_byte_for_byte_the_live_tiles_and_the_reference_layout(world, tmp_path) -> None:
    ledger, admin = world
    _grow(ledger, admin, 700)
    out = tmp_path / "export"
    result = export_tiles(ledger, out)
    client = _client(ledger)
    files = _files(out)
    assert files.pop("checkpoint") == client.get("/tlog/checkpoint").data
    cp = verify_checkpoint((out / "checkpoint").read_bytes(), ledger.note_verifier, origin=ORIGIN)
    assert result.size == cp.size == 700
    entries = _entries(ledger)[:cp.size]
    hashes = [ref.leaf(e) for e in entries]
    expected = {ref.tile_path(level, index, width): ref.tile_hashes(level, index, hashes, width or 256)
                for level, index, width in ref.tiles_for_size(cp.size)}
    for index in range((cp.size + 255) // 256):
        width = min(256, cp.size - index * 256)
        expected[ref.tile_path("entries", index, None if width == 256 else width)] = \
            ref.entry_bundle(entries[index * 256:index * 256 + width])
    assert files == expected  # every tile the spec requires, nothing else (no temporary files left)
    for path, data in files.items():
        assert client.get("/tlog/" + path).data == data


def test_a_mirror_copies_the_ledger_from_a_static_host_and_follows_re_exports(world, static_host, tmp_path) -> None:
    ledger, admin = world
    tlog, base = static_host
    _grow(ledger, admin, 300)
    export_tiles(ledger, tlog)
    mirror = Mirror(open_store(f"sqlite:///{tmp_path / 'mirror.db'}"), log=ledger.note_verifier,
                    name="mirror.test/static", key=fixed_key("static-mirror"))
    source = HttpTileSource(base + "/tlog")
    assert mirror.sync(source).size == ledger.size()
    # More entries cross a tile boundary: the re-export writes only what is new, replaces the partial tiles
    # whose full tile now exists, and the mirror follows with a consistency check.
    partial_before = sorted(p.name for p in (tlog / "tile" / "entries").rglob("*") if p.parent.name.endswith(".p"))
    assert partial_before == ["44"]  # 300 = 256 + 44
    _grow(ledger, admin, 600)
    again = export_tiles(ledger, tlog)
    assert again.kept >= 2 and again.removed >= 2  # tile 0/000 and bundle 000 kept; the .p/44 of index 001 gone
    assert not (tlog / "tile" / "entries" / "001.p" / "44").exists() and (tlog / "tile" / "entries" / "001").is_file()
    assert mirror.sync(source).size == ledger.size() == 600
    # A re-run with nothing new writes only the checkpoint.
    assert export_tiles(ledger, tlog).written == 0
    mirror.store.close()


def test_an_export_of_another_history_or_a_larger_tree_is_refused(world, tmp_path) -> None:
    """Attack this stops: an operator (or a mistake) pointing the export at a directory that holds another
    history signed with the same key -- a split view -- or a larger tree; mixing in would leave immutable tiles
    of one history under the checkpoint of another."""
    ledger, admin = world
    _grow(ledger, admin, 50)
    out = tmp_path / "export"
    export_tiles(ledger, out)
    # another ledger under the same key and origin, whose history differs from entry 1 on
    other_store = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    other = Ledger.create(other_store, origin=ORIGIN, ledger_key=fixed_key("tiles-ledger"),
                          admin_key=fixed_key("someone-else"), now=T0)
    with pytest.raises(InvalidInput) as diverged:
        export_tiles(other, out)
    assert diverged.value.code == "export_ahead"  # 50 entries there, 1 here
    _grow(other, fixed_key("someone-else"), 80)
    with pytest.raises(InvalidInput) as split:
        export_tiles(other, out)
    assert split.value.code == "export_diverged"
    # a directory holding a different log's checkpoint
    foreign_store = open_store(f"sqlite:///{tmp_path / 'foreign.db'}")
    foreign = Ledger.create(foreign_store, origin="elsewhere.test/log", ledger_key=fixed_key("foreign"),
                            admin_key=admin, now=T0)
    with pytest.raises(InvalidInput) as alien:
        export_tiles(foreign, out)
    assert alien.value.code == "foreign_export"
    assert verify_checkpoint((out / "checkpoint").read_bytes(), ledger.note_verifier).size == 50  # untouched
    other_store.close()
    foreign_store.close()


def test_the_command_line_exports_and_refuses_with_exit_1(tmp_path, monkeypatch) -> None:
    from tracker.cli import cli
    from tracker.config import load_config
    from tracker.home import init

    home = tmp_path / "home"
    monkeypatch.setenv("WAYBILL_HOME", str(home))
    monkeypatch.delenv("WAYBILL_DATABASE_URL", raising=False)
    init(load_config(), now=T0)
    runner = CliRunner()
    out = tmp_path / "www"
    r = runner.invoke(cli, ["tiles", "export", str(out)])
    assert r.exit_code == 0, r.output
    assert "exported checkpoint of 1 entries" in r.output and (out / "checkpoint").is_file()
    (out / "checkpoint").write_text("not a checkpoint\n")
    r = runner.invoke(cli, ["tiles", "export", str(out)])
    assert r.exit_code == 1 and "foreign_export" in r.output
