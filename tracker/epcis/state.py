"""The ledger as an import planner sees it (:class:`tracker.epcis.importer.LedgerView`), read through the key index
in a few batched queries: the cost follows the keys a document names, not the ledger's size."""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from ..ledger import Ledger, party_from_record, statement_of_entry
from ..statements import PartyRecord, Statement
from ..store.base import ReadTxn
from .hashing import event_hash_ids
from .mapping import event_of_statement

__all__ = ["LedgerState", "heads_in"]

MAX_NESTING = 6  # as deep as lookups follow containers (provenance.MAX_NESTING)


def heads_in(txn: ReadTxn, keys: Iterable[str],
             parsed: dict[int, tuple[str, Statement | None]] | None = None) -> dict[str, str]:
    """For each key, the event id a signer puts in ``prev``: its latest event, events of the containers it sits
    in included (what ``provenance.head`` answers for one key, for many keys at once). Keys without events
    are left out."""
    parsed = {} if parsed is None else parsed
    best: dict[str, int] = {}
    frontier: list[tuple[str, str, int, float]] = [(k, k, 0, float("inf")) for k in set(keys)]
    depth = 0
    while frontier and depth <= MAX_NESTING:
        leaves = txn.leaves_for_keys({cur for _, cur, _, _ in frontier})
        wanted = {i for _, cur, _, hi in frontier for i in leaves.get(cur, []) if i < hi} - set(parsed)
        for i, entry in txn.entries_at(wanted).items():
            try:
                parsed[i] = (entry.event_id, statement_of_entry(entry))
            except Exception:  # an unreadable row is the lookup's to report, not the importer's
                parsed[i] = (entry.event_id, None)
        nxt: list[tuple[str, str, int, float]] = []
        for origin, cur, lo, hi in frontier:
            own = [i for i in leaves.get(cur, []) if i in parsed]
            inside = [i for i in own if lo <= i < hi]
            if inside:
                best[origin] = max(best.get(origin, -1), inside[-1])
            for pos, i in enumerate(own):
                st = parsed[i][1]
                if st is None or st.type != "aggregate" or cur not in st.items or i >= hi or st.container is None:
                    continue
                end = next((float(j) for j in own[pos + 1:] if (later := parsed[j][1]) is not None
                            and later.type in ("aggregate", "disaggregate") and cur in later.items), float("inf"))
                start, stop = max(i + 1, lo), min(end, hi)
                if start < stop:
                    nxt.append((origin, st.container, start, stop))
        frontier = nxt
        depth += 1
    return {k: parsed[i][0] for k, i in best.items()}


class LedgerState:
    """A read view of a ledger for one import chunk (its reads are cached: make a new one per chunk)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._parties: dict[str, PartyRecord | None] = {}
        self._parsed: dict[int, tuple[str, Statement | None]] = {}

    def party(self, party_id: str) -> PartyRecord | None:
        if party_id not in self._parties:
            with self.ledger.store.read() as txn:
                record = txn.party_record(party_id)
            self._parties[party_id] = party_from_record(record) if record else None
        return self._parties[party_id]

    def heads(self, keys: Iterable[str]) -> dict[str, str]:
        with self.ledger.store.read() as txn:
            return heads_in(txn, keys, self._parsed)

    def _events(self, keys: Iterable[str]) -> list[tuple[int, str, Statement]]:
        """Every event naming one of ``keys`` directly, in ledger order."""
        with self.ledger.store.read() as txn:
            leaves = sorted({i for ix in txn.leaves_for_keys(set(keys)).values() for i in ix})
            missing = [i for i in leaves if i not in self._parsed]
            for i, entry in txn.entries_at(missing).items():
                try:
                    self._parsed[i] = (entry.event_id, statement_of_entry(entry))
                except Exception:
                    self._parsed[i] = (entry.event_id, None)
        return [(i, self._parsed[i][0], st) for i in leaves if i in self._parsed
                and (st := self._parsed[i][1]) is not None]

    def contents(self, container: str) -> set[str]:
        inside: set[str] = set()
        for _, _, st in self._events([container]):
            if st.container == container and st.type == "aggregate":
                inside.update(st.items)
            elif st.container == container and st.type == "disaggregate":
                inside.difference_update(st.items)
        return inside

    def shipments(self, keys: Iterable[str]) -> list[tuple[str, Statement]]:
        return [(eid, st) for _, eid, st in self._events(keys) if st.type == "ship"]

    def recorded(self, source_ids: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, str]]:
        """Which of these source events the ledger already records, as (signer, Waybill event id): by the
        ``source_event`` an import kept, or — for a CBV hash ID — by the hash of a native event's export."""
        if not source_ids:
            return {}
        events = self._events({k for keys in source_ids.values() for k in keys})
        found: dict[str, tuple[str, str]] = {}
        for _, eid, st in events:
            src = st.raw.get("source_event")
            if isinstance(src, str) and src in source_ids and src not in found:
                found[src] = (st.actor, eid)
        wanted = {s for s in source_ids if s not in found and s.startswith("ni:///")}
        native = [(eid, st) for _, eid, st in events if "source_event" not in st.raw and st.type != "party"]
        if wanted and native:
            hashes = event_hash_ids([event_of_statement(st) for _, st in native])
            for (eid, st), hid in zip(native, hashes):
                if hid in wanted and hid not in found:
                    found[hid] = (st.actor, eid)
        return found
