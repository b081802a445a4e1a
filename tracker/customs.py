"""The customs view of the ledger for one country: goods shipped across the border into it, what its customs
decided about them, which of them the provenance check flags, and the numbers behind the dashboard charts.

A *consignment* is one unit (item or container key) named by a `ship` statement that crosses into the
country: its addressee is a party of that country and the statement's location is outside it. Its status
follows the unit's events after that ship, in ledger order:

- ``arrived``  — the addressee recorded the matching `receive` (cleared or not: see ``released``);
- ``seized`` / ``held`` / ``released`` — the latest `inspect` by a customs party of the country;
- ``awaiting`` — none of those yet.

Reads go through indexes: ship entries by type (``ix_entries_type``), then each unit's own later events
through the key index. Verdicts come from ``provenance.lookup``, one per unit.
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence, cast

from . import provenance
from .errors import InvalidInput, TrackerError
from .handoffs import container_contents, statement_or_none
from .identifiers import is_container_key, parse_key
from .ledger import Ledger, party_from_record
from .statements import Statement, parse_time
from .store.base import CustomsReadTxn
from .timefmt import format_time

__all__ = ["Consignment", "Assessment", "Dashboard", "Stats", "STATUSES", "OPEN_STATUSES", "DECISIONS", "decisions_for",
           "consignments", "assess", "dashboard", "full_dashboard", "stats", "csv_export", "CSV_COLUMNS",
           "unit_consignments"]

STATUSES = ("awaiting", "held", "released", "seized", "arrived")
OPEN_STATUSES = ("awaiting", "held")  # the queue: still waiting for a customs decision
DEFAULT_LIMIT = 500
CLEARANCE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 day", 24), ("1–2 days", 48), ("2–4 days", 96), ("4–7 days", 168), ("1–2 weeks", 336),
    ("> 2 weeks", float("inf")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Consignment:
    key: str
    ship_event: str
    ship_leaf: int
    shipped_at: str
    sender: str
    sender_country: str
    recipient: str
    status: str
    decision_event: str | None = None
    decided_at: str | None = None
    decided_by: str | None = None
    released: bool = False
    clearance_hours: float | None = None  # ship → release, when released

    @property
    def kind(self) -> str:
        return "container" if is_container_key(self.key) else "item"


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """A consignment plus what the provenance check says about its unit now."""

    consignment: Consignment
    verdict: str
    reasons: tuple[Mapping[str, Any], ...]
    holder: str | None
    head: str | None
    product: str | None
    manufacturer: str | None
    origin_country: str | None
    path: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        return self.consignment.key

    @property
    def flagged(self) -> bool:
        return any(r["severity"] in ("critical", "warning") for r in self.reasons)

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r["code"] for r in self.reasons if r["severity"] in ("critical", "warning"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    flags_per_day: tuple[tuple[str, int, int], ...]  # (YYYY-MM-DD, critical, warning)
    verdicts_by_origin: Mapping[str, Mapping[str, int]]
    verdicts_by_manufacturer: Mapping[str, Mapping[str, int]]
    clearance_buckets: tuple[tuple[str, int], ...]
    clearance_median_hours: float | None
    decisions: Mapping[str, int]
    statuses: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dashboard:
    country: str
    customs_parties: tuple[str, ...]
    assessments: tuple[Assessment, ...]  # every consignment into the country, newest ship first
    stats: Stats
    tree_size: int
    truncated: bool = False
    computed_at: str = field(default="", compare=False)  # RFC 3339: when read (shown as "updated 14:02")

    @property
    def queue(self) -> tuple[Assessment, ...]:
        return tuple(a for a in self.assessments if a.consignment.status in OPEN_STATUSES)

    def in_status(self, status: str) -> tuple[Assessment, ...]:
        """The consignments in one status (each consignment is in exactly one)."""
        return tuple(a for a in self.assessments if a.consignment.status == status)

    def shipment(self, ship_event: str) -> tuple[Assessment, ...]:
        """The units of one shipment into the country (a consignment view groups them)."""
        return tuple(a for a in self.assessments if a.consignment.ship_event == ship_event)

    def shipment_size(self, ship_event: str) -> int:
        return sum(1 for a in self.assessments if a.consignment.ship_event == ship_event)

    @property
    def flagged(self) -> tuple[Assessment, ...]:
        return tuple(a for a in self.assessments if a.flagged)


# --- reading ---------------------------------------------------------------------------------------------

def _country(value: str) -> str:
    if not isinstance(value, str) or len(value) != 2 or not value.isascii() or not value.isalpha():
        raise InvalidInput("country must be an ISO 3166-1 alpha-2 code like DE", code="invalid_country",
                           field="country")
    return value.upper()


def _hours(start: str, end: str) -> float | None:
    try:
        return round((parse_time(end) - parse_time(start)).total_seconds() / 3600, 2)
    except TrackerError:
        return None


def consignments(ledger: Ledger, country: str, *, limit: int = DEFAULT_LIMIT,
                 keys: Iterable[str] | None = None) -> tuple[list[Consignment], bool]:
    """Cross-border consignments into ``country``, newest ship first, at most ``limit`` (and whether more
    were left out). With ``keys``, only those units."""
    country = _country(country)
    only = set(keys) if keys is not None else None
    with ledger.store.read() as txn:
        local, customs = _local_parties(txn, country)
        candidates = _crossing(cast(CustomsReadTxn, txn).entries_of_types(["ship"]), local, country, only)
        return _consignments(txn, candidates, customs, only=only, limit=limit)


def _local_parties(txn: Any, country: str) -> tuple[set[str], set[str]]:
    """The parties of ``country``, and those of them that are customs."""
    parties = {pid: party_from_record(rec) for pid, rec in txn.party_records().items()}
    local = {pid for pid, p in parties.items() if p.country == country}
    return local, {pid for pid in local if "customs" in parties[pid].roles}


def _crossing(ships: Iterable[Any], local: set[str], country: str, only: set[str] | None) -> list[tuple[Any, Statement]]:
    """The ship entries (in leaf order) that cross into ``country``: addressed to a local party, from outside."""
    out: list[tuple[Any, Statement]] = []
    for entry in ships:
        st = statement_or_none(entry)
        if st is None or st.type != "ship" or st.to not in local or st.location.get("country") == country:
            continue
        if only is not None and not only & set(st.items):
            continue
        out.append((entry, st))
    return out


def _consignments(txn: Any, candidates: Sequence[tuple[Any, Statement]], customs: set[str], *,
                  only: set[str] | None, limit: int) -> tuple[list[Consignment], bool]:
    """The consignments of these crossing ships (newest first), each unit's status read from its later events."""
    truncated = False
    units = [(e, st, k) for e, st in candidates for k in st.items if only is None or k in only]
    if len(units) > limit:
        units, truncated = units[-limit:], True
    leaves = txn.leaves_for_keys({k for _, _, k in units})
    first = min((e.leaf_index for e, _, _ in units), default=0)
    later = txn.entries_at({i for ls in leaves.values() for i in ls if i > first})
    parsed = {i: statement_or_none(e) for i, e in later.items()}
    out: list[Consignment] = []
    for entry, st, key in reversed(units):
        status, decision, released, arrived = "awaiting", None, False, False
        for i in leaves.get(key, []):
            ev = parsed.get(i)
            if i <= entry.leaf_index or ev is None:
                continue
            if ev.type == "receive" and ev.ship == entry.event_id:
                arrived = True
                break
            if ev.type == "ship":
                break  # shipped on: what happens next belongs to another consignment
            if ev.type == "inspect" and ev.actor in customs:
                decision = (later[i], ev)
                released = ev.decision == "released" or released
                if ev.decision == "seized":
                    break
        if decision is not None:
            status = decision[1].decision or "awaiting"
        if arrived and status != "seized":
            status = "arrived"
        release = decision if decision is not None and decision[1].decision == "released" else None
        out.append(Consignment(
            key=key, ship_event=entry.event_id, ship_leaf=entry.leaf_index, shipped_at=st.time_str, sender=st.actor,
            sender_country=st.location.get("country", ""), recipient=st.to or "", status=status,
            decision_event=decision[0].event_id if decision else None,
            decided_at=decision[1].time_str if decision else None,
            decided_by=decision[1].actor if decision else None, released=released,
            clearance_hours=_hours(st.time_str, release[1].time_str) if release else None))
    return out, truncated


