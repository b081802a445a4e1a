"""A mirror copies a ledger through its tiles, verifies it, cosigns it and answers the same lookups; it stops
on an edited entry, a rollback or a split view (two ledgers with the same key and different histories)."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.c2sp.procs import free_port
from tests.conftest import T0, fixed_key
from tests.web.conftest import commission, make_app
from tracker import provenance
from tracker.cosignature import cosigner_vkey, open_cosigned_checkpoint, parse_cosigner_vkey
from tracker.cosigning import cosigned_note
from tracker.errors import IntegrityError, VerificationError
from tracker.identifiers import parse_code
from tracker.ledger import Ledger
from tracker.mirror import Mirror, SplitView
from tracker.policy import parse_policy
from tracker.store import open_store
from web.mirror_cli import HttpTileSource

MIRROR_KEY = fixed_key("mirror-1")


class Served:
    def __init__(self, ledger: Ledger) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, make_app(ledger, WAYBILL_WITNESSING="0"), threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def tiles(self) -> HttpTileSource:
        return HttpTileSource(f"http://127.0.0.1:{self.port}/tlog")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(ledger):
    s = Served(ledger)
    yield s
    s.close()


def new_mirror(tmp_path: Path, ledger: Ledger, name: str = "m.db", **kw) -> Mirror:
    store = open_store(f"sqlite:///{tmp_path / name}")
    return Mirror(store, log=ledger.note_verifier, name="mirror.test/m1", key=MIRROR_KEY, **kw)


def test_mirror_copies_verifies_cosigns_and_answers_the_same_lookups(ledger, served, world, tmp_path) -> None:
    m = new_mirror(tmp_path, ledger)
    result = m.sync(served.tiles)
    assert (result.old_size, result.size) == (0, ledger.size())
    copy = m.ledger()
    report = copy.audit()  # the copy passes the full audit on its own
    assert report.entries == ledger.size() and report.root_hash == ledger.verified_checkpoint().root_hash
    for item in world.items.values():
        key = parse_code(item)
        assert provenance.lookup(copy, key).to_json() == provenance.lookup(ledger, key).to_json()
    cc = open_cosigned_checkpoint(cosigned_note(copy), ledger.note_verifier,
                                  [parse_cosigner_vkey(cosigner_vkey("mirror.test/m1", MIRROR_KEY.public_key))])
    assert cc.cosigners == ("mirror.test/m1",) and cc.checkpoint.size == ledger.size()
    # the source grows; the next sync copies only what is new
    client = make_app(ledger, WAYBILL_WITNESSING="0").test_client()
    assert client.post("/api/v1/events", json=commission(["MIR-1", "MIR-2"]).to_json()).status_code == 201
    again = m.sync(served.tiles)
    assert (again.old_size, again.size) == (result.size, ledger.size())
    assert m.ledger().audit().root_hash == ledger.verified_checkpoint().root_hash
    assert m.sync(served.tiles).size == again.size  # nothing new: nothing changes
    # the copy is read-only
    mirror_client = make_app(m.ledger(), WAYBILL_WITNESSING="0").test_client()
    r = mirror_client.post("/api/v1/events", json=commission(["MIR-3"]).to_json())
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "read_only"


def test_a_single_edited_entry_stops_the_mirror(ledger, served, tmp_path) -> None:
    db = Path(ledger.store.url.split("///", 1)[1])
    with sqlite3.connect(db) as conn:
        (data,) = conn.execute("SELECT leaf_data FROM entries WHERE leaf_index = 7").fetchone()
        edited = bytes(data).replace(b'"sig":"', b'"sig":"A', 1) if b'"sig":"' in bytes(data) else bytes(data) + b" "
        conn.execute("UPDATE entries SET leaf_data = ? WHERE leaf_index = 7", (edited,))
    m = new_mirror(tmp_path, ledger)
    with pytest.raises(IntegrityError) as exc:
        m.sync(served.tiles)
    assert "entry 7 " in exc.value.message and "edited" in exc.value.message
    assert m.size() == 0  # nothing of the failed step was kept


def _other_history(tmp_path: Path, ledger: Ledger, extra: int) -> Ledger:
    """A second ledger with the same origin and the same key, but its own history."""
    store = open_store(f"sqlite:///{tmp_path / 'fork.db'}")
    from datetime import datetime, timezone

    from tests.web.conftest import admin_party

    fork = Ledger.create(store, origin=ledger.origin, ledger_key=fixed_key("ledger"), admin_key=fixed_key("admin"),
                         now=T0.replace(second=1))
    for i in range(extra):
        fork.append(admin_party(f"fork-party-{i}", roles=["retailer"]), now=datetime.now(timezone.utc))
    return fork


def test_a_split_view_stops_the_mirror(ledger, served, tmp_path) -> None:
    m = new_mirror(tmp_path, ledger)
    m.sync(served.tiles)
    size = m.size()
    for extra in (size + 3, 2):  # a longer and a shorter other history, both signed by the log's key
        fork = _other_history(tmp_path / f"f{extra}", ledger, extra)
        assert fork.vkey == ledger.vkey and fork.size() != size
        other = Served(fork)
        try:
            with pytest.raises(SplitView) as exc:
                m.sync(other.tiles)
            assert "history" in exc.value.message or "rolled back" in exc.value.message
        finally:
            other.close()
            fork.store.close()
    assert m.size() == size and m.ledger().audit().entries == size


def test_mirror_with_a_policy_waits_for_the_witness_quorum(ledger, served, tmp_path) -> None:
    from tests.c2sp import ref

    policy = parse_policy(f"log {ledger.vkey}\nwitness w1 {ref.vkey('w1.test/w', 4, fixed_key('w1').public_key)}\n"
                          "quorum w1\n")
    m = new_mirror(tmp_path, ledger, policy=policy)
    with pytest.raises(VerificationError) as exc:
        m.sync(served.tiles)
    assert exc.value.code == "quorum_not_met" and m.size() == 0
