"""The EPCIS 2.0 simple event query over the ledger: the parameters Waybill supports, candidate events read
through the key or type index (never the whole log when an EPC is named), and paging tokens.

Events come in ledger order. A token pins the tree size of the first page, so later pages neither skip nor
repeat events appended meanwhile; a page may hold fewer than ``perPage`` events when a scan stops at
``SCAN_LIMIT`` candidates, and then still says where to go on."""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from ..errors import InvalidInput, TrackerError
from ..ledger import Ledger, statement_of_entry
from ..statements import Statement
from ..store.base import StoredEntry
from .epc import key_of_epc
from .export import ExportedEvent, export_ids
from .vocab import DISPOSITION_OF_DECISION, SHAPE_OF_TYPE, SHAPES, cbv_word

__all__ = ["EventQuery", "QueryParameterError", "parse_query", "run_query", "QueryPage", "SUPPORTED_PARAMETERS",
           "MAX_PER_PAGE", "DEFAULT_PER_PAGE", "SCAN_LIMIT"]

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100
SCAN_LIMIT = 20_000
_LISTS = ("MATCH_epc", "MATCH_anyEPC", "MATCH_parentID", "EQ_bizStep", "eventType", "EQ_action",
          "EQ_disposition", "EQ_eventID")
SUPPORTED_PARAMETERS = _LISTS + ("GE_eventTime", "LT_eventTime", "perPage", "nextPageToken")


