"""`ledger_integrity_failure` as a consumer sees it (SPEC §4): someone with access to the database — not to the
ledger's signing key — edits, deletes, swaps or inserts rows, or swaps in a checkpoint signed by another key.
The lookup of an item whose history was touched must answer `likely_counterfeit` with reason
`ledger_integrity_failure` (naming the touched event where there still is one), while an item whose history
was not touched keeps its `genuine` answer.

One ledger is built per module from the scenario library (two genuine items on the same network) and copied
for each attack; the attacks use the stdlib sqlite3 module on the SQLite file, as an attacker would.
"""
from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracker.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from tracker.keys import generate_keypair
from tracker.ledger import Ledger
from tracker.provenance import COMPLETENESS_TTL, lookup
from tracker.scenarios import Network, load_scenarios, party_key
from tracker.signing import new_statement, sign_statement
from tracker.store import open_store

START = datetime(2026, 2, 2, 6, 0, tzinfo=timezone.utc)
ORIGIN = "waybill.test/ledger"
SCENARIOS = {s.name: s for s in load_scenarios()}


def _network(url: str) -> Network:
    admin = party_key("admin", seed="integrity")
    ledger = Ledger.create(open_store(url), origin=ORIGIN, ledger_key=party_key("ledger", seed="integrity"),
                           admin_key=admin, now=START)
    return Network(ledger, admin_key=admin, start=START, seed="integrity")


def _play(net: Network) -> tuple[str, str]:
    """The item under attack (genuine-cross-border) and a bystander (genuine-sold), both genuine."""
    target = SCENARIOS["genuine-cross-border"].play(net, n="T")
    bystander = SCENARIOS["genuine-sold"].play(net, n="B")
    return target, bystander


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, str, str]:
    db = tmp_path_factory.mktemp("integrity") / "ledger.db"
    net = _network(f"sqlite:///{db}")
    target, bystander = _play(net)
    net.ledger.store.close()
    return db, target, bystander


class Victim:
    """A private copy of the built ledger, a read-only Ledger on it (as the web app or `tracker lookup` has),
    and raw sqlite3 access for the attacker."""

    def __init__(self, db: Path, target: str, bystander: str) -> None:
        self.db, self.target, self.bystander = db, target, bystander
        self.store = open_store(f"sqlite:///{db}")
        self.ledger = Ledger(self.store)

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                return conn.execute(query, args).fetchall()
        finally:
            conn.close()

    def entries(self, key: str) -> list[tuple[int, str, bytes]]:
        """(leaf_index, event_id, leaf_data) of the entries the key index names for ``key``, in leaf order."""
        rows = self.sql("SELECT e.leaf_index, e.event_id, e.leaf_data FROM entries e JOIN key_events k "
                        "ON k.leaf_index = e.leaf_index WHERE k.key = ? ORDER BY e.leaf_index", (key,))
        return [(i, eid, bytes(data)) for i, eid, data in rows]

    def entry(self, key: str, stype: str, nth: int = 0) -> tuple[int, str, bytes]:
        found = [r for r in self.entries(key) if _statement(r[2])["type"] == stype]
        return found[nth]

    def tree_size(self) -> int:
        return self.sql("SELECT MAX(leaf_index) + 1 FROM entries")[0][0]


@pytest.fixture
def victim(template, tmp_path) -> Victim:
    src_db, target, bystander = template
    db = tmp_path / "ledger.db"
    src, dst = sqlite3.connect(src_db), sqlite3.connect(db)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    v = Victim(db, target, bystander)
    for key in (target, bystander):  # the baseline: both items are genuine before the attack
        answer = lookup(v.ledger, key)
        assert answer.verdict == "genuine", (key, answer.to_json()["reasons"])
    yield v
    v.store.close()


# --- helpers --------------------------------------------------------------------------------------------

def _statement(leaf_data: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(leaf_data)["payload"]))


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _with_payload(leaf_data: bytes, change) -> tuple[bytes, str]:
    """The envelope with its statement changed by ``change`` (signatures kept), in canonical form; and the
    event id the changed payload would have."""
    env = json.loads(leaf_data)
    st = json.loads(base64.b64decode(env["payload"]))
    change(st)
    payload = _canonical(st)
    env["payload"] = base64.b64encode(payload).decode()
    return _canonical(env), "sha256:" + hashlib.sha256(payload).hexdigest()


