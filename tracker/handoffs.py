"""What a handheld (or a browser) needs to know before it signs a handoff: about one scanned code (its canonical
key, who holds it, the event a new statement must name in ``prev``, the shipment addressed to the scanning party
that is still waiting, and what should make the signer stop and think), and about the party's own work (what is
on its way to it, what it holds, its recent handoffs with item names).

The answers are advice for the signer's screen; the ledger admits (and provenance judges) what is signed. Reads
go through the store's indexes: statements by type, then each unit's own events through the key index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, cast

from . import provenance
from .dsse import parse_envelope
from .errors import TrackerError
from .identifiers import is_container_key, parse_code
from .ledger import Ledger
from .parties import party_from_record
from .statements import Statement, parse_statement
from .store.base import CustomsReadTxn, ReadTxn, StoredEntry

__all__ = ["scan_status", "Shipment", "Held", "Handoff", "Overview", "overview", "WINDOW", "container_contents",
           "statement_or_none"]

WINDOW = 50_000  # how far back (in ledger entries) the party's lists look
_IGNORED = {"in_transit", "sold", "licensed_manufacturer"}  # said separately, or not a problem at all


def statement_or_none(entry: StoredEntry) -> Statement | None:
    """The entry's statement; None for one that no longer parses (the audit names those, these lists skip them)."""
    try:
        return parse_statement(parse_envelope(entry.leaf_data).payload)
    except TrackerError:
        return None


def _warnings(answer: provenance.Provenance, key: str, contents: list[str] | None,
              unpacked: tuple[str, str] | None) -> list[dict[str, str]]:
    """Why a signer should stop before handing this unit on, in plain words (each with a stable code)."""
    out: list[dict[str, str]] = []
    for r in answer.reasons:
        if r.code == "sold":
            out.append({"code": "sold", "message": f"{r.message} A sold item should not be handed on."})
    flagged = [r for r in answer.reasons if r.severity in ("critical", "warning") and r.code not in _IGNORED]
    if flagged:
        verdict = answer.verdict.replace("_", " ")
        out.append({"code": "flagged", "message": f"The provenance check says {verdict}: "
                                                  + " ".join(r.message for r in flagged[:3])})
    if is_container_key(key) and unpacked is not None and not contents:
        out.append({"code": "unpacked", "message": f"This case or pallet was unpacked on {unpacked[0][:10]} by "
                                                   f"{unpacked[1]}: it holds nothing now. Ship the items, or pack "
                                                   "it again first."})
    return out


def container_contents(txn: ReadTxn, container: str, *,
                       before: int | None = None) -> tuple[list[str], tuple[str, str] | None]:
    """Items inside ``container`` (its aggregates minus its disaggregates, before leaf ``before`` if given), and
    (time, actor) of its latest unpacking. Customs samples a consignment's contents with it too."""
    leaves = [i for i in txn.leaves_for_keys([container])[container] if before is None or i < before]
    entries = txn.entries_at(leaves)
    inside: dict[str, None] = {}
    unpacked = None
    for i in sorted(entries):
        st = statement_or_none(entries[i])
        if st is None or st.container != container:
            continue
        for k in st.items:
            if st.type == "aggregate":
                inside[k] = None
            elif st.type == "disaggregate":
                inside.pop(k, None)
        if st.type == "disaggregate":
            unpacked = (st.time_str, st.actor)
    return list(inside), unpacked