class QueryParameterError(InvalidInput):
    """A query parameter Waybill does not support, or a value it cannot read (EPCIS QueryParameterException)."""

    code = "query_parameter"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventQuery:
    epc: frozenset[str] | None = None
    any_epc: frozenset[str] | None = None
    parent: frozenset[str] | None = None
    types: frozenset[str] | None = None  # statement types allowed by bizStep, eventType and action
    dispositions: frozenset[str] | None = None
    event_ids: frozenset[str] | None = None
    ge_time: datetime | None = None
    lt_time: datetime | None = None
    per_page: int = DEFAULT_PER_PAGE

    def fingerprint(self) -> str:
        fields = {k: sorted(v) if isinstance(v, frozenset) else (v.isoformat() if isinstance(v, datetime) else v)
                  for k, v in ((f, getattr(self, f)) for f in self.__slots__) if k != "per_page"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _values(params: Mapping[str, str], name: str) -> list[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    values = [v for v in raw.split("|")]
    if not values or any(not v for v in values):
        raise QueryParameterError(f"{name} needs one or more values separated by |", field=name)
    return values


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise QueryParameterError(f"{name} must be a date-time with a time zone, e.g. 2026-03-01T00:00:00Z",
                                  field=name)
    return when.astimezone(timezone.utc)


def _keys(params: Mapping[str, str], name: str) -> frozenset[str] | None:
    values = _values(params, name)
    if values is None:
        return None
    try:
        return frozenset(key_of_epc(v) for v in values)
    except TrackerError as exc:
        raise QueryParameterError(f"{name}: {exc.message}", field=name) from exc


def parse_query(params: Mapping[str, str]) -> EventQuery:
    """Read URL query parameters. Raises QueryParameterError naming the parameter."""
    unknown = sorted(set(params) - set(SUPPORTED_PARAMETERS))
    if unknown:
        raise QueryParameterError(f"query parameter {unknown[0]} is not supported here (supported: "
                                  f"{', '.join(SUPPORTED_PARAMETERS)})", field=unknown[0])
    types = {s.statement_type for s in SHAPES}
    for name, pick in (("EQ_bizStep", lambda s, v: s.biz_step == cbv_word(v, "bizstep")),
                       ("eventType", lambda s, v: s.event_type == v), ("EQ_action", lambda s, v: s.action == v)):
        values = _values(params, name)
        if values is not None:
            types &= {s.statement_type for s in SHAPES if any(pick(s, v) for v in values)}
    restricted = any(params.get(n) is not None for n in ("EQ_bizStep", "eventType", "EQ_action"))
    dispositions = _values(params, "EQ_disposition")
    per_page = params.get("perPage", str(DEFAULT_PER_PAGE))
    if not per_page.isdigit() or not 1 <= int(per_page) <= MAX_PER_PAGE:
        raise QueryParameterError(f"perPage must be 1 to {MAX_PER_PAGE}", field="perPage")
    event_ids = _values(params, "EQ_eventID")
    return EventQuery(epc=_keys(params, "MATCH_epc"), any_epc=_keys(params, "MATCH_anyEPC"),
                      parent=_keys(params, "MATCH_parentID"), types=frozenset(types) if restricted else None,
                      dispositions=frozenset(cbv_word(d, "disp") or d for d in dispositions) if dispositions else None,
                      event_ids=frozenset(event_ids) if event_ids else None, ge_time=_time(params, "GE_eventTime"),
                      lt_time=_time(params, "LT_eventTime"), per_page=int(per_page))


def _disposition(st: Statement) -> str | None:
    if st.type == "inspect":
        return DISPOSITION_OF_DECISION.get(st.decision or "")
    return SHAPE_OF_TYPE[st.type].disposition


def _matches(q: EventQuery, st: Statement) -> bool:
    if st.type not in SHAPE_OF_TYPE or (q.types is not None and st.type not in q.types):
        return False
    if q.epc is not None and not q.epc.intersection(st.items):
        return False
    if q.any_epc is not None and not q.any_epc.intersection(st.keys_touched):
        return False
    if q.parent is not None and st.container not in q.parent:
        return False
    if q.dispositions is not None and _disposition(st) not in q.dispositions:
        return False
    if q.ge_time is not None and st.time < q.ge_time:
        return False
    return q.lt_time is None or st.time < q.lt_time


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPage:
    items: list[ExportedEvent]
    tree_size: int
    checkpoint: str
    next_token: str | None


def _token(start: int, size: int, q: EventQuery) -> str:
    raw = json.dumps({"from": start, "size": size, "q": q.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str, q: EventQuery) -> tuple[int, int]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start, size, fp = int(doc["from"]), int(doc["size"]), doc["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryParameterError("nextPageToken is not a token this server issued", field="nextPageToken") from exc
    if fp != q.fingerprint() or start < 0 or size < 1:
        raise QueryParameterError("nextPageToken belongs to another query: repeat the query's parameters with it",
                                  field="nextPageToken")
    return start, size


def _candidates(ledger: Ledger, q: EventQuery, start: int, size: int) -> Iterator[StoredEntry]:
    named = set().union(*(s for s in (q.epc, q.any_epc, q.parent) if s is not None)) if (
        q.epc or q.any_epc or q.parent) else None
    with ledger.store.read() as txn:
        if named is not None:
            leaves = sorted({i for ix in txn.leaves_for_keys(named).values() for i in ix if start <= i < size})
            for lo in range(0, len(leaves), 500):
                chunk = txn.entries_at(leaves[lo:lo + 500])
                yield from (chunk[i] for i in leaves[lo:lo + 500] if i in chunk)
            return
        typed = getattr(txn, "entries_of_types", None)
        entries: Any = (typed(q.types, start=start) if q.types is not None and typed is not None
                        else txn.iter_entries(start))
        for entry in entries:
            if entry.leaf_index >= size:
                return
            yield entry


def run_query(ledger: Ledger, q: EventQuery, *, token: str | None = None) -> QueryPage:
    """One page of events matching ``q`` (from ``token``), in ledger order."""
    checkpoint = ledger.checkpoint()
    start, size = _read_token(token, q) if token else (0, ledger.verified_checkpoint(checkpoint).size)
    if token:
        checkpoint = ledger.checkpoint()  # a later checkpoint still proves entries below the pinned size
    found: list[ExportedEvent] = []
    scanned, next_start = 0, None
    for entry in _candidates(ledger, q, start, size):
        scanned += 1
        if len(found) >= q.per_page or scanned > SCAN_LIMIT:
            next_start = entry.leaf_index
            break
        if entry.type == "party":
            continue
        try:
            st = statement_of_entry(entry)
        except TrackerError:
            continue  # unreadable rows are the lookup's and the audit's to report
        if _matches(q, st):
            found.append((entry, st))
    if q.event_ids is not None and found:
        ids = export_ids(found)
        found = [(e, st) for e, st in found if ids[e.event_id] in q.event_ids]
    return QueryPage(items=found, tree_size=size, checkpoint=checkpoint,
                     next_token=_token(next_start, size, q) if next_start is not None else None)