def _integrity_reasons(answer) -> list:
    return [r for r in answer.reasons if r.code == "ledger_integrity_failure"]


def assert_flagged(v: Victim, *event_ids: str, key: str | None = None) -> list:
    """The touched item is likely_counterfeit for a ledger integrity failure naming ``event_ids``."""
    answer = lookup(v.ledger, key or v.target)
    reasons = _integrity_reasons(answer)
    assert answer.verdict == "likely_counterfeit", answer.to_json()["reasons"]
    assert reasons, f"no ledger_integrity_failure among {[r.code for r in answer.reasons]}"
    assert all(r.severity == "critical" and r.message for r in reasons)
    named = {r.event_id for r in reasons}
    for eid in event_ids:
        assert eid in named, f"{eid} not named; integrity reasons name {named}"
    return reasons


def assert_bystander_genuine(v: Victim) -> None:
    answer = lookup(v.ledger, v.bystander)
    assert answer.verdict == "genuine", answer.to_json()["reasons"]
    assert not _integrity_reasons(answer)


# --- (a) an entry's leaf_data edited ----------------------------------------------------------------------

def _relabel_lot(st: dict) -> None:
    st["product"]["lot"] = "L2026-99"


def test_edited_leaf_data_is_flagged(victim):
    index, event_id, data = victim.entry(victim.target, "commission")
    forged, _ = _with_payload(data, _relabel_lot)
    assert json.loads(forged)["signatures"] == json.loads(data)["signatures"]
    victim.sql("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (forged, index))
    assert_flagged(victim, event_id)
    assert_bystander_genuine(victim)


def test_edited_leaf_data_with_matching_event_id_column_is_flagged(victim):
    """A more careful attacker also rewrites the event_id column so the row is self-consistent."""
    index, event_id, data = victim.entry(victim.target, "inspect")

    def hold(st: dict) -> None:
        st["note"] = "checked twice"

    forged, new_id = _with_payload(data, hold)
    victim.sql("UPDATE entries SET leaf_data = ?, event_id = ? WHERE leaf_index = ?", (forged, new_id, index))
    reasons = assert_flagged(victim, new_id)
    answer = lookup(victim.ledger, victim.target)
    assert new_id in [p["event_id"] for p in answer.path]
    assert any(r.event_id == new_id for r in reasons)
    assert_bystander_genuine(victim)


def test_edited_time_of_an_event_is_flagged(victim):
    """Back-dating the receive so the border crossing looks faster: still the signed bytes were changed."""
    index, event_id, data = victim.entry(victim.target, "receive", 1)

    def backdate(st: dict) -> None:
        when = datetime.fromisoformat(st["time"].replace("Z", "+00:00")) - timedelta(days=10)
        st["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")

    forged, _ = _with_payload(data, backdate)
    victim.sql("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (forged, index))
    assert_flagged(victim, event_id)
    assert_bystander_genuine(victim)


# --- (b) an entry row deleted -------------------------------------------------------------------------

def test_deleted_entry_row_is_flagged(victim):
    index, event_id, _ = victim.entry(victim.target, "receive", 1)
    victim.sql("DELETE FROM entries WHERE leaf_index = ?", (index,))
    reasons = assert_flagged(victim)
    assert any(str(index) in r.message for r in reasons), [r.message for r in reasons]
    answer = lookup(victim.ledger, victim.target)
    assert event_id not in [p["event_id"] for p in answer.path]
    assert_bystander_genuine(victim)


def test_deleted_entry_and_its_index_rows_is_not_genuine(victim):
    """An attacker who also removes the key-index rows leaves a hole in the prev chain: the consumer must not be
    told `genuine`."""
    index, event_id, _ = victim.entry(victim.target, "receive", 0)
    victim.sql("DELETE FROM entries WHERE leaf_index = ?", (index,))
    victim.sql("DELETE FROM key_events WHERE leaf_index = ?", (index,))
    answer = lookup(victim.ledger, victim.target)
    assert answer.verdict == "likely_counterfeit", answer.to_json()["reasons"]
    assert_bystander_genuine(victim)


def test_erased_sale_at_the_end_of_the_ledger_is_flagged(victim):
    """The sale of an item is the newest leaf; the attacker deletes it and its key-index rows so the code looks
    unsold (ready to be reused on a copy). The latest signed checkpoint still covers that leaf, so the ledger
    provably lacks an entry: the lookup must not call the item genuine and still on the shelf."""
    index, event_id, data = victim.entries(victim.bystander)[-1]
    assert _statement(data)["type"] == "sell" and index == victim.tree_size() - 1
    assert lookup(victim.ledger, victim.bystander).holder is None  # sold
    victim.sql("DELETE FROM entries WHERE leaf_index = ?", (index,))
    victim.sql("DELETE FROM key_events WHERE leaf_index = ?", (index,))
    answer = lookup(victim.ledger, victim.bystander)
    assert answer.verdict == "likely_counterfeit", (answer.verdict, answer.holder, answer.to_json()["reasons"])
    assert _integrity_reasons(answer)


def test_erased_last_event_mid_ledger_is_flagged(victim):
    """The same erasure of an item's last event (here its final receipt) when it is not the newest leaf: the
    item's own history still looks whole (in transit) and the highest leaf index still matches the checkpoint. Only the number of stored leaves below the signed size
    shows the hole, and a ledger with a hole vouches for no item's history."""
    index, _, data = victim.entries(victim.target)[-1]
    assert _statement(data)["type"] == "receive" and index < victim.tree_size() - 1
    victim.sql("DELETE FROM entries WHERE leaf_index = ?", (index,))
    victim.sql("DELETE FROM key_events WHERE leaf_index = ?", (index,))
    reader = Ledger(victim.store)  # a process that starts after the erasure (the victim's own caches a match 1 s)
    for key in (victim.target, victim.bystander):
        answer = lookup(reader, key)
        assert answer.verdict == "likely_counterfeit", (key, answer.verdict, answer.to_json()["reasons"])
        assert _integrity_reasons(answer)
    time.sleep(COMPLETENESS_TTL)  # and the long-running reader sees it once its remembered match has lapsed
    assert lookup(victim.ledger, victim.target).verdict == "likely_counterfeit"


# --- (c) two entries' leaf_data swapped ------------------------------------------------------------------

def test_swapped_leaf_data_is_flagged(victim):
    (i1, e1, d1) = victim.entry(victim.target, "ship", 0)
    (i2, e2, d2) = victim.entry(victim.target, "ship", 1)
    victim.sql("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (d2, i1))
    victim.sql("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (d1, i2))
    assert_flagged(victim, e1, e2)
    assert_bystander_genuine(victim)


def test_swapped_whole_rows_are_flagged(victim):
    """Reordering history: every column of two rows exchanged, so each row is self-consistent."""
    cols = "event_id, type, actor, time, leaf_data"
    (i1, e1, _), (i2, e2, _) = victim.entry(victim.target, "ship", 0), victim.entry(victim.target, "inspect")
    r1 = victim.sql(f"SELECT {cols} FROM entries WHERE leaf_index = ?", (i1,))[0]
    r2 = victim.sql(f"SELECT {cols} FROM entries WHERE leaf_index = ?", (i2,))[0]
    victim.sql("UPDATE entries SET event_id = 'tmp' WHERE leaf_index = ?", (i1,))
    setter = "UPDATE entries SET event_id = ?, type = ?, actor = ?, time = ?, leaf_data = ? WHERE leaf_index = ?"
    victim.sql(setter, (*r1, i2))
    victim.sql(setter, (*r2, i1))
    assert_flagged(victim, e1, e2)
    assert_bystander_genuine(victim)


# --- (d) a row appended outside the ledger ------------------------------------------------------------

def test_row_beyond_the_last_checkpoint_is_flagged(victim):
    """A properly signed statement (a stolen device key) written straight into the tables: no checkpoint
    covers it."""
    head_id = victim.entries(victim.target)[-1][1]
    last_time = _statement(victim.entries(victim.target)[-1][2])["time"]
    when = datetime.fromisoformat(last_time.replace("Z", "+00:00")) + timedelta(hours=3)
    doc = new_statement("sell", actor="berlin-shop", time=when, location={"name": "Berlin Retail", "country": "DE"},
                        prev={victim.target: head_id}, items=[victim.target])
    env = sign_statement(doc, party_key("berlin-shop", 0, seed="integrity"))
    index = victim.tree_size()
    victim.sql("INSERT INTO entries (leaf_index, event_id, type, actor, time, leaf_data, ingested_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (index, env.event_id, "sell", "berlin-shop", doc["time"], env.leaf_data(), doc["time"]))
    victim.sql("INSERT INTO key_events (key, leaf_index) VALUES (?, ?)", (victim.target, index))
    answer = lookup(victim.ledger, victim.target)
    assert env.event_id in [p["event_id"] for p in answer.path]
    reasons = assert_flagged(victim, env.event_id)
    assert [r.event_id for r in reasons] == [env.event_id]  # the rest of the history is intact
    assert_bystander_genuine(victim)


# --- (e) the checkpoint replaced ------------------------------------------------------------------------

def _latest_checkpoint(v: Victim) -> tuple[int, bytes, str]:
    size, root, note = v.sql("SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1")[0]
    return size, bytes(root), note


def test_checkpoint_signed_by_another_key_is_flagged(victim):
    size, root, note = _latest_checkpoint(victim)
    forged = sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root_hash=root), name=ORIGIN,
                             key=generate_keypair())
    assert forged != note and forged.split("\n")[:3] == note.split("\n")[:3]
    victim.sql("UPDATE checkpoints SET note = ? WHERE size = ?", (forged, size))
    assert_flagged(victim)
    # without a checkpoint the ledger's key vouches for, nothing can be vouched for
    other = lookup(victim.ledger, victim.bystander)
    assert other.verdict == "likely_counterfeit"
    assert _integrity_reasons(other)


def test_forged_checkpoint_over_an_appended_row_is_flagged(victim):
    """The attacker appends a row, recomputes the root and signs a new checkpoint for it with their own key."""
    from tracker import merkle

    index, _, data = victim.entry(victim.target, "receive", 2)
    forged_data, new_id = _with_payload(data, lambda st: st.update(time=st["time"][:-3] + "59Z"))
    size = victim.tree_size()
    victim.sql("INSERT INTO entries (leaf_index, event_id, type, actor, time, leaf_data, ingested_at) "
               "VALUES (?, ?, 'receive', 'berlin-shop', '2026-01-01T00:00:00Z', ?, '2026-01-01T00:00:00Z')",
               (size, new_id, forged_data))
    victim.sql("INSERT INTO key_events (key, leaf_index) VALUES (?, ?)", (victim.target, size))
    leaves = [merkle.leaf_hash(bytes(d)) for (d,) in victim.sql("SELECT leaf_data FROM entries ORDER BY leaf_index")]
    frontier = merkle.CompactRange()
    for h in leaves:
        frontier.append(h)
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=size + 1, root_hash=frontier.root()), name=ORIGIN,
                           key=generate_keypair())
    victim.sql("INSERT INTO checkpoints (size, root_hash, note, created_at) VALUES (?, ?, ?, ?)",
               (size + 1, frontier.root(), note, "2026-01-01T00:00:00Z"))
    assert_flagged(victim)


def test_intact_checkpoint_still_verifies_under_the_ledger_key(victim):
    """Control: the stored checkpoint of an untouched ledger verifies, so the failures above are the attacks."""
    _, _, note = _latest_checkpoint(victim)
    cp = verify_checkpoint(note, victim.ledger.note_verifier, origin=ORIGIN)
    assert cp.size == victim.tree_size()


# --- (a) on PostgreSQL ----------------------------------------------------------------------------------

@pytest.mark.postgres
def test_edited_leaf_data_is_flagged_on_postgres(postgres_url):
    import sqlalchemy as sa

    net = _network(postgres_url)
    target, bystander = _play(net)
    ledger = net.ledger
    try:
        assert lookup(ledger, target).verdict == "genuine"
        engine = sa.create_engine(postgres_url)
        try:
            with engine.begin() as conn:
                index, event_id, data = conn.execute(sa.text(
                    "SELECT e.leaf_index, e.event_id, e.leaf_data FROM entries e JOIN key_events k "
                    "ON k.leaf_index = e.leaf_index WHERE k.key = :key AND e.type = 'commission'"),
                    {"key": target}).one()
                forged, _ = _with_payload(bytes(data), _relabel_lot)
                conn.execute(sa.text("UPDATE entries SET leaf_data = :d WHERE leaf_index = :i"),
                             {"d": forged, "i": index})
        finally:
            engine.dispose()
        answer = lookup(ledger, target)
        assert answer.verdict == "likely_counterfeit"
        assert event_id in {r.event_id for r in answer.reasons if r.code == "ledger_integrity_failure"}
        assert lookup(ledger, bystander).verdict == "genuine"
    finally:
        ledger.store.close()


# --- remembered inclusion proofs --------------------------------------------------------------------------

def test_a_leaf_proven_before_the_ledger_grew_is_proven_again_after_an_edit(victim):
    """Lookups remember which leaves were proven included and carry them to the next checkpoint with one
    consistency proof. The attacker waits until the target's events are remembered and the ledger has grown,
    then edits one: its leaf hash no longer matches what was proven, so it is proven again -- and fails."""
    writer = Ledger(victim.store, signing_key=party_key("ledger", seed="integrity"))
    net = Network(writer, admin_key=party_key("admin", seed="integrity"), start=START + timedelta(days=30),
                  seed="integrity")
    net.add_party("late-comer", name="Late Comer", country="DE", roles=["retailer"])
    answer = lookup(victim.ledger, victim.target)  # proofs carried forward to the grown tree
    assert answer.verdict == "genuine" and answer.tree_size == victim.tree_size()
    index, event_id, data = victim.entry(victim.target, "commission")
    forged, _ = _with_payload(data, _relabel_lot)
    victim.sql("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (forged, index))
    assert_flagged(victim, event_id)
    assert_bystander_genuine(victim)


def test_a_tampered_node_on_the_consistency_path_carries_nothing_over(victim):
    """The attacker edits the stored node that covers the target's leaves in the old tree, which the
    consistency proof to the grown tree reads: the proof fails, the remembered proofs are dropped rather than
    carried over, and the target's leaves are proven afresh from their siblings (still there, so it stays
    genuine). Only what a verified proof showed is ever remembered."""
    from tracker import merkle
    from tracker.provenance import caches_of

    writer = Ledger(victim.store, signing_key=party_key("ledger", seed="integrity"))
    net = Network(writer, admin_key=party_key("admin", seed="integrity"), start=START + timedelta(days=30),
                  seed="integrity")
    before = victim.tree_size()
    caches = caches_of(victim.ledger)
    assert caches.included is not None and caches.included[0] == before
    remembered = dict(caches.included[2])
    net.add_party("late-comer", name="Late Comer", country="DE", roles=["retailer"])
    index, _, _ = victim.entry(victim.target, "commission")
    level, idx = next((lv, i) for lv, i in merkle.frontier_nodes(before) if i << lv <= index < (i + 1) << lv)
    assert (level, idx) in {n for a, b in merkle.consistency_ranges(before, victim.tree_size())
                            for n in merkle.range_nodes(a, b)} or level == (before.bit_length() - 1)
    victim.sql("UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?", (bytes(32), level, idx))
    answer = lookup(victim.ledger, victim.target)
    assert answer.verdict == "genuine", answer.to_json()["reasons"]
    size, _, proven = caches.included
    assert size == victim.tree_size()
    bystander_leaves = {i for i, _, _ in victim.entries(victim.bystander)}
    assert bystander_leaves <= set(remembered)  # remembered before the attack...
    assert index in proven and not bystander_leaves & set(proven)  # ...and dropped, not carried over
