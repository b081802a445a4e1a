"""Planning an import: EPCIS events → the Waybill statements their signer signs, one per event.

What the ledger knows comes through a :class:`LedgerView` (the ledger itself for ``tracker epcis import``, the
public HTTP API for the handheld), so the same planner serves both. ``prev`` names, for every key a statement
touches, the latest event the ledger has for it — or the latest event earlier in the same document (a pack
then a ship of the same pallet chain locally, and an item in that pallet follows the pallet, as lookups do).
An event already recorded (same ``eventID``, or the same computed event hash ID) is not planned again: its
existing Waybill event is reported, so importing a document twice changes nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence

from ..errors import InvalidInput, TrackerError
from ..signing import new_statement
from ..statements import PartyRecord, Statement, format_time, parse_statement, statement_bytes
from ..dsse import event_id_of
from .hashing import event_hash_ids
from .mapping import Draft, Unmapped, draft_of_event
from .vocab import CONTEXT

__all__ = ["LedgerView", "Planned", "plan_import", "ImportRefused"]


class ImportRefused(InvalidInput):
    """An event that maps, but that this signer cannot record now (its own code says why)."""

    code = "import_refused"


class LedgerView(Protocol):
    """What the planner needs to know about the ledger."""

    def party(self, party_id: str) -> PartyRecord | None: ...
    def heads(self, keys: Iterable[str]) -> dict[str, str]: ...
    def contents(self, container: str) -> set[str]: ...
    def recorded(self, source_ids: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, str]]: ...
    def shipments(self, keys: Iterable[str]) -> list[tuple[str, Statement]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One event's outcome: a statement to sign (``payload``), or the Waybill event that already records it."""

    index: int
    source_event: str
    event_id: str
    payload: bytes | None  # None: already recorded
    statement_type: str
    ignored: tuple[str, ...] = ()

    @property
    def existing(self) -> bool:
        return self.payload is None


@dataclass
class _Overlay:
    """The ledger as it will be once the statements planned so far are appended."""

    view: LedgerView
    heads: dict[str, str] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    ships: list[tuple[str, Statement]] = field(default_factory=list)

    def _members(self, container: str) -> set[str]:
        if container not in self.members:
            self.members[container] = set(self.view.contents(container))
        return self.members[container]

    def touch(self, key: str, event_id: str, depth: int = 0) -> None:
        self.heads[key] = event_id
        if key.startswith("00/") and depth < 6:
            for member in self._members(key):
                self.touch(member, event_id, depth + 1)

    def record(self, st: Statement, event_id: str) -> None:
        for key in st.keys_touched:
            self.touch(key, event_id)
        if st.container and st.type == "aggregate":
            for other in self.members.values():
                other.difference_update(st.items)
            self._members(st.container).update(st.items)
        elif st.container and st.type == "disaggregate":
            self._members(st.container).difference_update(st.items)
        if st.type == "ship":
            self.ships.append((event_id, st))


def _source_ids(events: Sequence[Mapping[str, Any]], drafts: Sequence[Draft | TrackerError],
                context: Any) -> dict[int, str]:
    """eventID, or the CBV 2.0 event hash ID computed for events that carry none (one call for all of them)."""
    out = {d.index: d.source_event for d in drafts if isinstance(d, Draft) and d.source_event}
    missing = [d.index for d in drafts if isinstance(d, Draft) and not d.source_event]
    if missing:
        for index, hid in zip(missing, event_hash_ids([dict(events[i]) for i in missing], context=context)):
            out[index] = hid
    return out


