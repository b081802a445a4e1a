"""Memory-bounded memo tables for read paths. Ledger entries never change once written (and a changed row fails
the Merkle check before it is trusted), so parsing and signature checks can be remembered by the exact stored
bytes; what must be bounded is memory, not a count of entries, because entries range from 300 bytes to 1 MB.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A least-recently-used map holding at most ``max_bytes`` by the caller's own measure of each entry
    (``cost(key, value)``, in bytes). Safe to share between threads."""

    def __init__(self, max_bytes: int, cost: Callable[[K, V], int]) -> None:
        self.max_bytes = max_bytes
        self._cost = cost
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def _find(self, key: K) -> tuple[bool, V | None]:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return False, None
            self._items.move_to_end(key)
            return True, found[0]

    def get(self, key: K) -> V | None:
        return self._find(key)[1]

    def put(self, key: K, value: V) -> V:
        size = self._cost(key, value) + 64  # the table's own bookkeeping per entry
        if size > self.max_bytes:
            return value  # too big to be worth remembering
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return value

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        hit, value = self._find(key)
        if hit:
            return value  # type: ignore[return-value]  # a stored V, which may itself be None
        return self.put(key, compute())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
