"""Group commit under kill -9: two writer processes, each with many threads appending single envelopes (so
followers queue behind each process's leader, and the two leaders contend for the database's writer lock).
One is killed with SIGKILL at random moments while the other keeps writing; after each kill it is restarted and
replays everything it was given, as a client retries what it got no answer for.

What must hold: every acknowledgement names the leaf the event is stored at (nothing acknowledged is lost,
nothing moves), leaf indexes are dense across both processes, every event is stored exactly once after the
replays, the latest checkpoint covers everything, and `tracker verify` passes. The random seed is printed and
can be replayed with WAYBILL_CRASH_SEED.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import (GTIN, REPO, SOAK, Installation, assert_dense_and_acknowledged, item_key,
                                       ledger_state, now, register_parties, statement, verify_cli)

pytestmark = pytest.mark.slow

KILLS = 8 if SOAK else 3
PER_WRITER = 240
THREADS = 24
PARTIES = {"gc-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"], "devices": 4}}


class Writer:
    """One group_writer process and the lines it printed."""

    def __init__(self, inst: Installation, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.group_writer", str(path),
                                      str(THREADS)], cwd=REPO, env=inst.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def acks(self) -> dict[str, int]:
        return {p[1]: int(p[2]) for p in (x.split() for x in list(self.lines)) if p and p[0] == "ACK"}

    def stats(self) -> tuple[int, int]:
        last = [x.split() for x in list(self.lines) if x.startswith("STATS")]
        return (int(last[-1][1]), int(last[-1][2])) if last else (0, 0)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)

    def finish(self, timeout: float = 300) -> None:
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""
        assert self.lines and self.lines[-1] == "DONE\n", self.lines[-3:]
        errors = [x for x in self.lines if x.startswith("ERROR")]
        assert not errors, errors[:3]


def envelopes(tag: str, count: int) -> list[dict[str, Any]]:
    start = now() - timedelta(minutes=50)
    return [statement("commission", "gc-mk", at=start + timedelta(seconds=k), device=k % 4,
                      items=[item_key(f"{tag}{k:05d}")], product={"gtin": GTIN, "name": "Group widget"}).to_json()
            for k in range(count)]


def merge(acks: dict[str, int], more: dict[str, int]) -> None:
    for eid, idx in more.items():
        assert acks.setdefault(eid, idx) == idx, f"{eid} acknowledged at {acks[eid]} and later at {idx}"


def test_kill_9_of_a_process_with_followers_waiting_loses_nothing_acknowledged(installation, figures, tmp_path):
    seed = int(os.environ.get("WAYBILL_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"crash seed: WAYBILL_CRASH_SEED={seed}")
    rng = random.Random(seed)
    others = [ledger_state(installation).entries[0][1], *register_parties(installation, PARTIES)]
    acks: dict[str, int] = {}
    shared_groups = 0
    killed_acks = []
    for round_no in range(KILLS):
        victim_envs, steady_envs = envelopes(f"V{round_no}-", PER_WRITER), envelopes(f"S{round_no}-", PER_WRITER)
        (tmp_path / "victim.json").write_text(json.dumps(victim_envs))
        (tmp_path / "steady.json").write_text(json.dumps(steady_envs))
        steady = Writer(installation, tmp_path / "steady.json")
        victim = Writer(installation, tmp_path / "victim.json")
        # Kill the victim somewhere in its run: after a random number of its acknowledgements.
        target = rng.randrange(10, PER_WRITER // 2)
        deadline = time.monotonic() + 120
        while len(victim.acks()) < target:
            assert victim.proc.poll() is None, victim.proc.stderr.read() if victim.proc.stderr else ""
            assert time.monotonic() < deadline, "the victim never got there"
            time.sleep(0.001)
        victim.kill()
        groups, requests = victim.stats()
        if requests > groups > 0:
            shared_groups += 1
        killed_acks.append(len(victim.acks()))
        merge(acks, victim.acks())
        steady.finish()
        merge(acks, steady.acks())
        # What the killed process acknowledged is stored where it said, and nothing else is half there.
        state = ledger_state(installation)
        unanswered = [eid for _, eid in state.entries if eid not in acks]
        assert_dense_and_acknowledged(state, acks, others=others + unanswered)
        # The client retries everything it sent: each event ends up stored exactly once.
        retry = Writer(installation, tmp_path / "victim.json")
        retry.finish()
        merge(acks, retry.acks())
        assert len(retry.acks()) == PER_WRITER
    state = ledger_state(installation)
    assert_dense_and_acknowledged(state, acks, others=others)
    assert shared_groups >= 1, "no killed process had ever committed a group of more than one request"
    code, output = verify_cli(installation)
    assert code == 0, output
    figures.update(backend=installation.backend, kills=KILLS, acknowledged_before_kill=killed_acks,
                   events=len(acks), lost=0)