def unit_consignments(ledger: Ledger, country: str, key: str) -> list[Consignment]:
    """The consignments of one unit into ``country`` (for the detail page), newest first."""
    key = str(parse_key(key))
    return consignments(ledger, country, keys=[key], limit=10_000)[0]


def _contents_at(ledger: Ledger, container: str, before: int) -> list[str]:
    with ledger.store.read() as txn:
        return container_contents(txn, container, before=before)[0]


def _sample(keys: Sequence[str], n: int) -> list[str]:
    if len(keys) <= n:
        return list(keys)
    step = (len(keys) - 1) / (n - 1)
    return list(dict.fromkeys(keys[round(i * step)] for i in range(n)))


_ORDER = {v: i for i, v in enumerate(provenance.VERDICTS)}


def assess(ledger: Ledger, items: Sequence[Consignment], *, container_sample: int = 3,
           depends: dict[str, set[str]] | None = None) -> list[Assessment]:
    """Each consignment with what the provenance check says now (one lookup per distinct unit).

    A container is judged through the items packed in it when it was shipped: up to ``container_sample`` of
    them (first, last and evenly between), worst verdict and every reason they raise. Items of one
    container share its journey, so a sample shows the route's problems; a per-item problem inside a
    container (one cloned serial) shows when that item is looked up itself."""
    answers: dict[str, provenance.Provenance] = {}

    def answer(key: str) -> provenance.Provenance:
        if key not in answers:
            answers[key] = provenance.lookup(ledger, key)
        return answers[key]

    out = []
    for c in items:
        unit = answer(c.key)
        unit_path = tuple(unit.to_json()["path"])
        judged = [answer(k) for k in _sample(_contents_at(ledger, c.key, c.ship_leaf), container_sample)] \
            if c.kind == "container" else [unit]
        if not judged:
            judged = [unit]
        if depends is not None:  # what new entries would change this assessment (tracker.customs_live)
            depends.setdefault(c.key, set()).update(unit.keys, *(a.keys for a in judged))
        worst = max(judged, key=lambda a: _ORDER[a.verdict])
        reasons: dict[tuple[str, str | None], Mapping[str, Any]] = {}
        path: dict[str, Mapping[str, Any]] = {row["event_id"]: row for row in unit_path}
        for a in judged:
            doc = a.to_json()
            for r in doc["reasons"]:
                reasons.setdefault((r["code"], r.get("event_id")), r)
            for row in doc["path"]:
                path.setdefault(row["event_id"], row)
        origin_path = judged[0].to_json()["path"]
        first = origin_path[0] if origin_path else None
        product = judged[0].product or {}
        manufacturer = product.get("manufacturer") or (first["actor"] if first else None)
        origin = (first.get("location") or {}).get("country") if first else None
        order = {"critical": 0, "warning": 1, "info": 2}
        out.append(Assessment(consignment=c, verdict=worst.verdict,
                              reasons=tuple(sorted(reasons.values(), key=lambda r: order[r["severity"]])),
                              holder=unit.holder, head=unit_path[-1]["event_id"] if unit_path else None,
                              product=product.get("name"), manufacturer=manufacturer, origin_country=origin,
                              path=tuple(path.values())))
    return out


