"""Export: ledger events as EPCIS 2.0 events in an EPCISQueryDocument, each linked back to its Waybill event
(``waybill:ledger``: event id, leaf index, the signed envelope, and an RFC 6962 inclusion proof to the signed
checkpoint the document carries as ``waybill:checkpoint``), so a receiver can check every event against the
ledger's published verifier key without trusting whoever handed the document over.

Every event carries an ``eventID``: the ID of the EPCIS event an import recorded (``source_event``), else the
CBV 2.0 event hash ID of the exported event (computed without the ``waybill:`` links)."""
from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..ledger import Ledger, statement_of_entry
from ..statements import Statement, format_time
from ..store.base import StoredEntry
from .hashing import event_hash_ids
from .mapping import event_of_statement
from .vocab import CONTEXT, EVENT_LINK, SCHEMA_VERSION, WAYBILL_PREFIX

__all__ = ["ExportedEvent", "export_ids", "exported_events", "query_document", "item_history"]

ExportedEvent = tuple[StoredEntry, Statement]

_CACHE_SIZE = 100_000
_hash_cache: "OrderedDict[str, str]" = OrderedDict()  # Waybill event id -> hash ID (events never change)
_cache_lock = threading.Lock()


def export_ids(items: Sequence[ExportedEvent]) -> dict[str, str]:
    """The export ID of each event (source_event, else the cached or freshly computed hash ID)."""
    out: dict[str, str] = {}
    todo: list[ExportedEvent] = []
    with _cache_lock:
        for entry, st in items:
            src = st.raw.get("source_event")
            if isinstance(src, str):
                out[entry.event_id] = src
            elif entry.event_id in _hash_cache:
                out[entry.event_id] = _hash_cache[entry.event_id]
                _hash_cache.move_to_end(entry.event_id)
            else:
                todo.append((entry, st))
    if todo:
        computed = event_hash_ids([event_of_statement(st) for _, st in todo])
        with _cache_lock:
            for (entry, _), hid in zip(todo, computed):
                out[entry.event_id] = hid
                _hash_cache[entry.event_id] = hid
            while len(_hash_cache) > _CACHE_SIZE:
                _hash_cache.popitem(last=False)
    return out


def exported_events(ledger: Ledger, items: Sequence[ExportedEvent], *, tree_size: int,
                    proofs: bool = True) -> list[dict[str, Any]]:
    """EPCIS events for stored entries, with their Waybill links (inclusion proofs at ``tree_size``)."""
    ids = export_ids(items)
    out = []
    for entry, st in items:
        event = event_of_statement(st, event_id=ids[entry.event_id])
        link: dict[str, Any] = {"eventId": entry.event_id, "leafIndex": entry.leaf_index,
                                "envelope": json.loads(entry.leaf_data)}
        if proofs:
            _, size, hashes = ledger.inclusion_proof(leaf_index=entry.leaf_index, tree_size=tree_size)
            link["inclusionProof"] = {"treeSize": size, "hashes": [base64.b64encode(h).decode() for h in hashes]}
        event[EVENT_LINK] = link
        out.append(event)
    return out


def query_document(events: list[dict[str, Any]], *, checkpoint: str, now: datetime,
                   query_name: str = "SimpleEventQuery") -> dict[str, Any]:
    """An EPCISQueryDocument holding ``events``, with the signed checkpoint their proofs lead to."""
    return {"@context": [CONTEXT[0], dict(CONTEXT[1])],  # type: ignore[call-overload]
            "type": "EPCISQueryDocument", "schemaVersion": SCHEMA_VERSION, "creationDate": format_time(now),
            "epcisBody": {"queryResults": {"queryName": query_name, "resultsBody": {"eventList": events}}},
            f"{WAYBILL_PREFIX}:checkpoint": checkpoint}


def _entries(ledger: Ledger, event_ids: Iterable[str]) -> list[ExportedEvent]:
    with ledger.store.read() as txn:
        found = txn.entries_by_event_ids(list(event_ids))
    return [(e, statement_of_entry(e)) for e in sorted(found.values(), key=lambda e: e.leaf_index)]


def item_history(ledger: Ledger, key: str, *, now: datetime) -> dict[str, Any]:
    """An item's (or container's) whole history — the path a consumer lookup judges, containers' moves
    included — as an EPCISQueryDocument. Raises InvalidIdentifier for a malformed key."""
    from ..provenance import lookup  # the lookup's own path: what the consumer sees is what is exported

    answer = lookup(ledger, key)
    checkpoint = answer.checkpoint or ledger.checkpoint()
    size = ledger.verified_checkpoint(checkpoint).size
    items = [(e, st) for e, st in _entries(ledger, [p["event_id"] for p in answer.path]) if e.leaf_index < size]
    return query_document(exported_events(ledger, items, tree_size=size), checkpoint=checkpoint, now=now)
