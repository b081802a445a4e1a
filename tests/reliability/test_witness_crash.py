"""kill -9 of a witness process while a log submits checkpoints as fast as it can: after every restart the
witness still knows the largest size it ever answered 200 for (state is committed before the answer), and no
fork of the log, from any size, ever gets a cosignature."""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.c2sp import ref
from tests.c2sp.procs import tracker, witness_proc
from tests.conftest import fixed_key
from tracker.checkpoint import Checkpoint, sign_checkpoint, vkey_string
from tracker.witness import format_add_checkpoint

pytestmark = pytest.mark.slow

ORIGIN = "log.example/crash"
LOG = fixed_key("witness-crash-log")
HONEST = [ref.leaf(f"h{i}".encode()) for i in range(400)]
FORK = HONEST[:3] + [ref.leaf(f"f{i}".encode()) for i in range(397)]


def note(hashes: list[bytes]) -> str:
    return sign_checkpoint(Checkpoint(origin=ORIGIN, size=len(hashes), root_hash=ref.mth(hashes)), name=ORIGIN,
                           key=LOG)


NOTES = {n: note(HONEST[:n]) for n in range(1, 401)}


def post(base: str, old: int, size: int, tree: list[bytes]) -> requests.Response:
    body = format_add_checkpoint(old, ref.consistency(old, tree[:size]) if old else [],
                                 NOTES[size] if tree is HONEST else note(tree[:size]))
    return requests.post(base + "/add-checkpoint", data=body, timeout=10)


def test_kill_9_never_loses_state_or_cosigns_a_fork(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    d = tmp_path / "witness"
    tracker("witness", "init", "--dir", str(d), "--name", "witness.example/crash",
            "--log", vkey_string(ORIGIN, LOG.public_key))
    w = witness_proc(d).start()
    acked = 0  # the largest size the witness answered 200 for
    lock = threading.Lock()
    stop = threading.Event()

    def submitter() -> None:
        nonlocal acked
        known = 0
        while not stop.is_set():
            with lock:
                size = min(400, max(known, acked) + rng.randint(1, 3))
            try:
                r = post(w.base, known, size, HONEST)
            except requests.RequestException:
                time.sleep(0.01)
                continue
            if r.status_code == 200:
                with lock:
                    acked = max(acked, size)
                known = size
            elif r.status_code == 409:
                known = int(r.text)
            if known >= 400:
                return

    try:
        for _ in range(5):
            t = threading.Thread(target=submitter, daemon=True)
            t.start()
            time.sleep(rng.uniform(0.05, 0.4))
            w.kill()
            stop.set()
            t.join(timeout=15)
            stop.clear()
            w.start()
            r = post(w.base, 0, 1, HONEST)  # ask for the state
            assert r.status_code == 409 or (r.status_code == 200 and acked == 0)
            stored = int(r.text) if r.status_code == 409 else 1
            assert stored >= acked, f"the witness answered 200 for size {acked} but restarted at {stored}"
            # every fork, at every size and from every old size the attacker may claim, is refused
            for size in sorted({stored, min(400, stored + 1), min(400, stored + 50)}):
                for old in (0, 3, stored):
                    if old > size:
                        continue
                    r = post(w.base, old, size, FORK)
                    assert r.status_code != 200, (old, size, r.text)
        assert acked > 0
    finally:
        stop.set()
        w.stop()
