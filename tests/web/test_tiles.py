"""The ledger through the C2SP tlog-tiles read API, checked against an independent implementation of the
tile layout (tests/c2sp/ref.py: the spec's formula MTH(D[(n*256+i)*256^l : ...]) computed from the entries
themselves, and the spec's path encoding)."""
from __future__ import annotations

import gzip
import struct

import pytest

from tests.c2sp import ref
from tests.conftest import T0, fixed_key
from tracker.checkpoint import parse_vkey, verify_checkpoint
from tracker.ledger import Ledger
from tracker.signing import party_statement, sign_statement
from tracker.statements import format_time
from tracker.store import open_store
from tracker.tiles import parse_tile_path, tile_path
from web import create_app

ORIGIN = "tiles.test/ledger"
MAKER = fixed_key("tiles-maker")


def _grow(ledger: Ledger, admin, target: int) -> None:
    """Grow the ledger to ``target`` entries with commission statements by a registered manufacturer, stored
    through import_envelopes (the bytes are real signed envelopes; admission is not what is tested here)."""
    from datetime import timedelta

    from tracker.signing import new_statement

    when = T0 + timedelta(seconds=1)
    try:
        ledger.party("tiles-mk")
    except Exception:
        doc = party_statement(admin="admin", time=when, location={"name": "HQ", "country": "DE"},
                              party_id="tiles-mk", name="Tiles maker", country="DE", roles=["manufacturer"],
                              keys=[{"public_key": MAKER.public_key_b64, "not_before": format_time(when)}],
                              gs1_prefixes=["950600"])
        ledger.append(sign_statement(doc, admin), now=T0 + timedelta(minutes=1))
    while ledger.size() < target:
        base = ledger.size()
        batch = [sign_statement(new_statement("commission", actor="tiles-mk", time=when,
                                              location={"name": "Plant", "country": "DE"},
                                              items=[f"01/09506000134352/21/T{base + k}"],
                                              product={"gtin": "09506000134352", "name": "Tile widget"}), MAKER)
                 for k in range(min(1000, target - base))]
        results = ledger.import_envelopes(batch, now=T0 + timedelta(minutes=1))
        assert not [r for r in results if isinstance(r, Exception)], results[:3]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiles") / "ledger.db"
    store = open_store(f"sqlite:///{path}")
    admin = fixed_key("tiles-admin")
    ledger = Ledger.create(store, origin=ORIGIN, ledger_key=fixed_key("tiles-ledger"), admin_key=admin, now=T0)
    yield ledger, admin
    store.close()


def _client(ledger):
    return create_app({"LEDGER": ledger, "TESTING": True, "RATELIMIT_ENABLED": False}).test_client()


def _entries(ledger: Ledger) -> list[bytes]:
    with ledger.store.read() as txn:
        return [e.leaf_data for e in txn.iter_entries()]


def test_path_encoding_matches_the_spec() -> None:
    for level, index, width in [(0, 0, None), (0, 1234067, None), (3, 999, 17), (None, 1000, 5), (63, 10**9, None)]:
        mine = tile_path(level, index, width)
        assert mine == ref.tile_path("entries" if level is None else level, index, width)
        back = parse_tile_path(mine.split("/", 1)[1])
        assert (back.level, back.index, back.width) == (level, index, width)
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    for bad in ["0/1", "0/0001", "0/x000/001", "0/001.p/0", "0/001.p/256", "0/001.p/01", "64/000", "01/000",
                "entries/x1/000", "0/000/", "-1/000", "0/abc"]:
        with pytest.raises(Exception):
            parse_tile_path(bad)


@pytest.mark.parametrize("size", [1, 255, 256, 257, 700, pytest.param(65_793, marks=pytest.mark.slow)])
def test_every_tile_matches_the_reference_layout(world, size: int) -> None:
    ledger, admin = world
    _grow(ledger, admin, size)
    client = _client(ledger)
    note = client.get("/tlog/checkpoint").get_data(as_text=True)
    cp = verify_checkpoint(note, parse_vkey(ledger.vkey), origin=ORIGIN)
    entries = _entries(ledger)[:cp.size]
    hashes = [ref.leaf(e) for e in entries]
    assert ref.mth(hashes) == cp.root_hash
    # level-0 and higher tiles, full and partial, exactly as the spec lays them out
    for level, index, width in ref.tiles_for_size(cp.size):
        r = client.get("/tlog/" + ref.tile_path(level, index, width))
        assert r.status_code == 200, (level, index, width, r.get_data(as_text=True))
        assert r.data == ref.tile_hashes(level, index, hashes, width or 256), (level, index, width)
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert "immutable" in r.headers["Cache-Control"]
    # entry bundles: uint16 length-prefixed entries, each hashing to the level-0 tile's hash
    for index in range((cp.size + 255) // 256):
        width = min(256, cp.size - index * 256)
        r = client.get("/tlog/" + ref.tile_path("entries", index, None if width == 256 else width))
        assert r.status_code == 200
        assert r.data == ref.entry_bundle(entries[index * 256:index * 256 + width])
    # nothing beyond the signed size, no partial tile of a width the tree does not have yet, no empty tile
    full, rest = divmod(cp.size, 256)
    assert client.get("/tlog/" + ref.tile_path(0, full + 1)).status_code == 404
    assert client.get("/tlog/" + ref.tile_path(0, full, rest + 1 if rest < 255 else None)).status_code == 404
    assert client.get("/tlog/" + ref.tile_path("entries", full + 1)).status_code == 404


def test_gzip_and_errors(world) -> None:
    ledger, admin = world
    _grow(ledger, admin, 300)
    client = _client(ledger)
    plain = client.get("/tlog/tile/entries/000").data
    zipped = client.get("/tlog/tile/entries/000", headers={"Accept-Encoding": "gzip, identity"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data) == plain
    (n,) = struct.unpack(">H", plain[:2])
    assert plain[2:2 + n] == _entries(ledger)[0]
    r = client.get("/tlog/tile/0/not-a-tile")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_tile_path"
    cp = client.get("/tlog/checkpoint")
    assert cp.headers["Cache-Control"] == "public, max-age=2"
    assert cp.get_data(as_text=True) == client.get("/api/v1/checkpoint").get_data(as_text=True)
