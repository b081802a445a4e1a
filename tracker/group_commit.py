"""Group commit: concurrent appends in one process share one transaction, one fsync and one signed checkpoint.

Real traffic is hundreds of devices posting one handoff each. Committed one by one, every append pays a
transaction, an fsync and a checkpoint signature under the single-writer lock, and the lock, not the CPU,
sets the rate. Here the first thread to arrive becomes the *leader*; whoever arrives while it waits for
the lock or writes queues behind it as a *follower*. The leader takes the database's writer lock first
(BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL: one writer at a time across processes, dense
leaf indexes) and only then takes the queue, so everything that arrived while other processes held the
lock goes into this commit. It commits the group as one batch, hands the results out and passes leadership
to the first thread still queued.

What a caller keeps:
  - an acknowledgement only after the commit that holds it (results are handed out after the transaction
    has committed; a crash before then loses only unacknowledged requests);
  - its own errors: admission errors are per envelope as in a batch, and if the shared transaction fails
    for any other reason each request is retried alone, so one poisonous request cannot fail its neighbours;
  - idempotent replays (a replay in the same group gets the first one's leaf, ``created=False``).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["GroupCommitter", "GroupSettings", "group_settings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSettings:
    """``enabled``: group concurrent appends (WAYBILL_GROUP_COMMIT, default on); ``window``: seconds a leader
    waits for more requests when the previous group was shared (WAYBILL_GROUP_COMMIT_MS, default 2 ms);
    ``max_envelopes``: the most envelopes one group commits."""

    enabled: bool = True
    window: float = 0.002
    max_envelopes: int = 1000


def group_settings(env: Any = None) -> GroupSettings:
    env = os.environ if env is None else env
    flag = str(env.get("WAYBILL_GROUP_COMMIT", "1")).strip().lower()
    window_ms = str(env.get("WAYBILL_GROUP_COMMIT_MS", "")).strip()
    try:
        window = max(0.0, min(50.0, float(window_ms))) / 1000 if window_ms else 0.002
    except ValueError:
        window = 0.002
    return GroupSettings(enabled=flag not in ("0", "false", "no", "off"), window=window)


def _alone(req: "_Request") -> Callable[[], list[Any]]:
    return lambda: [req.items]


class _Request:
    __slots__ = ("items", "size", "results", "error", "wake", "done")

    def __init__(self, items: Any, size: int) -> None:
        self.items = items
        self.size = size
        self.results: Any = None
        self.error: BaseException | None = None
        self.wake = threading.Event()
        self.done = False


class GroupCommitter:
    """A leader/follower queue in front of ``commit``. ``commit(take)`` opens the write transaction, calls
    ``take()`` once it holds the writer lock to get the requests' items, writes them in that transaction and
    returns one result per item (or raises, and then each request is retried alone)."""

    def __init__(self, commit: Callable[[Callable[[], Sequence[Any]]], Sequence[Any]],
                 settings: GroupSettings) -> None:
        self._commit = commit
        self._settings = settings
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: list[_Request] = []
        self._leading = False
        self._shared = False  # the last group held more than one request: worth waiting for company
        self.groups = 0  # commits made (for tests and benchmarks)
        self.requests = 0

    def submit(self, items: Any, size: int) -> Any:
        """Commit ``items`` (``size`` envelopes) with whatever else is queued; returns its result once committed."""
        req = _Request(items, size)
        with self._lock:
            self._queue.append(req)
            lead = not self._leading
            if lead:
                self._leading = True
            elif len(self._queue) > 1:
                self._arrived.notify()
        if not lead:
            req.wake.wait()
        if not req.done:
            self._lead()
        if req.error is not None:
            raise req.error
        return req.results

    def _lead(self) -> None:
        group: list[_Request] = []

        def take() -> list[Any]:
            """The queue as it stands once the writer lock is held (at most ``max_envelopes``)."""
            if group:
                return [r.items for r in group]
            with self._lock:
                total = 0
                for req in self._queue:
                    if group and total + req.size > self._settings.max_envelopes:
                        break
                    group.append(req)
                    total += req.size
                del self._queue[:len(group)]
            return [r.items for r in group]

        try:
            with self._lock:
                if self._shared and self._settings.window > 0:
                    deadline = time.monotonic() + self._settings.window
                    while sum(r.size for r in self._queue) < self._settings.max_envelopes:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._arrived.wait(left)
            self._run(take, group)
        finally:
            if not group:  # failed before taking: this leader's own request must still get its answer
                take()
                for req in group:
                    if req.results is None and req.error is None:
                        req.error = RuntimeError("group commit ended without committing this request")
            with self._lock:
                self._shared = len(group) > 1 or bool(self._queue)
                if self._queue:
                    self._queue[0].wake.set()  # the first one queued leads the next group
                else:
                    self._leading = False
            for req in group:
                req.done = True
                req.wake.set()

    def _run(self, take: Callable[[], list[Any]], group: list[_Request]) -> None:
        self.groups += 1
        try:
            results = self._commit(take)
        except BaseException as exc:  # noqa: BLE001 - handed to the requests, never swallowed
            take()  # claim the queue if the failure came before the lock: these requests get an answer
            self.requests += len(group)
            if len(group) == 1 or not isinstance(exc, Exception):
                for req in group:
                    req.error = exc
                return
            for req in group:  # the shared transaction failed: each request alone, so only the culprit fails
                try:
                    req.results = self._commit(_alone(req))[0]
                except Exception as alone:  # noqa: BLE001
                    req.error = alone
            return
        self.requests += len(group)
        for req, result in zip(group, results):
            req.results = result