def plan_import(events: Sequence[Mapping[str, Any]], *, actor: str, view: LedgerView,
                context: Any = CONTEXT, directory: Mapping[str, str] | None = None) -> list[Planned | TrackerError]:
    """One result per event, in order. ``events`` must already be schema-valid (schema.validate_document);
    ``context`` is the document's ``@context`` (needed to compute hash IDs of events without an eventID)."""
    signer = view.party(actor)
    if signer is None:
        raise ImportRefused(f"{actor} is not a registered party", code="unknown_party", field="actor")
    drafts: list[Draft | TrackerError] = []
    for i, event in enumerate(events):
        try:
            drafts.append(draft_of_event(event, index=i, directory=directory))
        except TrackerError as exc:
            drafts.append(exc)
    ids = _source_ids(events, drafts, context)
    keys_of: dict[str, list[str]] = {}
    for d in drafts:
        if isinstance(d, Draft):
            keys_of.setdefault(ids[d.index], []).extend(d.keys)
    known = view.recorded(keys_of)
    overlay = _Overlay(view=view)
    all_keys = {k for d in drafts if isinstance(d, Draft) for k in d.keys}
    ledger_heads = view.heads(all_keys)
    ledger_ships: list[tuple[str, Statement]] | None = None
    seen: dict[str, Planned] = {}
    results: list[Planned | TrackerError] = []
    for d in drafts:
        if isinstance(d, TrackerError):
            results.append(d)
            continue
        source = ids[d.index]
        try:
            if source in seen:  # the same event twice in one document
                first = seen[source]
                results.append(Planned(index=d.index, source_event=source, event_id=first.event_id, payload=None,
                                       statement_type=first.statement_type, ignored=d.ignored))
                continue
            if source in known:
                by, event_id = known[source]
                if by != actor:
                    raise ImportRefused(f"event {source} is already recorded by {by}", code="recorded_by_other",
                                        field="eventID")
                seen[source] = Planned(index=d.index, source_event=source, event_id=event_id, payload=None,
                                       statement_type=d.type, ignored=d.ignored)
                results.append(seen[source])
                continue
            if d.by is not None and d.by != actor:
                raise ImportRefused(f"the event says {d.by} did this: only {d.by} can sign it (each hop signs its "
                                    f"own events; this key belongs to {actor})", code="wrong_signer", field="sourceList"
                                    if d.type == "ship" else "destinationList")
            fields: dict[str, Any] = {"items": list(d.items)}
            if d.container:
                fields["container"] = d.container
            if d.type == "commission":
                fields["product"] = dict(d.product or {})
            elif d.type == "ship":
                if d.to == actor:
                    raise ImportRefused("a shipment goes to another party than its signer", code="invalid_destination",
                                        field="destinationList")
                if d.to is None or view.party(d.to) is None:
                    raise ImportRefused(f"{d.to} is not a registered party", code="unknown_party",
                                        field="destinationList")
                fields["to"] = d.to
            elif d.type == "receive":
                if ledger_ships is None:
                    ledger_ships = view.shipments(all_keys)
                ship_id, ship = _shipment(d, actor, ledger_ships + overlay.ships)
                fields.update(from_=ship.actor, ship=ship_id)
            elif d.type == "inspect":
                fields["decision"] = d.decision
            location = dict(d.location) if d.location else {"name": signer.name, "country": signer.country}
            if d.gln:
                location["gln"] = d.gln
            prev = None
            if d.type != "commission":
                prev = {k: h for k in d.keys if (h := overlay.heads.get(k) or ledger_heads.get(k)) is not None}
            doc = new_statement(d.type, actor=actor, time=format_time(d.time), location=location, prev=prev,
                                source_event=source, **fields)
            payload = statement_bytes(doc)
            st = parse_statement(payload)  # the importer never plans what the ledger would refuse as malformed
        except TrackerError as exc:
            results.append(exc)
            continue
        event_id = event_id_of(payload)
        overlay.record(st, event_id)
        seen[source] = Planned(index=d.index, source_event=source, event_id=event_id, payload=payload,
                               statement_type=d.type, ignored=d.ignored)
        results.append(seen[source])
    return results


def _shipment(d: Draft, actor: str, ships: Sequence[tuple[str, Statement]]) -> tuple[str, Statement]:
    """The latest shipment to ``actor`` that holds every key the receive lists (and came from ``from_``)."""
    for event_id, ship in reversed(ships):
        if ship.to == actor and set(d.items) <= set(ship.items) and (d.from_ is None or ship.actor == d.from_):
            return event_id, ship
    sender = f" from {d.from_}" if d.from_ else ""
    raise ImportRefused(f"no shipment of {d.items[0]}{sender} to {actor} is on record: a receiving event confirms a "
                        "shipment (import or record the shipping event first)", code="no_shipment", field="epcList")


__all__ += ["Unmapped"]
