"""Group commit (tracker.group_commit): concurrent single appends share one transaction and one checkpoint.
Each caller must still get exactly what a lone append would have given it -- its own answer or its own error,
only after the commit that holds its event -- and the ledger must stay dense, duplicate-free and auditable
with several processes each grouping their own threads."""
from __future__ import annotations

import base64
import threading
from collections import Counter
from datetime import timedelta
from typing import Any, Callable

import pytest

from tests.store.helpers import (NOW, commission_envelope, group_append_worker, key_entry, key_of,
                                 register_party)
from tests.store.test_concurrency import all_entries, run_workers
from tracker import merkle
from tracker.admission import Admission
from tracker.errors import Rejected, TrackerError
from tracker.group_commit import GroupSettings, group_settings
from tracker.ledger import AppendResult, Ledger
from tracker.store import open_store

DEVICES = 4


@pytest.fixture
def acme(ledger, admin_key):
    register_party(ledger, admin_key, "acme", keys=[key_entry(key_of("acme"))] + [
        key_entry(key_of("acme", device=d)) for d in range(1, DEVICES + 1)])
    return ledger


def grouped(ledger: Ledger, window: float = 0.02) -> Ledger:
    """Another handle on the same store whose leader waits ``window`` s for company: groups form reliably."""
    return Ledger(ledger.store, signing_key=ledger.signing_key, group=GroupSettings(window=window))


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together; each result or raised exception, in order."""
    out: list[Any] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i: int) -> None:
        gate.wait(timeout=30)
        try:
            out[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_group_commit_is_on_by_default_and_a_setting_turns_it_off(acme):
    assert group_settings({}).enabled and acme.group is not None
    assert not group_settings({"WAYBILL_GROUP_COMMIT": "0"}).enabled
    off = Ledger(acme.store, signing_key=acme.signing_key, group=group_settings({"WAYBILL_GROUP_COMMIT": "off"}))
    assert off.group is None
    r = off.append(commission_envelope(key_of("acme"), "acme", ["OFF-1"]), now=NOW)
    assert r.created and r.leaf_index == acme.size() - 1


def test_neighbours_in_one_group_each_get_their_own_answer(acme):
    """Good appends, forged ones, strangers and replays all at once: each gets what it would have got alone."""
    led = grouped(acme)
    good = [commission_envelope(key_of("acme", device=1 + i % DEVICES), "acme", [f"OK-{i}"]) for i in range(16)]
    forged = commission_envelope(key_of("mallory"), "acme", ["FORGED"])  # a key acme never registered
    bad_sig = commission_envelope(key_of("acme"), "acme", ["BADSIG"]).to_json()
    bad_sig["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    stranger = commission_envelope(key_of("nobody"), "nobody", ["STRANGER"])
    replayed = commission_envelope(key_of("acme"), "acme", ["REPLAYED"])
    start = acme.size()
    calls = [lambda e=e: led.append(e, now=NOW) for e in good]
    calls += [lambda: led.append(forged, now=NOW), lambda: led.append(bad_sig, now=NOW),
              lambda: led.append(stranger, now=NOW), lambda: led.append({"not": "an envelope"}, now=NOW)]
    calls += [lambda: led.append(replayed, now=NOW) for _ in range(6)]
    out = at_once(calls)

    oks, errors, replays = out[:16], out[16:20], out[20:]
    assert all(isinstance(r, AppendResult) and r.created for r in oks), oks
    assert [r.event_id for r in oks] == [e.event_id for e in good]
    assert isinstance(errors[0], Rejected) and errors[0].code == "unknown_key"
    assert isinstance(errors[1], Rejected) and errors[1].code == "bad_signature"
    assert isinstance(errors[2], Rejected) and errors[2].code == "unknown_party"
    assert isinstance(errors[3], TrackerError) and not isinstance(errors[3], Rejected)
    assert all(isinstance(r, AppendResult) for r in replays), replays
    assert sorted(r.created for r in replays) == [False] * 5 + [True]  # stored once, everyone told where
    assert len({r.leaf_index for r in replays}) == 1

    entries = all_entries(acme)
    assert [e.leaf_index for e in entries] == list(range(len(entries)))
    assert len(entries) == start + 17
    by_index = {e.leaf_index: e.event_id for e in entries}
    for r in oks + [replays[0]]:
        assert by_index[r.leaf_index] == r.event_id
    assert led.group is not None and led.group.groups < led.group.requests, "no group held two requests"
    acme.audit()


def test_a_request_that_breaks_the_shared_transaction_fails_alone(acme, monkeypatch):
    """Not a refusal but a crash inside admission (a bug, a driver error): the group's transaction rolls back,
    and every other request is committed on its own."""
    led = grouped(acme)
    poison = commission_envelope(key_of("acme"), "acme", ["POISON"])
    others = [commission_envelope(key_of("acme", device=1), "acme", [f"N-{i}"]) for i in range(12)]
    real_admit = Admission.admit

    def admit(self: Admission, env: Any, st: Any, **kw: Any) -> None:
        if env.event_id == poison.event_id:
            raise RuntimeError("boom")
        real_admit(self, env, st, **kw)

    monkeypatch.setattr(Admission, "admit", admit)
    out = at_once([lambda: led.append(poison, now=NOW)] + [lambda e=e: led.append(e, now=NOW) for e in others])
    assert isinstance(out[0], RuntimeError)
    assert all(isinstance(r, AppendResult) and r.created for r in out[1:]), out[1:]
    entries = all_entries(acme)
    assert poison.event_id not in {e.event_id for e in entries}
    assert [e.leaf_index for e in entries] == list(range(len(entries)))
    monkeypatch.undo()
    acme.audit()


def test_an_answer_comes_only_after_the_commit_that_holds_it(acme, db_url):
    """Each caller, the moment its append returns, looks through a separate connection: its event is stored
    at the leaf it was told, and the latest signed checkpoint already covers it (the merge delay is zero,
    well inside SPEC's 1 s) with an inclusion proof that verifies."""
    led = grouped(acme)
    watcher = open_store(db_url, create=False)
    try:
        outside = Ledger(watcher)

        def append_and_look(i: int) -> tuple[AppendResult, int, bool]:
            r = led.append(commission_envelope(key_of("acme", device=1 + i % DEVICES), "acme", [f"SEEN-{i}"]),
                           now=NOW)
            with watcher.read() as txn:
                stored = txn.entries_at([r.leaf_index]).get(r.leaf_index)
            cp = outside.verified_checkpoint()
            index, size, path = outside.inclusion_proof(event_id=r.event_id, tree_size=cp.size)
            assert stored is not None
            merkle.verify_inclusion(merkle.leaf_hash(stored.leaf_data), index, size, path, cp.root_hash)  # raises if not
            return r, cp.size, stored.event_id == r.event_id

        out = at_once([lambda i=i: append_and_look(i) for i in range(24)])
    finally:
        watcher.close()
    for item in out:
        assert not isinstance(item, BaseException), item
        r, covered, seen = item
        assert seen and covered > r.leaf_index


def test_every_commit_signs_the_latest_checkpoint_and_the_history_keeps_one_per_second(acme):
    """Merge delay: right after each acknowledgement the latest checkpoint covers it. History: commits every
    0.25 s for 3 s leave one checkpoint per second plus the latest, and the audit checks consistency along them."""
    before = _history(acme)
    t = NOW.replace(microsecond=0) + timedelta(hours=1)
    for k in range(12):
        r = acme.append(commission_envelope(key_of("acme"), "acme", [f"TICK-{k}"]), now=t + timedelta(seconds=k / 4))
        cp = acme.verified_checkpoint()
        assert cp.size == r.leaf_index + 1 == acme.size()
    added = [cp for cp in _history(acme) if cp.size > before[-1].size]
    assert len(added) == 4  # the first of each of the 3 seconds, plus the latest
    seconds = [cp.created_at[:19] for cp in added[:-1]]
    assert len(set(seconds)) == 3
    report = acme.audit()
    assert report.checkpoints == len(_history(acme))
    # With the interval at 0 every commit's checkpoint is kept.
    every = Ledger(acme.store, signing_key=acme.signing_key, checkpoint_interval=0)
    n = len(_history(acme))
    for k in range(3):
        every.append(commission_envelope(key_of("acme"), "acme", [f"KEEP-{k}"]), now=t)
    assert len(_history(acme)) == n + 3


def test_a_pruned_history_still_catches_a_forged_checkpoint(acme, db_url):
    """The attacker who hopes fewer stored checkpoints means fewer checks: a kept history checkpoint whose
    root is changed (row and note) fails the audit by name, and so does a latest checkpoint that does not
    cover the last entries."""
    t = NOW + timedelta(hours=2)
    for k in range(8):
        acme.append(commission_envelope(key_of("acme"), "acme", [f"H-{k}"]), now=t + timedelta(seconds=k / 2))
    history = _history(acme)
    victim = history[len(history) // 2]
    with acme.store.write() as txn:
        txn.conn.exec_driver_sql("UPDATE checkpoints SET root_hash = %s WHERE size = %s".replace(
            "%s", "?" if acme.store.is_sqlite else "%s"), (bytes(32), victim.size))
    with pytest.raises(TrackerError, match=rf"checkpoint.*{victim.size}"):
        acme.audit()


def test_dense_indexes_with_several_processes_each_grouping_its_threads(acme, db_url):
    start = acme.size()
    workers, threads, per_thread = 3, 12, 8
    reports = run_workers(group_append_worker, lambda w, barrier, out: (db_url, w, threads, per_thread, barrier, out),
                          workers, timeout=300)
    acks = [a for w in range(workers) for a in reports[w][0]]
    assert len(acks) == workers * threads * per_thread and all(c for _e, _i, c in acks)
    assert any(requests > groups for _acks, (groups, requests) in reports.values()), "no process ever grouped"
    entries = all_entries(acme)
    assert [e.leaf_index for e in entries] == list(range(len(entries)))
    assert len(entries) == start + len(acks)
    by_index = {e.leaf_index: e.event_id for e in entries}
    assert all(by_index[i] == eid for eid, i, _c in acks)
    assert max(Counter(e.event_id for e in entries).values()) == 1
    cp = acme.verified_checkpoint()
    assert cp.size == len(entries)
    assert acme.audit().root_hash == cp.root_hash


def _history(ledger: Ledger) -> list[Any]:
    with ledger.store.read() as txn:
        return list(txn.iter_checkpoints())
