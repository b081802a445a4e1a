"""Consumer scans as evidence, without personal data.

A genuine label is scanned by a handful of people: staff along the way, the buyer in the shop, the owner at
home. A label copied onto a batch of fakes is scanned by many unrelated people, and often after the original
was sold -- each copy scans `genuine` unless the lookup counts. So every consumer lookup of an item adds one to
a per-item, per-day count under a *keyed* hash of the client's network prefix (an IPv4 /24 or IPv6 /48; a plain
hash of an address space that small could be reversed by trying them all). Nothing else is kept: no address,
no time of day, no user agent; rows older than the retention period (90 days) are deleted.

The rules (thresholds are settings): more distinct networks than ``after_sale_networks`` scanning an item on or
after the day it was sold, or more than ``before_retail_networks`` scanning it before it ever reached a
retailer, raises the warning ``label_copied``.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Sequence

from .store.base import Store

__all__ = ["ScanPolicy", "ScanSummary", "ScanRecorder", "network_of", "network_tag", "summarise", "SCAN_KEY_META"]

SCAN_KEY_META = "scan_hmac_key"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanPolicy:
    after_sale_networks: int = 5
    before_retail_networks: int = 3
    retention_days: int = 90

    def since(self, now: datetime) -> str:
        """The first day whose counts are still kept."""
        return (now.date() - timedelta(days=self.retention_days)).isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanSummary:
    """What the stored counts say about one item: totals for the page, and the networks since a given day."""

    scans: int
    networks: int
    since: str
    rows: tuple[tuple[str, str, int], ...] = ()

    def networks_from(self, day: str) -> int:
        return len({net for d, net, _ in self.rows if d >= day})


def summarise(rows: Sequence[tuple[str, str, int]], *, since: str) -> ScanSummary:
    return ScanSummary(scans=sum(n for _, _, n in rows), networks=len({net for _, net, _ in rows}), since=since,
                       rows=tuple(rows))


def network_of(address: str) -> str:
    """The network a client address belongs to (IPv4 /24, IPv6 /48): households and offices, not people."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def network_tag(secret: bytes, network: str) -> str:
    return hmac.new(secret, network.encode(), hashlib.sha256).hexdigest()[:32]


class ScanRecorder:
    """Counts consumer scans for one store. Counts are buffered and written at most every ``flush_seconds`` (a
    consumer page is not a ledger write, and must not queue behind one), so a crash loses at most that much
    counting, never ledger data. ``clock`` is a monotonic seconds clock."""

    def __init__(self, store: Store, *, policy: ScanPolicy | None = None, flush_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.policy = policy or ScanPolicy()
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._pending: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        self._last_flush = clock()
        self._pruned_day: date | None = None
        self._secret: bytes | None = None

    def secret(self) -> bytes:
        if self._secret is None:
            with self.store.read() as txn:
                stored = txn.meta().get(SCAN_KEY_META)
            if stored is None:
                with self.store.write() as wtxn:
                    stored = wtxn.meta().get(SCAN_KEY_META) or secrets.token_hex(32)
                    wtxn.set_meta({SCAN_KEY_META: stored})
            self._secret = bytes.fromhex(stored)
        return self._secret

    def record(self, key: str, address: str, *, now: datetime) -> None:
        tag = network_tag(self.secret(), network_of(address))
        with self._lock:
            slot = (key, now.date().isoformat(), tag)
            self._pending[slot] = self._pending.get(slot, 0) + 1
            due = self._clock() - self._last_flush >= self.flush_seconds
        if due:
            self.flush(now=now)

    def unsaved(self, key: str) -> list[tuple[str, str, int]]:
        """(day, network tag, count) counted for ``key`` in this process and not yet written: a lookup adds
        them, so a burst of scans counts at once rather than a flush later."""
        with self._lock:
            return [(day, tag, n) for (k, day, tag), n in self._pending.items() if k == key]

    def flush(self, *, now: datetime) -> None:
        with self._lock:
            rows = [(k, day, tag, n) for (k, day, tag), n in self._pending.items()]
            self._pending.clear()
            self._last_flush = self._clock()
            prune = self._pruned_day != now.date()
            self._pruned_day = now.date()
        if not rows and not prune:
            return
        with self.store.write() as txn:
            txn.add_scans(rows)
            if prune:
                txn.prune_scans(before_day=self.policy.since(now))
