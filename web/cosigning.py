"""The ledger's background cosignature collector: after each new checkpoint, send it to every witness the
policy lists with a URL (``add-checkpoint``), in parallel, with back-off for a witness that is down.

Appends never wait for this: an append is acknowledged by the ledger alone, and a consumer page shows a
verdict as fully verified only once a checkpoint covering it meets the policy. The protocol decisions
(what to send, what an answer means, alarms) are tracker.cosigning's; this module only does the HTTP.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import requests

from tracker.cosigning import backoff_seconds, handle_reply, next_submission, record_failure, witness_status
from tracker.errors import TrackerError
from tracker.ledger import Ledger
from tracker.policy import Policy, PolicyWitness

__all__ = ["Collector"]

log = logging.getLogger("waybill.witnessing")


class Collector(threading.Thread):
    """One daemon thread per serving process; several processes are harmless (a witness answers a stale
    request with 409 and its size, and the next round catches up)."""

    def __init__(self, ledger: Ledger, policy: Policy, *, poll: float = 0.05, timeout: float = 10.0,
                 on_round: Callable[[], None] | None = None) -> None:
        super().__init__(daemon=True, name="waybill-witness-collector")
        self.ledger, self.policy, self.poll, self.timeout = ledger, policy, poll, timeout
        self.witnesses = [w for w in policy.witnesses if w.url]
        self.halt = threading.Event()
        self.wake = threading.Event()
        self.on_round = on_round
        self._session = requests.Session()
        self._next_try: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.witnesses)), thread_name_prefix="witness")

    def stop(self) -> None:
        self.halt.set()
        self.wake.set()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                busy = any(list(self._pool.map(self._one, self.witnesses)))
            except Exception:  # never let the collector die: log and keep going
                log.exception("witness collector round failed")
                busy = False
            if self.on_round:
                self.on_round()
            if not busy:
                self.wake.wait(self.poll)
                self.wake.clear()
        self._pool.shutdown(wait=False)

    def _one(self, w: PolicyWitness) -> bool:
        """One exchange with witness ``w``; True when there may be more to do right away."""
        if time.monotonic() < self._next_try.get(w.name, 0.0):
            return False
        try:
            sub = next_submission(self.ledger, w)
        except TrackerError as exc:
            log.warning("cannot prepare a checkpoint for witness %s: %s", w.name, exc.message)
            return False
        if sub is None:
            return False
        url = (w.url or "").rstrip("/") + "/add-checkpoint"
        try:
            r = self._session.post(url, data=sub.body, timeout=self.timeout,
                                   headers={"Content-Type": "text/plain; charset=utf-8"})
        except requests.RequestException as exc:
            failures = record_failure(self.ledger, w, f"unreachable: {type(exc).__name__}")
            self._next_try[w.name] = time.monotonic() + backoff_seconds(failures)
            log.info("witness %s unreachable (%d failures): retry in %.1f s", w.name, failures,
                     backoff_seconds(failures))
            return False
        outcome = handle_reply(self.ledger, sub, r.status_code, r.text, r.headers.get("Content-Type", ""))
        if outcome == "failed":
            st = witness_status(self.ledger, w.cosigner.name)
            self._next_try[w.name] = time.monotonic() + backoff_seconds(st.failures if st else 1)
            return False
        self._next_try.pop(w.name, None)
        return outcome == "behind"
