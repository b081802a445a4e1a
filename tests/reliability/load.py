"""A write load for fault tests: client threads that walk items through commission → ship → receive → sell
through a real server, retry whatever got a documented storage-fault answer until it is acknowledged, and
record every answer. ``check_outage_answer`` is what such an answer must look like."""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any, Callable

import requests

from tests.reliability.harness import journey, now, post_json
from tests.reliability.hostile import TRACE


class Load(threading.Thread):
    """Client ``n`` walks items through commission → ship → receive → sell until told to stop, as single posts
    and batches in turn. A 503 must carry ``storage_unavailable`` and ``Retry-After``; the client then sends the
    same request again (much sooner than Retry-After says, to keep the test short) until it is acknowledged.
    Anything else than 2xx or such a 503 is recorded as a failure."""

    def __init__(self, base: str, n: int, *, expect: dict[int, str]) -> None:
        super().__init__(daemon=True)
        self.base, self.n, self.expect = base, n, expect
        self.maker, self.holder = f"ol-mk-{n}", f"ol-wh-{n}"
        self.halt = threading.Event()
        self.acks: dict[str, int] = {}
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.posted = 0

    def _send(self, http: requests.Session, path: str, doc: Any) -> requests.Response | None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = post_json(http, f"{self.base}{path}", doc, timeout=60)
            except requests.RequestException as exc:
                self.failures.append(f"{path}: no answer: {exc}")
                return None
            self.statuses[r.status_code] += 1
            if r.status_code in (200, 201):
                return r
            problem = check_outage_answer(r, self.expect, api=True)
            if problem:
                self.failures.append(f"{path}: {problem}")
                return None
            time.sleep(0.05)
        self.failures.append(f"{path}: still refused after 120 s")
        return None

    def run(self) -> None:
        start = now() - timedelta(minutes=50) + timedelta(seconds=self.n)
        with requests.Session() as http:
            i = 0
            while not self.halt.is_set() and not self.failures:
                plan = journey(self.maker, self.holder, f"O{self.n}I{i:05d}", start + timedelta(seconds=4 * i))
                self.posted += len(plan)
                if i % 2 == 0:
                    for env in plan:
                        r = self._send(http, "/api/v1/events", env.to_json())
                        if r is None:
                            return
                        body = r.json()
                        if body.get("event_id") != env.event_id:
                            self.failures.append(f"answer for another event: {body}")
                            return
                        self.acks[body["event_id"]] = body["leaf_index"]
                else:
                    r = self._send(http, "/api/v1/events/batch", {"envelopes": [e.to_json() for e in plan]})
                    if r is None:
                        return
                    for env, res in zip(plan, r.json()["results"], strict=True):
                        if res.get("event_id") != env.event_id:
                            self.failures.append(f"batch result for another event: {res}")
                            return
                        self.acks[res["event_id"]] = res["leaf_index"]
                i += 1


def check_outage_answer(r: requests.Response, expect: dict[int, str], *, api: bool) -> str | None:
    """None if ``r`` is the documented answer to a storage fault (status in ``expect`` with its error code,
    a positive Retry-After, no internals), else what is wrong with it."""
    if r.status_code not in expect:
        return f"{r.status_code} instead of {sorted(expect)}: {r.text[:300]}"
    retry = r.headers.get("Retry-After", "")
    if not retry.isdigit() or int(retry) < 1:
        return f"{r.status_code} without a usable Retry-After header ({retry!r})"
    if TRACE.search(r.text) or "127.0.0.1:" in r.text or "ledger.db" in r.text:
        return f"{r.status_code} shows internals: {r.text[:300]}"
    if api:
        if r.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return f"{r.status_code} is not JSON: {r.headers.get('Content-Type')}"
        error = r.json().get("error") or {}
        if error.get("code") != expect[r.status_code] or not error.get("message"):
            return f"{r.status_code} with error {error}, expected code {expect[r.status_code]}"
    return None


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Seconds until ``condition()`` held."""
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - t0
