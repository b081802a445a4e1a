"""Crashes (issue): kill -9 of the server, and of a writer process, in the middle of a batch ingest, repeated at
random moments. After each restart: every event that got a 2xx answer is present at the index it was told,
the batch in flight is there entirely or not at all (nothing half-written is visible), the ledger audits clean
(`tracker verify` at the end), and no checkpoint a client ever fetched is contradicted: sizes never go down and
each is consistent (RFC 9162 proof) with the next.

The random seed is printed and can be replayed with WAYBILL_CRASH_SEED; WAYBILL_SOAK=1 runs many more rounds.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
import requests

from tests.reliability.harness import (REPO, SOAK, CheckpointWatcher, Installation, Poller, RawDb, Server,
                                       assert_dense_and_acknowledged, journey, ledger_state, now, post_json,
                                       register_parties, verify_cli, verify_consistent)

pytestmark = pytest.mark.slow

SERVER_ROUNDS = 60 if SOAK else 6
WRITER_ROUNDS = 40 if SOAK else 4  # the soak: 100 kill -9 trials per backend
ITEMS_PER_BATCH = 60  # 240 envelopes per batch
WRITER_BATCHES, WRITER_ITEMS = 8, 40  # a writer round: 8 batches of 160 envelopes
PARTIES = {"crash-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}, "crash-wh": {"roles": ["warehouse", "retailer"]}}


def crash_seed() -> int:
    seed = int(os.environ.get("WAYBILL_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"crash seed: WAYBILL_CRASH_SEED={seed}")
    return seed


class Batches:
    """Fresh batches of valid journeys (commission → ship → receive → sell), never repeating an item."""

    def __init__(self, tag: str) -> None:
        self.tag, self.next = tag, 0
        self.start = now() - timedelta(minutes=55)

    def make(self, items: int = ITEMS_PER_BATCH) -> list[dict[str, Any]]:
        out = []
        for _ in range(items):
            k = self.next
            self.next += 1
            out.extend(e.to_json() for e in journey("crash-mk", "crash-wh", f"{self.tag}{k:05d}",
                                                    self.start + timedelta(seconds=k % 3000)))
        return out


def event_ids(batch: list[dict[str, Any]]) -> list[str]:
    import base64
    import hashlib

    return ["sha256:" + hashlib.sha256(base64.b64decode(e["payload"])).hexdigest() for e in batch]


def check_round(inst: Installation, acks: dict[str, int], others: list[str], inflight: list[str]) -> str:
    """After a crash and restart: what was answered is there, the batch in flight is all there or absent."""
    state = ledger_state(inst)
    present = [eid for eid in inflight if eid in state.by_event]
    assert len(present) in (0, len(inflight)), \
        f"half a batch is visible: {len(present)} of {len(inflight)} envelopes"
    # The in-flight batch is acknowledged to no one; its rows (if committed) are legitimate but unanswered.
    assert_dense_and_acknowledged(state, acks, others=others + present)
    ledger = inst.open()
    try:
        ledger.audit()
    finally:
        ledger.store.close()
    return "committed" if present else "absent"


def test_kill_9_of_the_server_mid_batch_loses_no_acknowledged_event(installation, backend, figures):
    rng = random.Random(crash_seed())
    others = [ledger_state(installation).entries[0][1], *register_parties(installation, PARTIES)]
    watcher = CheckpointWatcher(installation)
    batches = Batches("K")
    acks: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    posted = 0
    server = Server(installation, workers=4).start()
    probe = RawDb(installation)
    poller = Poller(watcher, server)
    poller.start()
    try:
        # A batch that is allowed to finish: how long does one take here?
        warm = batches.make()
        t0 = time.monotonic()
        r = post_json(requests, f"{server.base}/api/v1/events/batch", {"envelopes": warm})
        duration = time.monotonic() - t0
        assert r.status_code == 200, r.text
        for eid, res in zip(event_ids(warm), r.json()["results"], strict=True):
            assert res.get("event_id") == eid, res
            acks[eid] = res["leaf_index"]
        posted += len(warm)

        for round_no in range(SERVER_ROUNDS):
            batch = batches.make()
            ids = event_ids(batch)
            answer: dict[str, Any] = {}

            def send() -> None:
                try:
                    answer["response"] = post_json(requests, f"{server.base}/api/v1/events/batch",
                                                   {"envelopes": batch}, timeout=60)
                except requests.RequestException as exc:
                    answer["error"] = exc

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            posted += len(batch)
            if round_no % 3 == 1:
                # Right after the commit, before the answer is out: watch the database for the batch's last row.
                deadline = time.monotonic() + 30
                while probe.one("SELECT leaf_index FROM entries WHERE event_id = ?", (ids[-1],)) is None:
                    assert time.monotonic() < deadline, "the batch never committed"
                    time.sleep(0.0005)
            else:
                # Somewhere inside the ingest: parsing, signature checks, the insert, the commit, the answer.
                time.sleep(rng.uniform(0.05, 1.1) * duration)
            whole_server = round_no % 4 != 3  # every fourth round: only the workers die, the master respawns them
            if whole_server:
                server.kill()
            else:
                for pid in server.worker_pids():
                    os.kill(pid, 9)
            sender.join(timeout=90)
            assert not sender.is_alive(), "the client never got an answer or an error"
            response = answer.get("response")
            if response is not None and response.status_code == 200:
                for eid, res in zip(ids, response.json()["results"], strict=True):
                    assert res.get("event_id") == eid, res
                    acks[eid] = res["leaf_index"]
                inflight: list[str] = []
            else:
                assert response is None or response.status_code >= 500, response.text
                inflight = ids
            if whole_server:
                server.start()
            else:
                _wait_up(server)
            outcome = "answered" if not inflight else check_round(installation, acks, others, inflight)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if inflight:
                # The client retries what it got no answer for: same ids, now all acknowledged exactly once.
                r = post_json(requests, f"{server.base}/api/v1/events/batch", {"envelopes": batch})
                assert r.status_code == 200, r.text
                for eid, res in zip(ids, r.json()["results"], strict=True):
                    assert res.get("event_id") == eid, res
                    acks[eid] = res["leaf_index"]
            watcher.fetch(server.base)
        state = ledger_state(installation)
        assert_dense_and_acknowledged(state, acks, others=others)
    finally:
        poller.halt.set()
        poller.join(timeout=10)
        probe.close()
        server.stop()
    assert not poller.errors, poller.errors[:3]
    verify_consistent(installation, watcher.seen)
    code, output = verify_cli(installation)
    assert code == 0, output
    assert outcomes.get("committed", 0) + outcomes.get("absent", 0) >= 1, \
        f"no kill landed inside an ingest: {outcomes} (batch took {duration:.2f} s)"
    assert outcomes.get("committed", 0) + outcomes.get("answered", 0) >= 2, outcomes  # the after-commit rounds
    figures.update(backend=backend, server_kills=server.kills, worker_only_kills=SERVER_ROUNDS - server.kills,
                   envelopes_posted=posted, events_acknowledged=len(acks), in_flight_outcomes=outcomes,
                   checkpoints_fetched=poller.fetched, distinct_checkpoints_seen=len(watcher.seen),
                   batch_seconds=round(duration, 2), lost=0, half_written=0)


def _wait_up(server: Server, wait: float = 60) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{server.base}/api/v1/checkpoint", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not recover in {wait} s:\n{server.tail()}")


def test_kill_9_of_a_writer_process_mid_batch_leaves_the_ledger_whole(installation, backend, figures, tmp_path):
    """A second writer (as `tracker record`/`import` would be) dies mid-transaction while the server keeps
    serving: its lock must not outlive it, and its half-done batch must not be visible."""
    rng = random.Random(crash_seed())
    others = [ledger_state(installation).entries[0][1], *register_parties(installation, PARTIES)]
    watcher = CheckpointWatcher(installation)
    writer_batches, server_batches = Batches("W"), Batches("S")
    acks: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    posted = kills = 0
    with Server(installation, workers=4) as server, closing(RawDb(installation)) as probe:
        for round_no in range(WRITER_ROUNDS):
            plan = [writer_batches.make(items=WRITER_ITEMS) for _ in range(WRITER_BATCHES)]
            path = tmp_path / f"batches-{round_no}.json"
            path.write_text(json.dumps(plan))
            proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.writer", str(path)], cwd=REPO,
                                    env=installation.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, start_new_session=True)
            lines: list[tuple[float, str]] = []
            reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), x) for x in proc.stdout),
                                      daemon=True)
            reader.start()
            # Kill it inside a randomly chosen batch: wait for that batch to start, then a random part of the
            # time one batch takes (measured on its first batch).
            target = rng.randrange(1, WRITER_BATCHES - 1)
            deadline = time.monotonic() + 120
            while not any(x == f"START {target}\n" for _, x in lines):
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the writer never got there"
                time.sleep(0.002)
            if round_no % 2:
                # Right after that batch's commit, before the writer can say so.
                last = event_ids(plan[target])[-1]
                while probe.one("SELECT leaf_index FROM entries WHERE event_id = ?", (last,)) is None:
                    assert proc.poll() is None and time.monotonic() < deadline, "the batch never committed"
                    time.sleep(0.0005)
            else:
                marks = {x.strip(): t for t, x in lines if not x.startswith("ACK")}
                one_batch = marks["DONE 0"] - marks["START 0"]
                time.sleep(rng.uniform(0.0, 1.1) * one_batch)
            proc.kill()  # SIGKILL
            proc.wait(timeout=30)
            reader.join(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
            lines_text = [x for _, x in lines]
            kills += 1
            started = {int(line.split()[1]) for line in lines_text if line.startswith("START")}
            done = {int(line.split()[1]) for line in lines_text if line.startswith("DONE")}
            posted += sum(len(plan[k]) for k in started)
            for line in lines_text:
                if line.startswith("ACK"):
                    _, eid, idx = line.split()
                    acks[eid] = int(idx)
            inflight = [eid for k in started - done for eid in event_ids(plan[k])]
            # Right after the crash the server still writes: the dead writer holds no lock.
            batch = server_batches.make(items=5)
            t0 = time.monotonic()
            r = post_json(requests, f"{server.base}/api/v1/events/batch", {"envelopes": batch}, timeout=30)
            assert r.status_code == 200, r.text
            assert time.monotonic() - t0 < 30
            posted += len(batch)
            for eid, res in zip(event_ids(batch), r.json()["results"], strict=True):
                assert res.get("event_id") == eid, res
                acks[eid] = res["leaf_index"]
            outcome = check_round(installation, acks, others, inflight) if inflight else "between batches"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if inflight:  # the operator runs it again: the rest goes in, the committed part is not repeated
                ledger = installation.open(writable=True)
                try:
                    for k in sorted(started - done):
                        for eid, res in zip(event_ids(plan[k]), ledger.append_batch(plan[k], now=now())):
                            acks[eid] = res.leaf_index
                finally:
                    ledger.store.close()
            watcher.fetch(server.base)
        state = ledger_state(installation)
        assert_dense_and_acknowledged(state, acks, others=others)
    verify_consistent(installation, watcher.seen)
    code, output = verify_cli(installation)
    assert code == 0, output
    figures.update(backend=backend, writer_kills=kills, envelopes_posted=posted, events_acknowledged=len(acks),
                   in_flight_outcomes=outcomes, lost=0, half_written=0)