def scan_status(ledger: Ledger, code: str, *, party: str) -> dict[str, Any]:
    """``{"key", "kind", "known", "holder", "holder_name", "head", "verdict", "product", "reasons", "incoming",
    "warnings", "contents"}`` for a scanned ``code`` as seen by ``party``. ``incoming`` is ``{"ship", "from",
    "from_name", "shipped_unit", "shipped_at"}`` when the latest shipment of the unit is addressed to ``party`` and
    not yet received, else None; ``shipped_unit`` is the key the shipment names (a container, when the item
    travelled inside one). ``warnings`` lists ``{"code", "message"}``: ``sold``, ``flagged`` (the provenance check
    raised a warning or worse), ``unpacked`` (an emptied case or pallet). Raises InvalidIdentifier, whose message
    says in plain words what is wrong, for anything that is not an item or container code."""
    key = str(parse_code(code))
    answer = provenance.lookup(ledger, key)
    path = answer.path
    known = bool(path)
    names = {row["actor"]: row.get("actor_name") or row["actor"] for row in path}
    names.update(answer.party_names)
    incoming = None
    for row in path:
        if row["type"] == "ship":
            incoming = row if row.get("to") == party else None
        elif row["type"] == "receive" and incoming is not None and row["actor"] == party:
            incoming = None
    pending = None
    if incoming is not None:
        shipped_unit = key
        try:
            _, ship = ledger.get_event(incoming["event_id"])
            if key not in ship.items:
                shipped_unit = next((k for k in ship.items if is_container_key(k)), ship.items[0])
        except TrackerError:
            pass
        pending = {"ship": incoming["event_id"], "from": incoming["actor"],
                   "from_name": names.get(incoming["actor"], incoming["actor"]), "shipped_unit": shipped_unit,
                   "shipped_at": incoming.get("time")}
    holder = answer.holder
    holder_name = names.get(holder, holder) if holder else None
    if holder and holder not in names:
        try:
            holder_name = ledger.party(holder).name
        except TrackerError:
            holder_name = holder
    contents: list[str] | None = None
    unpacked = None
    if is_container_key(key) and known:
        with ledger.store.read() as txn:
            contents, unpacked = container_contents(txn, key)
        unpacked = (unpacked[0], names.get(unpacked[1], unpacked[1])) if unpacked else None
    return {"key": key, "kind": "container" if is_container_key(key) else "item", "known": known,
            "holder": holder, "holder_name": holder_name, "head": path[-1]["event_id"] if path else None,
            "verdict": answer.verdict, "product": (answer.product or {}).get("name"),
            "reasons": [r.code for r in answer.reasons if r.severity != "info"], "incoming": pending,
            "warnings": _warnings(answer, key, contents, unpacked) if known else [],
            "contents": len(contents) if contents is not None else None}


