"""Reads see one snapshot. On PostgreSQL's default READ COMMITTED each statement of a read saw the latest
commits, so `tracker verify` beside live writers read the tree size before a commit and the checkpoints after
it, and reported an honest ledger as tampered ("checkpoint 527 covers entries that are missing ... entry 526 was
deleted", 3 runs in 155). A read transaction is now REPEATABLE READ (SQLite's WAL read transaction already is)."""
from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

from tests.conftest import T0
from tests.store.helpers import NOW, commission_envelope, key_of, party_envelope, register_cast
from tracker.errors import IntegrityError
from tracker.ledger import Ledger
from tracker.store import open_store

RACE_SECONDS = float(os.environ.get("WAYBILL_AUDIT_RACE_SECONDS", "60"))


def test_a_read_does_not_see_a_commit_made_while_it_runs(ledger: Ledger, admin_key):
    register_cast(ledger, admin_key)
    with ledger.store.read() as txn:
        size = txn.tree_size()
        ledger.append(commission_envelope(key_of("acme"), "acme", ["SNAP1"]), now=NOW)  # another connection
        assert txn.tree_size() == size
        latest = txn.latest_checkpoint()
        assert latest is not None and latest.size == size
        assert txn.entry_count() == size
    assert ledger.size() == size + 1


def test_audit_beside_four_writers_never_raises_a_false_alarm(db_url, ledger_key, admin_key):
    """At least a minute (WAYBILL_AUDIT_RACE_SECONDS; a quarter of it on SQLite) of audits while four writers
    append single statements: every audit passes, and the audits really overlapped with commits."""
    store = open_store(db_url)
    ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=ledger_key, admin_key=admin_key, now=T0)
    makers = [f"race-mk-{n}" for n in range(4)]
    ledger.append_batch([party_envelope(admin_key, m, roles=["manufacturer"], gs1_prefixes=["950600"]) for m in makers],
                        now=NOW)
    seconds = RACE_SECONDS if not db_url.startswith("sqlite") else RACE_SECONDS / 4
    stop = threading.Event()
    written = [0] * len(makers)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        handle = Ledger(store, signing_key=ledger_key)
        try:
            while not stop.is_set():
                env = commission_envelope(key_of(makers[n]), makers[n], [f"R{n}-{written[n]}"],
                                          time=T0 + timedelta(hours=1))
                handle.append(env, now=NOW)
                written[n] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(len(makers))]
    for t in threads:
        t.start()
    audits, alarms, overlapped = 0, [], 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            before = sum(written)
            try:
                report = ledger.audit()
            except IntegrityError as exc:
                alarms.append(str(exc))
            else:
                assert report.entries >= 1 + len(makers)
            audits += 1
            overlapped += sum(written) > before
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:3]
    assert alarms == [], f"{len(alarms)} false alarms in {audits} audits: {alarms[:3]}"
    assert audits >= 5 and overlapped >= 3, (audits, overlapped)
    assert sum(written) >= 50
    final = ledger.audit()
    assert final.entries == 1 + len(makers) + sum(written)  # genesis, the four makers, every commission
    store.close()
