"""Gathering a unit's path: its own events, and those of every container it travelled in while it was inside,
read through the item index (key_events) so the cost follows the path's length, not the ledger's size."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import merkle
from ..caches import BoundedCache
from ..dsse import Envelope, parse_envelope
from ..errors import TrackerError
from ..parties import PartyRecord, party_from_record
from ..statements import Statement, parse_statement
from ..store.base import ReadTxn, StoredEntry

__all__ = ["PathEvent", "Gathered", "LookupCaches", "collect", "MAX_PATH", "MAX_NESTING"]

MAX_PATH = 5000
MAX_NESTING = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class PathEvent:
    entry: StoredEntry
    statement: Statement | None  # None when the stored row cannot be read
    via: str  # the key through which the event touches the unit (itself or a container it was in)
    envelope: Envelope | None = None  # as parsed from the stored bytes (None when they cannot be read)

    @property
    def event_id(self) -> str:
        return self.entry.event_id

    @property
    def leaf_index(self) -> int:
        return self.entry.leaf_index


def _judgement_cost(key: tuple[Any, ...], _value: Any) -> int:
    """Bytes a remembered judgement holds: its key keeps the path's stored rows (twice: key and path rows)."""
    rows: tuple[tuple[int, str, bytes, str], ...] = key[2]
    return 2 * sum(len(row[2]) for row in rows) + 4096


@dataclass(slots=True)
class LookupCaches:
    """What lookups remember between calls, per ledger handle, bounded in bytes: parsed entries by their exact
    stored bytes, signature results, parsed registry records, and when the log was last counted complete."""

    entries: BoundedCache[bytes, tuple[Envelope | None, Statement | None]] = field(
        default_factory=lambda: BoundedCache(64 << 20, lambda data, _: 4 * len(data)))
    signatures: BoundedCache[tuple[bytes, bytes, bytes], bool] = field(
        default_factory=lambda: BoundedCache(8 << 20, lambda k, _: len(k[0]) + len(k[1]) + len(k[2])))
    identities: BoundedCache[bytes, tuple[str, bytes]] = field(
        default_factory=lambda: BoundedCache(16 << 20, lambda data, _: len(data) // 4 + 128))
    parties: BoundedCache[str, PartyRecord] = field(
        default_factory=lambda: BoundedCache(8 << 20, lambda record, _: 4 * len(record)))
    # judgements of unchanged facts (tracker.provenance.lookup): the key holds the path's stored bytes
    judgements: BoundedCache[tuple[Any, ...], Any] = field(
        default_factory=lambda: BoundedCache(32 << 20, _judgement_cost))
    complete: tuple[int, float, float] | None = None  # (size counted, when, for how long it is trusted)
    # (checkpoint size, its signed root, {leaf index: leaf hash} proven included in that tree)
    included: tuple[int, bytes, dict[int, bytes]] | None = None

    def parsed(self, entry: StoredEntry) -> tuple[Envelope | None, Statement | None]:
        return self.entries.get_or_compute(entry.leaf_data, lambda: _parse(entry.leaf_data))

    def identity(self, leaf_data: bytes, env: Envelope) -> tuple[str, bytes]:
        """(event id of the signed payload, leaf hash) of stored bytes: two SHA-256s a long path need not redo."""
        return self.identities.get_or_compute(leaf_data, lambda: (env.event_id, merkle.leaf_hash(leaf_data)))

    def party(self, record_json: str) -> PartyRecord:
        return self.parties.get_or_compute(record_json, lambda: party_from_record(record_json))

    def clear(self) -> None:
        self.entries.clear()
        self.signatures.clear()
        self.parties.clear()
        self.identities.clear()
        self.judgements.clear()
        self.complete = None
        self.included = None


def _parse(leaf_data: bytes) -> tuple[Envelope | None, Statement | None]:
    try:
        env = parse_envelope(leaf_data)
    except TrackerError:
        return None, None
    if env.leaf_data() != leaf_data:  # stored bytes must be the canonical form
        return None, None
    try:
        return env, parse_statement(env.payload)
    except TrackerError:
        return env, None


@dataclass(frozen=True, slots=True, kw_only=True)
class Gathered:
    events: tuple[PathEvent, ...]
    missing: tuple[int, ...]  # leaf indexes the item index names whose entry rows are gone
    truncated: bool  # the path or the container nesting hit its cap


def collect(txn: ReadTxn, key: str, caches: LookupCaches) -> Gathered:
    """The events of ``key`` and of every container it travelled in (while it was inside), in leaf order.

    A container's own membership in outer containers is read from *all* its events, not only those during the
    unit's stay: an item packed into a pallet that already sits in a container travels with that container."""
    found: dict[int, PathEvent] = {}
    parsed: dict[int, Statement | None] = {}
    envelopes: dict[int, Envelope | None] = {}
    stored: dict[int, StoredEntry] = {}
    missing: set[int] = set()
    frontier: list[tuple[str, int, float]] = [(key, 0, float("inf"))]
    depth = 0
    while frontier and depth <= MAX_NESTING and len(found) < MAX_PATH:
        leaves = txn.leaves_for_keys({k for k, _, _ in frontier})
        wanted = {i for k, _, _ in frontier for i in leaves[k]} - set(stored) - missing
        fetched = txn.entries_at(wanted)
        stored.update(fetched)
        missing |= wanted - set(fetched)
        for i, entry in fetched.items():
            envelopes[i], parsed[i] = caches.parsed(entry)
        nxt: list[tuple[str, int, float]] = []
        for k, lo, hi in frontier:
            own = [i for i in leaves[k] if i in stored]
            for i in own:
                if lo <= i < hi and i not in found:
                    found[i] = PathEvent(entry=stored[i], statement=parsed[i], via=k, envelope=envelopes[i])
            # Where k sat inside a container, that container's events belong to the path for the overlap of
            # k's stay in it with the window in which k belongs to the path.
            for pos, i in enumerate(own):
                st = parsed[i]
                if st is None or st.type != "aggregate" or k not in st.items or i >= hi or st.container is None:
                    continue
                end = float("inf")
                for j in own[pos + 1:]:
                    later = parsed[j]
                    if later is not None and later.type in ("aggregate", "disaggregate") and k in later.items:
                        end = j
                        break
                start, stop = max(i + 1, lo), min(end, hi)
                if start < stop:
                    nxt.append((st.container, start, stop))
        frontier = nxt
        depth += 1
    truncated = bool(frontier) or len(found) > MAX_PATH
    events = [found[i] for i in sorted(found)][:MAX_PATH]
    return Gathered(events=tuple(events), missing=tuple(sorted(missing)), truncated=truncated)