# --- numbers for the charts ------------------------------------------------------------------------------------

def stats(assessments: Sequence[Assessment], *, max_days: int = 60) -> Stats:
    """Flags per day (critical and warning reasons, by the day of the event that raised them; the last
    ``max_days`` days that have data), verdicts by origin country and by manufacturer, clearance times."""
    flags: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    seen: set[tuple[str, str, str | None]] = set()
    by_origin: dict[str, Counter] = defaultdict(Counter)
    by_maker: dict[str, Counter] = defaultdict(Counter)
    units_seen: set[str] = set()
    for a in assessments:
        if a.key not in units_seen:
            units_seen.add(a.key)
            by_origin[a.origin_country or "unknown"][a.verdict] += 1
            by_maker[a.manufacturer or "unknown"][a.verdict] += 1
        times = {row["event_id"]: row.get("time") for row in a.path}
        for r in a.reasons:
            if r["severity"] not in ("critical", "warning"):
                continue
            mark = (a.key, r["code"], r.get("event_id"))
            if mark in seen:
                continue
            seen.add(mark)
            when = times.get(r.get("event_id")) or a.consignment.shipped_at
            flags[when[:10]][0 if r["severity"] == "critical" else 1] += 1
    days: list[tuple[str, int, int]] = []
    if flags:
        last = datetime.fromisoformat(max(flags))
        first = max(datetime.fromisoformat(min(flags)), last - timedelta(days=max_days - 1))
        day = first
        while day <= last:
            name = day.strftime("%Y-%m-%d")
            c, w = flags.get(name, (0, 0))
            days.append((name, c, w))
            day += timedelta(days=1)
    hours = sorted(a.consignment.clearance_hours for a in assessments if a.consignment.clearance_hours is not None)
    buckets = []
    lower = 0.0
    for label, upper in CLEARANCE_BUCKETS:
        buckets.append((label, sum(1 for h in hours if lower <= h < upper)))
        lower = upper
    median = None
    if hours:
        mid = len(hours) // 2
        median = hours[mid] if len(hours) % 2 else round((hours[mid - 1] + hours[mid]) / 2, 2)
    decisions = Counter(a.consignment.status for a in assessments if a.consignment.decision_event)
    return Stats(flags_per_day=tuple(days), verdicts_by_origin={k: dict(v) for k, v in sorted(by_origin.items())},
                 verdicts_by_manufacturer={k: dict(v) for k, v in sorted(by_maker.items())},
                 clearance_buckets=tuple(buckets), clearance_median_hours=median,
                 decisions={d: decisions.get(d, 0) for d in ("released", "held", "seized", "arrived")},
                 statuses=dict(Counter(a.consignment.status for a in assessments)))


