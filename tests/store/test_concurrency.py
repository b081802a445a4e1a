"""Several writers on one database (several server workers, or a server and a CLI): appends must be
serialised so that leaf indexes are dense and unique, every acknowledged (event_id, leaf_index) is what
the ledger holds, and the result still audits clean."""
from __future__ import annotations

import multiprocessing as mp
import queue
from collections import Counter

import pytest

from tests.store.helpers import (append_commissions_worker, key_entry, key_of, race_batches_worker,
                                 register_party)

pytestmark = pytest.mark.slow

WORKERS = 4
PER_WORKER = 50
DEVICES = 4  # acme registers one key per device; worker w signs with device w + 1


@pytest.fixture
def acme(ledger, admin_key):
    register_party(ledger, admin_key, "acme", keys=[key_entry(key_of("acme"))] + [
        key_entry(key_of("acme", device=d)) for d in range(1, DEVICES + 1)])
    return ledger


def run_workers(target, args_for, n: int, timeout: float = 120.0) -> dict[int, object]:
    """Start ``n`` spawned processes running ``target(*args_for(w, barrier, out))``; collect their reports."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=args_for(w, barrier, out), daemon=True) for w in range(n)]
    for p in procs:
        p.start()
    reports: dict[int, object] = {}
    try:
        for _ in range(n):
            report = out.get(timeout=timeout)
            if len(report) == 3:
                pytest.fail(f"worker {report[0]} failed:\n{report[2]}")
            reports[report[0]] = report[1]
    except queue.Empty:
        pytest.fail(f"only {len(reports)} of {n} workers reported within {timeout} s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * n
    return reports


def all_entries(ledger):
    with ledger.store.read() as txn:
        return list(txn.iter_entries())


def test_four_processes_appending_at_once_get_dense_unique_indexes(acme, db_url):
    start = acme.size()
    reports = run_workers(append_commissions_worker,
                          lambda w, barrier, out: (db_url, w, PER_WORKER, barrier, out), WORKERS)
    acks = [r for w in range(WORKERS) for r in reports[w]]
    assert len(acks) == WORKERS * PER_WORKER
    assert all(created for _eid, _idx, created in acks)
    # Each writer sees its own appends in increasing order.
    for w in range(WORKERS):
        idx = [i for _e, i, _c in reports[w]]
        assert idx == sorted(idx), f"worker {w} got indexes out of order"

    entries = all_entries(acme)
    assert acme.size() == len(entries) == start + WORKERS * PER_WORKER
    assert [e.leaf_index for e in entries] == list(range(len(entries)))  # no gap, no duplicate
    by_index = {e.leaf_index: e.event_id for e in entries}
    counts = Counter(e.event_id for e in entries)
    for eid, idx, _created in acks:
        assert by_index[idx] == eid, f"acknowledged {eid} at {idx}, but the ledger holds {by_index[idx]} there"
        assert counts[eid] == 1
    assert sorted(idx for _e, idx, _c in acks) == list(range(start, start + WORKERS * PER_WORKER))

    cp = acme.verified_checkpoint()
    assert cp.size == len(entries)
    report = acme.audit()
    assert report.entries == len(entries) and report.root_hash == cp.root_hash


ROUNDS = 8
PER_BATCH = 6


def test_two_processes_racing_batches_never_interleave_or_duplicate(acme, db_url):
    start = acme.size()
    reports = run_workers(race_batches_worker,
                          lambda w, barrier, out: (db_url, w, ROUNDS, PER_BATCH, barrier, out), 2)
    entries = all_entries(acme)
    total = ROUNDS * (2 * PER_BATCH + 1)  # each round: two own batches plus the one shared envelope
    assert len(entries) == start + total
    assert [e.leaf_index for e in entries] == list(range(len(entries)))
    by_index = {e.leaf_index: e.event_id for e in entries}
    assert len(set(by_index.values())) == len(entries)

    shared_at = PER_BATCH // 2
    for r in range(ROUNDS):
        a, b = reports[0][r], reports[1][r]
        # The envelope both signed identically: stored once, both told the same place.
        assert a[shared_at][0] == b[shared_at][0]
        assert a[shared_at][1] == b[shared_at][1]
        assert sorted([a[shared_at][2], b[shared_at][2]]) == [False, True], f"round {r}"
        for row in (a, b):
            for eid, idx, _created in row:
                assert by_index[idx] == eid
            # A batch is one transaction: what it created occupies consecutive leaves.
            created = sorted(idx for _e, idx, c in row if c)
            assert created == list(range(created[0], created[0] + len(created))), f"round {r}: {created}"

    # The latest checkpoint covers every entry, and the chain of checkpoints is consistent (the audit below);
    # every commit ran at NOW, so the history keeps one checkpoint for that second plus the latest.
    with acme.store.read() as txn:
        sizes = [cp.size for cp in txn.iter_checkpoints()]
    assert sizes == sorted(set(sizes)) and sizes[-1] == len(entries)
    assert 1 <= len([s for s in sizes if s > start]) <= 2
    acme.audit()
