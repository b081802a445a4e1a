"""Tamper evidence (SPEC §3, §6 `verify`): someone with write access to the database edits rows directly —
with the stdlib sqlite3 module on the SQLite file, with psycopg on PostgreSQL — and the full audit must
refuse the ledger, naming the exact leaf (or checkpoint size) that was touched.

One ledger of 50 entries is built per backend; each test tampers with it, audits with a fresh read-only
handle (as `tracker verify` would), then the rows are put back and the ledger must audit clean again.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from tests.conftest import PG_URL, T0, _pg_schema_url, fixed_key
from tests.store.helpers import CAST, BuiltLedger, build_ledger, commission_envelope, key_of
from tracker import merkle
from tracker.errors import IntegrityError
from tracker.ledger import AuditReport, Ledger
from tracker.statements import parse_statement
from tracker.store import open_store

SIZE = 50
TABLES = {"entries": "leaf_index", "merkle_nodes": "level, idx", "checkpoints": "size", "key_events": "key, leaf_index",
          "parties": "id", "party_keys": "keyid"}


@dataclass
class Target:
    url: str
    built: BuiltLedger


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request, tmp_path_factory):
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('tamper') / 'ledger.db'}"
    else:
        if not PG_URL:
            pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
        import sqlalchemy as sa

        schema = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = _pg_schema_url(PG_URL, schema)
    store = open_store(url)
    try:
        ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                               admin_key=fixed_key("admin"), now=T0)
        built = build_ledger(ledger, fixed_key("admin"), size=SIZE)
    finally:
        store.close()
    yield Target(url=url, built=built)
    if schema:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


class Attacker:
    """Raw database access, no Waybill code involved. SQL is written with ``?`` placeholders."""

    def __init__(self, url: str) -> None:
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.conn: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)

    def run(self, sql: str, params: tuple = ()) -> Any:
        if not self.is_sqlite:
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, params)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in self.run(sql, params).fetchall()]

    def leaf_data(self, index: int) -> bytes:
        [(data,)] = self.rows("SELECT leaf_data FROM entries WHERE leaf_index = ?", (index,))
        return bytes(data)

    def set_leaf_data(self, index: int, data: bytes) -> None:
        self.run("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (data, index))

    def close(self) -> None:
        self.conn.close()


def fresh_audit(url: str, **kwargs: Any) -> AuditReport:
    store = open_store(url, create=False)
    try:
        return Ledger(store).audit(**kwargs)
    finally:
        store.close()


@pytest.fixture
def attacker(target):
    """Raw access to the target database; afterwards every table is put back as it was, and checked."""
    att = Attacker(target.url)
    saved = {t: (att.rows(f"SELECT * FROM {t} ORDER BY {order}"),
                 [d[0] for d in att.run(f"SELECT * FROM {t} LIMIT 1").description])
             for t, order in TABLES.items()}
    try:
        yield att
    finally:
        att.run("BEGIN")
        for table, (rows, cols) in saved.items():
            att.run(f"DELETE FROM {table}")
            marks = ", ".join("?" for _ in cols)
            for row in rows:
                att.run(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)
        att.run("COMMIT")
        att.close()
    fresh_audit(target.url)  # the restore worked: the next test starts from a clean ledger


# --- the edits ------------------------------------------------------------------------------------

def canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def altered_payload(payload: bytes) -> bytes:
    """Change one byte of the statement — the first letter of its location name — keeping it valid."""
    at = payload.index(b'"name":"', payload.index(b'"location"')) + len(b'"name":"')
    new = payload[:at] + bytes([b"Q"[0] if payload[at] != b"Q"[0] else b"R"[0]]) + payload[at + 1:]
    parse_statement(new)  # still a well-formed statement: only the signature can tell
    return new


def edit_payload_byte(att: Attacker, t: Target) -> None:
    doc = json.loads(att.leaf_data(23))
    doc["payload"] = base64.b64encode(altered_payload(base64.b64decode(doc["payload"]))).decode()
    att.set_leaf_data(23, canonical(doc))


def edit_payload_and_event_id(att: Attacker, t: Target) -> None:
    # Covering tracks: the event_id column is recomputed to match the edited payload.
    doc = json.loads(att.leaf_data(23))
    payload = altered_payload(base64.b64decode(doc["payload"]))
    doc["payload"] = base64.b64encode(payload).decode()
    att.set_leaf_data(23, canonical(doc))
    att.run("UPDATE entries SET event_id = ? WHERE leaf_index = 23", ("sha256:" + hashlib.sha256(payload).hexdigest(),))


def edit_signature(att: Attacker, t: Target) -> None:
    doc = json.loads(att.leaf_data(17))
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[0] ^= 0x80
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    att.set_leaf_data(17, canonical(doc))


def delete_entry(index: int) -> Callable[[Attacker, Target], None]:
    def edit(att: Attacker, t: Target) -> None:
        att.run("DELETE FROM entries WHERE leaf_index = ?", (index,))
    return edit


def swap_leaf_data(att: Attacker, t: Target) -> None:
    a, b = att.leaf_data(10), att.leaf_data(30)
    att.set_leaf_data(10, b)
    att.set_leaf_data(30, a)


def swap_whole_rows(att: Attacker, t: Target) -> None:
    # Reorder consistently: every column moves, so each row still agrees with its own payload.
    att.run("UPDATE entries SET leaf_index = -1 WHERE leaf_index = 10")
    att.run("UPDATE entries SET leaf_index = 10 WHERE leaf_index = 30")
    att.run("UPDATE entries SET leaf_index = 30 WHERE leaf_index = -1")


def append_row(att: Attacker, t: Target) -> None:
    # A genuinely signed statement, written straight into the table (with its leaf node) past the end.
    env = commission_envelope(key_of("acme"), "acme", ["SNEAKED-IN"])
    data = env.leaf_data()
    att.run("INSERT INTO entries (leaf_index, event_id, type, actor, time, leaf_data, ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (SIZE, env.event_id, "commission", "acme", "2026-03-02T09:00:00Z",
                                             data, "2026-03-03T08:00:00Z"))
    att.run("INSERT INTO merkle_nodes (level, idx, hash) VALUES (0, ?, ?)", (SIZE, merkle.leaf_hash(data)))


def change_node(level: int, idx: int) -> Callable[[Attacker, Target], None]:
    def edit(att: Attacker, t: Target) -> None:
        [(h,)] = att.rows("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, idx))
        att.run("UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?",
                (bytes([h[0] ^ 0x01]) + bytes(h[1:]), level, idx))
    return edit


def delete_latest_checkpoint(att: Attacker, t: Target) -> None:
    att.run("DELETE FROM checkpoints WHERE size = ?", (t.built.commit_sizes[-1],))


def mid_checkpoint(t: Target) -> int:
    return t.built.commit_sizes[len(t.built.commit_sizes) // 2]


def change_checkpoint_root_row(att: Attacker, t: Target) -> None:
    att.run("UPDATE checkpoints SET root_hash = ? WHERE size = ?", (bytes(32), mid_checkpoint(t)))


def change_checkpoint_root_everywhere(att: Attacker, t: Target) -> None:
    # Both the row and the root line of the signed note: the note's signature no longer holds.
    size = mid_checkpoint(t)
    [(note,)] = att.rows("SELECT note FROM checkpoints WHERE size = ?", (size,))
    lines = note.split("\n")
    fake = bytes(range(32))
    lines[2] = base64.b64encode(fake).decode()
    att.run("UPDATE checkpoints SET root_hash = ?, note = ? WHERE size = ?", (fake, "\n".join(lines), size))


# --- what the audit must say ----------------------------------------------------------------------

def entry_named(index: int | tuple[int, int]) -> Callable[[str, Target], None]:
    lo, hi = (index, index) if isinstance(index, int) else index

    def check(msg: str, t: Target) -> None:
        found = re.findall(r"\bentr(?:y|ies) (\d+)", msg)
        assert found, f"the message names no entry: {msg}"
        assert lo <= int(found[0]) <= hi, f"expected entry {index}, the message says: {msg}"
    return check


def first_uncovered_entry(msg: str, t: Target) -> None:
    entry_named(t.built.commit_sizes[-2])(msg, t)


def checkpoint_named(msg: str, t: Target) -> None:
    size = mid_checkpoint(t)
    assert re.search(rf"checkpoint\D*\b{size}\b", msg), f"expected checkpoint size {size}, got: {msg}"


CASES = {
    "edit-payload-byte": (edit_payload_byte, entry_named(23)),
    "edit-payload-and-event-id-column": (edit_payload_and_event_id, entry_named(23)),
    "edit-signature-only": (edit_signature, entry_named(17)),
    "delete-first-entry": (delete_entry(0), entry_named(0)),
    "delete-middle-entry": (delete_entry(20), entry_named(20)),
    "delete-last-entry": (delete_entry(SIZE - 1), entry_named(SIZE - 1)),
    "swap-leaf-data": (swap_leaf_data, entry_named(10)),
    "reorder-whole-rows": (swap_whole_rows, entry_named(10)),
    "append-row-outside-the-ledger": (append_row, entry_named(SIZE)),
    "change-leaf-node-hash": (change_node(0, 13), entry_named(13)),
    "change-interior-node-hash": (change_node(2, 3), entry_named((12, 15))),
    "delete-latest-checkpoint": (delete_latest_checkpoint, first_uncovered_entry),
    "change-checkpoint-root-row": (change_checkpoint_root_row, checkpoint_named),
    "change-checkpoint-root-row-and-note": (change_checkpoint_root_everywhere, checkpoint_named),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_and_names_the_leaf(target, attacker, case):
    edit, named = CASES[case]
    edit(attacker, target)
    with pytest.raises(IntegrityError) as info:
        fresh_audit(target.url)
    assert info.value.code == "ledger_integrity_failure"
    named(str(info.value), target)


def test_an_untouched_ledger_audits_clean_with_the_right_counts(target):
    built = target.built
    steps: list[int] = []
    report = fresh_audit(target.url, progress=lambda done, total: steps.append(done))
    assert report.entries == SIZE == len(built.leaf_data)
    assert report.checkpoints == len(built.commit_sizes)
    assert report.parties == 1 + len(CAST)  # admin (genesis) and the cast
    leaves = built.leaf_data

    def mth(xs: list[bytes]) -> bytes:
        if len(xs) == 1:
            return merkle.leaf_hash(xs[0])
        k = 1 << ((len(xs) - 1).bit_length() - 1)
        return merkle.node_hash(mth(xs[:k]), mth(xs[k:]))

    assert report.root_hash == mth(leaves)
    store = open_store(target.url, create=False)
    try:
        assert Ledger(store).verified_checkpoint().root_hash == report.root_hash
    finally:
        store.close()
    assert sum(steps) == SIZE


def test_stored_rows_are_exactly_the_signed_bytes(target, attacker):
    """No re-serialisation: what the signer produced is byte for byte what the table holds."""
    rows = attacker.rows("SELECT leaf_index, event_id, leaf_data FROM entries ORDER BY leaf_index")
    assert [r[0] for r in rows] == list(range(SIZE))
    for (index, event_id, data), env in zip(rows[1:], target.built.envelopes):
        assert (event_id, bytes(data)) == (env.event_id, env.leaf_data()), f"entry {index}"


# --- the derived tables the lookups read ------------------------------------------------------------
# Provenance answers are computed from the key index (key_events: which leaves name an item) and the
# current party registry (parties / party_keys), not by replaying the log. Both are derived from signed
# leaves, so an edit to them changes what a consumer is told; `verify` must notice it too.

def delete_key_index_row(att: Attacker, t: Target) -> None:
    # Hide one event (leaf 27) from its item's provenance path.
    [(key,)] = att.rows("SELECT key FROM key_events WHERE leaf_index = 27")
    att.run("DELETE FROM key_events WHERE key = ? AND leaf_index = 27", (key,))


def edit_party_record(att: Attacker, t: Target) -> None:
    # Give the retailer a role no signed party statement ever gave it.
    [(record,)] = att.rows("SELECT record FROM parties WHERE id = 'berlin-shop'")
    doc = json.loads(record)
    doc["roles"] = ["retailer", "customs"]
    att.run("UPDATE parties SET record = ? WHERE id = 'berlin-shop'", (json.dumps(doc, sort_keys=True),))


def party_named(msg: str, t: Target) -> None:
    assert "berlin-shop" in msg or re.search(r"\bentry 5\b", msg), f"expected berlin-shop (leaf 5): {msg}"


DERIVED_CASES = {
    "delete-key-index-row": (delete_key_index_row, entry_named(27)),
    "edit-party-registry-record": (edit_party_record, party_named),
}


@pytest.mark.parametrize("case", list(DERIVED_CASES))
def test_tampering_with_what_lookups_read_is_detected(target, attacker, case):
    edit, named = DERIVED_CASES[case]
    edit(attacker, target)
    with pytest.raises(IntegrityError) as info:
        fresh_audit(target.url)
    named(str(info.value), target)