# --- the party's own lists --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    key: str
    name: str  # product name, or "Case or pallet (N items)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipment:
    """A shipment addressed to the party that it has not received yet."""

    ship: str
    sender: str
    sender_name: str
    shipped_at: str
    units: tuple[Unit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    unit: Unit
    since: str
    how: str  # the statement type that gave the party custody (receive, commission, aggregate)


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff:
    event_id: str
    type: str
    time: str
    other: str | None  # the addressee of a ship, the sender of a receive
    other_name: str | None
    units: tuple[Unit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
    inbound: tuple[Shipment, ...]
    held: tuple[Held, ...]
    recent: tuple[Handoff, ...]
    names: dict[str, str] = field(default_factory=dict)


def _names_of(txn: ReadTxn, keys: Iterable[str]) -> dict[str, str]:
    """Display names of units: an item's product (from its commission), a container's size."""
    wanted = set(keys)
    leaves = txn.leaves_for_keys(wanted)
    firsts = {k: ls[0] for k, ls in leaves.items() if ls}
    entries = txn.entries_at(set(firsts.values()))
    out: dict[str, str] = {}
    for k in wanted:
        st = statement_or_none(entries[firsts[k]]) if k in firsts and firsts[k] in entries else None
        if is_container_key(k):
            count = len(st.items) if st is not None and st.type == "aggregate" and st.container == k else 0
            out[k] = f"Case or pallet ({count} item{'s' if count != 1 else ''} packed)"
        elif st is not None and st.type == "commission" and st.product:
            out[k] = str(st.product.get("name") or k)
        else:
            out[k] = k
    return out


def _custody(own: list[tuple[StoredEntry, Statement]], key: str) -> tuple[str | None, str | None, str, str]:
    """(holder, container it sits in, since, how) from a unit's own events, in ledger order."""
    holder: str | None = None
    inside: str | None = None
    since, how = "", ""
    for entry, st in own:
        if st.type == "commission" or (st.type == "aggregate" and st.container == key):
            holder, since, how = st.actor, st.time_str, st.type
        elif st.type == "receive":
            holder, since, how = st.actor, st.time_str, st.type
        elif st.type in ("ship", "sell") and key in st.items:
            holder = None
        elif st.type == "aggregate" and key in st.items:
            inside = st.container
        elif st.type == "disaggregate" and key in st.items:
            inside = None
    return holder, inside, since, how


def overview(ledger: Ledger, party: str, *, limit: int = 50, recent: int = 10) -> Overview:
    """What ``party`` is waiting for (shipments addressed to it and not received), what it holds (units whose
    latest handoff left them with it, not packed inside another unit), and its ``recent`` latest handoffs."""
    size = ledger.size()
    start = max(0, size - WINDOW)
    kinds = ["ship", "receive", "commission", "aggregate", "disaggregate", "sell"]
    with ledger.store.read() as txn:
        inbound_ships: list[tuple[StoredEntry, Statement]] = []
        mine: list[tuple[StoredEntry, Statement]] = []
        received: set[str] = set()
        typed = cast(CustomsReadTxn, txn)  # both backends index statements by type
        for entry in typed.entries_of_types(kinds, start=start):
            if entry.type == "ship" or entry.actor == party:
                st = statement_or_none(entry)
                if st is None:
                    continue
                if st.type == "ship" and st.to == party:
                    inbound_ships.append((entry, st))
                if st.actor == party:
                    mine.append((entry, st))
                    if st.type == "receive" and st.ship:
                        received.add(st.ship)
        waiting = [(e, st) for e, st in inbound_ships if e.event_id not in received][-limit:]
        touched = list(dict.fromkeys(k for _, st in mine if st.type in ("receive", "commission", "aggregate")
                                     for k in ([st.container] if st.type == "aggregate" and st.container else st.items)))
        touched = touched[-4 * limit:]
        leaves = txn.leaves_for_keys(touched)
        later = txn.entries_at({i for ls in leaves.values() for i in ls})
        parsed = {i: statement_or_none(e) for i, e in later.items()}
        held: list[Held] = []
        for key in touched:
            own = [(later[i], st) for i in leaves.get(key, []) if i in later and (st := parsed[i]) is not None]
            holder, inside, since, how = _custody(own, key)
            if holder == party and inside is None:
                held.append(Held(unit=Unit(key=key, name=key), since=since, how=how))
        held = sorted(held, key=lambda h: h.since, reverse=True)[:limit]
        latest = [(e, st) for e, st in mine if st.type in ("ship", "receive", "aggregate", "disaggregate", "sell")]
        latest = latest[-recent:][::-1]
        keys = {k for _, st in waiting for k in st.items} | {h.unit.key for h in held} | {
            k for _, st in latest for k in (st.items + ((st.container,) if st.container else ()))}
        names = _names_of(txn, keys)
        parties = {pid: rec for pid, rec in txn.party_records_for(
            {st.actor for _, st in waiting} | {st.to or st.from_ or "" for _, st in latest}).items()}
    party_names = {pid: party_from_record(rec).name for pid, rec in parties.items()}

    def unit(k: str) -> Unit:
        return Unit(key=k, name=names.get(k, k))

    return Overview(
        inbound=tuple(Shipment(ship=e.event_id, sender=st.actor, sender_name=party_names.get(st.actor, st.actor),
                               shipped_at=st.time_str, units=tuple(unit(k) for k in st.items))
                      for e, st in reversed(waiting)),
        held=tuple(Held(unit=unit(h.unit.key), since=h.since, how=h.how) for h in held),
        recent=tuple(Handoff(event_id=e.event_id, type=st.type, time=st.time_str, other=st.to or st.from_,
                             other_name=party_names.get(st.to or st.from_ or "", st.to or st.from_),
                             units=tuple(unit(k) for k in ((st.container,) if st.container else ()) + tuple(st.items)))
                     for e, st in latest),
        names=party_names)