# What a customs officer may still decide about a consignment in each status: a seizure is final, a delivered
# consignment is out of customs' hands, and nothing is held twice.
DECISIONS: Mapping[str, tuple[str, ...]] = {
    "awaiting": ("released", "held", "seized"),
    "held": ("released", "seized"),
    "released": ("held", "seized"),
    "seized": (),
    "arrived": (),
}


def decisions_for(status: str) -> tuple[str, ...]:
    """The decisions that make sense for a consignment in ``status``."""
    return DECISIONS.get(status, ())


def dashboard(ledger: Ledger, country: str, *, limit: int = DEFAULT_LIMIT, now: datetime | None = None) -> Dashboard:
    """Everything the customs dashboard of ``country`` shows, at the ledger's current size: kept up to date from
    the entries appended since it was last asked for (tracker.customs_live), not recomputed."""
    from .customs_live import live_dashboard

    live = live_dashboard(ledger, _country(country), limit=limit)
    return replace(live, computed_at=_stamp(now))


def _stamp(now: datetime | None) -> str:
    return format_time((now or datetime.now(timezone.utc)).replace(microsecond=0))


def full_dashboard(ledger: Ledger, country: str, *, limit: int = DEFAULT_LIMIT,
                   now: datetime | None = None) -> Dashboard:
    """The dashboard computed from scratch (what the live one must always equal)."""
    country = _country(country)
    size = ledger.size()
    items, truncated = consignments(ledger, country, limit=limit)
    assessed = assess(ledger, items)
    customs_parties = tuple(sorted(p.id for p in ledger.parties() if p.country == country and "customs" in p.roles))
    return Dashboard(country=country, customs_parties=customs_parties, assessments=tuple(assessed),
                     stats=stats(assessed), tree_size=size, truncated=truncated, computed_at=_stamp(now))


CSV_COLUMNS = ("key", "kind", "status", "verdict", "reasons", "product", "manufacturer", "origin_country",
               "sender", "sender_country", "recipient", "shipped_at", "decided_at", "decided_by",
               "clearance_hours", "holder", "ship_event", "decision_event")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula: neutralise them (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_export(assessments: Sequence[Assessment]) -> str:
    """The dashboard's consignments as CSV (header ``CSV_COLUMNS``), formula-like cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for a in assessments:
        c = a.consignment
        writer.writerow([_cell(v) for v in (
            c.key, c.kind, c.status, a.verdict, " ".join(a.reason_codes), a.product, a.manufacturer,
            a.origin_country, c.sender, c.sender_country, c.recipient, c.shipped_at, c.decided_at, c.decided_by,
            c.clearance_hours, a.holder, c.ship_event, c.decision_event)])
    return out.getvalue()

