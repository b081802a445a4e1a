"""The server's ``now``: the wall clock, except that it never runs backwards.

Admission judges two things by ``now`` (tracker/ledger.py takes it as an argument): a statement's ``time``
may be at most CLOCK_SKEW ahead of it, and a key revoked at T refuses statements once ``now`` has reached T.
A server clock that jumps backwards (an NTP step, a VM restored from a snapshot, a wrong manual setting)
would get both wrong: honest statements refused as ``future_time``, and -- worse -- a stolen key whose
revocation the ledger already holds accepted again, because the revocation seems to lie in the future.
The ``ingested_at`` and checkpoint ``created_at`` stamps would go backwards too.

So the server's ``now`` is the latest of:

- the wall clock;
- the last ``now`` this process handed out, carried forward by the monotonic clock (which no one can set):
  within a process time keeps moving at the right rate whatever the wall clock does;
- the latest time the ledger has recorded (the newest checkpoint's ``created_at``): a restarted process,
  another worker or another machine cannot go back behind what any of them already wrote.

Only times the server itself wrote count, never a statement's own ``time``: a signer could otherwise push the
server's clock ahead by CLOCK_SKEW per statement.

What this cannot do: tell a wrong jump *forwards* from a right one. A server whose clock ran ahead and wrote
keeps that time as its floor until the real time catches up (revocations dated within that gap take effect
early; statements are never refused wrongly because of it). ``Clock.ahead_of_wall`` reports the gap so an
operator can see it.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from .store.base import Store

__all__ = ["Clock", "wall_time", "recorded_time", "ledger_clock"]

log = logging.getLogger("waybill.clock")
_WARN_AHEAD = timedelta(minutes=1)
_WARN_EVERY = 600.0  # seconds between repeated warnings of one clock


def wall_time() -> datetime:
    """The wall clock (UTC). Tests replace it to make the clock jump."""
    return datetime.now(timezone.utc)


def recorded_time(store: Store) -> datetime | None:
    """The latest time the ledger has recorded: the newest checkpoint's ``created_at`` (None on an empty store)."""
    with store.read() as txn:
        cp = txn.latest_checkpoint()
    if cp is None:
        return None
    when = datetime.fromisoformat(cp.created_at.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class Clock:
    """``now()`` = max(wall clock, last value handed out + monotonic time since, ``floor()``). Thread-safe.

    ``floor`` is read on every call (one indexed row) so that several processes sharing a ledger agree;
    ``wall`` and ``monotonic`` default to the real clocks and are only replaced in tests."""

    def __init__(self, *, floor: Callable[[], datetime | None] | None = None,
                 wall: Callable[[], datetime] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._floor = floor
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: tuple[datetime, float] | None = None
        self._warned_at: float | None = None
        self.ahead_of_wall = timedelta(0)

    def now(self) -> datetime:
        wall = (self._wall or wall_time)()
        floor = self._floor() if self._floor is not None else None
        with self._lock:
            tick = self._monotonic()
            candidates = [wall]
            if self._last is not None:
                last, at = self._last
                candidates.append(last + timedelta(seconds=max(0.0, tick - at)))
            if floor is not None:
                candidates.append(floor)
            current = max(candidates)
            self._last = (current, tick)
            self.ahead_of_wall = current - wall
            warn = self.ahead_of_wall > _WARN_AHEAD and (self._warned_at is None
                                                         or tick - self._warned_at > _WARN_EVERY)
            if warn:
                self._warned_at = tick
        if warn:
            log.warning("the wall clock is %s behind the time this server already used or the ledger recorded; "
                        "carrying on from %s (check the machine's clock / NTP)", self.ahead_of_wall,
                        current.isoformat())
        return current


def ledger_clock(store: Store) -> Clock:
    """The clock a process writing to the ledger in ``store`` uses (the web app keeps one; a CLI command makes
    one per run)."""
    return Clock(floor=lambda: recorded_time(store))
