"""The mapping between Waybill statements and EPCIS 2.0 events (the table in docs/epcis.md), both ways.

Import reads one event into a :class:`Draft`: what the statement will say, minus what depends on the ledger
(``prev``, the shipment a receive confirms, the signer's default location). An event with no Waybill meaning is
refused with its own :class:`Unmapped` error, never skipped. Fields an event carries that Waybill does not
record (readPoint ids, business transactions, extensions) are listed in ``Draft.ignored`` so an importer can
say so. Export turns a stored statement back into an event."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from ..errors import InvalidInput, TrackerError
from ..identifiers import is_container_key, is_item_key
from ..statements import MAX_ITEMS, Statement, format_time
from .epc import epc_uri, gln_of_uri, gln_uri, key_of_epc, location_of_uri, location_uri, party_of_uri, party_uri
from .vocab import (DECISION_OF_DISPOSITION, DISPOSITION_OF_DECISION, EXPIRY, LOT, PRODUCT_NAME, SHAPE_OF_TYPE,
                    SHAPES, cbv_word)

__all__ = ["Draft", "Unmapped", "draft_of_event", "event_of_statement", "SUPPORTED"]

SUPPORTED = ", ".join(f"{s.event_type} {s.action} {s.biz_step}" for s in SHAPES)
_CUSTODY_PARTIES = ("possessing_party", "owning_party")  # preferred first: Waybill tracks custody
_COMMON_FIELDS = {"type", "eventTime", "eventTimeZoneOffset", "eventID", "action", "bizStep", "@context"}


class Unmapped(InvalidInput):
    """An event Waybill cannot record as a statement (its own code names why)."""

    code = "unmapped_event"


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """One EPCIS event read as a statement-to-be."""

    index: int
    source_event: str | None  # the event's eventID; None: the importer computes the hash ID
    type: str
    time: datetime
    items: tuple[str, ...]
    container: str | None = None
    to: str | None = None
    from_: str | None = None
    by: str | None = None  # the party the event names as doing it (ship: source, receive: destination)
    decision: str | None = None
    product: Mapping[str, str] | None = None
    location: Mapping[str, str] | None = None  # name and country, when the event carries a Waybill location
    gln: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return ((self.container,) if self.container else ()) + self.items


def _time(event: Mapping[str, Any]) -> datetime:
    text = event["eventTime"]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Unmapped(f"eventTime {text!r} is not an RFC 3339 date-time", code="invalid_time",
                       field="eventTime") from exc
    if when.tzinfo is None:
        raise Unmapped("eventTime needs a time zone offset", code="invalid_time", field="eventTime")
    return when.astimezone(timezone.utc)


def _keys(values: Any, field: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise Unmapped(f"{field} must list at least one EPC", code="no_epcs", field=field)
    if len(values) > MAX_ITEMS:
        raise Unmapped(f"{field} lists {len(values)} EPCs; a statement holds at most {MAX_ITEMS}: split the event",
                       code="too_many_epcs", field=field)
    out = []
    for i, v in enumerate(values):
        try:
            out.append(key_of_epc(v))
        except TrackerError as exc:
            raise Unmapped(exc.message, code="unsupported_epc", field=f"{field}[{i}]") from exc
    if len(set(out)) != len(out):
        raise Unmapped(f"{field} names the same item twice (in two spellings)", code="duplicate_epc", field=field)
    return tuple(out)


def _party(event: Mapping[str, Any], list_name: str, value_name: str,
           directory: Mapping[str, str]) -> str | None:
    """The custody party an event names in its source or destination list (possessing before owning)."""
    entries = event.get(list_name) or []
    for wanted in _CUSTODY_PARTIES:
        for i, entry in enumerate(entries):
            if cbv_word(entry.get("type"), "sdt") != wanted:
                continue
            uri = entry.get(value_name)
            pid = party_of_uri(uri) or directory.get(uri)
            if pid is None:
                raise Unmapped(f"{uri} is not a party registered in this ledger (a {wanted}); name parties as "
                               f"urn:waybill:epcis:party:<id>", code="unknown_party", field=f"{list_name}[{i}]")
            return pid
    return None


def _location(event: Mapping[str, Any]) -> tuple[dict[str, str] | None, str | None, set[str]]:
    location, gln, used = None, None, set()
    for field in ("readPoint", "bizLocation"):
        uri = (event.get(field) or {}).get("id")
        if not isinstance(uri, str):
            continue
        loc, g = location_of_uri(uri), gln_of_uri(uri)
        if loc and location is None:
            location = loc
            used.add(field)
        if g and gln is None:
            gln = g
            used.add(field)
    return location, gln, used


def draft_of_event(event: Mapping[str, Any], *, index: int, directory: Mapping[str, str] | None = None) -> Draft:
    """Read one (schema-valid) event. ``directory`` maps further party URIs (e.g. GLNs) to party ids.
    Raises Unmapped with a code and the field."""
    directory = directory or {}
    etype = event.get("type")
    if etype not in ("ObjectEvent", "AggregationEvent"):
        raise Unmapped(f"{etype} has no Waybill mapping: Waybill records custody of serialised items and "
                       f"containers ({SUPPORTED})", code="unsupported_event_type", field="type")
    if event.get("errorDeclaration"):
        raise Unmapped("error declarations (retractions of earlier events) have no Waybill mapping: a signed "
                       "statement cannot be withdrawn", code="unsupported_error_declaration", field="errorDeclaration")
    if event.get("sensorElementList"):
        raise Unmapped("sensor data has no Waybill mapping", code="unsupported_sensor_data", field="sensorElementList")
    step = cbv_word(event.get("bizStep"), "bizstep")
    shape = next((s for s in SHAPES if s.event_type == etype and s.action == event.get("action")
                  and s.biz_step == step), None)
    if shape is None:
        raise Unmapped(f"{etype} {event.get('action')} {step or '(no bizStep)'} has no Waybill mapping; supported: "
                       f"{SUPPORTED}", code="unmapped_biz_step", field="bizStep")
    for field in ("quantityList", "childQuantityList"):
        if event.get(field):
            raise Unmapped("class-level quantities have no Waybill mapping: Waybill tracks serialised items",
                           code="unsupported_quantities", field=field)
    used = set(_COMMON_FIELDS)
    kw: dict[str, Any] = {}
    if etype == "AggregationEvent":
        parent = _keys([event["parentID"]] if event.get("parentID") else [], "parentID")[0]
        if not is_container_key(parent):
            raise Unmapped("parentID must be a container (an SSCC)", code="unsupported_epc", field="parentID")
        items = _keys(event.get("childEPCs"), "childEPCs")
        if parent in items:
            raise Unmapped("a container cannot contain itself", code="invalid_aggregation", field="childEPCs")
        kw.update(container=parent)
        used |= {"parentID", "childEPCs"}
    else:
        items = _keys(event.get("epcList"), "epcList")
        used.add("epcList")
    if shape.statement_type in ("commission", "sell"):
        bad = next((i for i, k in enumerate(items) if not is_item_key(k)), None)
        if bad is not None:
            raise Unmapped(f"only serialised items (not containers) can be {shape.biz_step.replace('_', ' ')}",
                           code="unsupported_epc", field=f"epcList[{bad}]")
    disposition = cbv_word(event.get("disposition"), "disp")
    if shape.statement_type == "commission":
        gtins = sorted({k.split("/")[1] for k in items})
        if len(gtins) > 1:
            raise Unmapped("a commissioning event maps to one product: its items carry several GTINs "
                           f"({', '.join(gtins)}); split the event per GTIN", code="several_products", field="epcList")
        ilmd = event.get("ilmd") or {}
        product = {"gtin": gtins[0], "name": str(ilmd.get(PRODUCT_NAME) or f"GTIN {gtins[0]}")[:200]}
        for name, key in (("lot", LOT), ("expiry", EXPIRY)):
            if isinstance(ilmd.get(key), (str, int)):
                product[name] = str(ilmd[key])
        kw["product"] = product
        used.add("ilmd")
    elif shape.statement_type == "inspect":
        decision = DECISION_OF_DISPOSITION.get(disposition or "")
        if decision is None:
            raise Unmapped("an inspecting event gives the customs decision as its disposition: "
                           + ", ".join(f"{d} ({k})" for k, d in DISPOSITION_OF_DECISION.items()),
                           code="missing_decision", field="disposition")
        kw["decision"] = decision
        used.add("disposition")
    elif shape.statement_type == "ship":
        kw["to"] = _party(event, "destinationList", "destination", directory)
        if kw["to"] is None:
            raise Unmapped("a shipping event names where custody goes: a destinationList entry of type "
                           "possessing_party (or owning_party)", code="missing_destination", field="destinationList")
        kw["by"] = _party(event, "sourceList", "source", directory)
        used |= {"sourceList", "destinationList"}
    elif shape.statement_type == "receive":
        kw["from_"] = _party(event, "sourceList", "source", directory)
        kw["by"] = _party(event, "destinationList", "destination", directory)
        used |= {"sourceList", "destinationList"}
    if disposition is not None and disposition == shape.disposition:
        used.add("disposition")
    location, gln, located = _location(event)
    used |= located
    event_id = event.get("eventID")
    return Draft(index=index, source_event=event_id if isinstance(event_id, str) else None, type=shape.statement_type,
                 time=_time(event), items=items, location=location, gln=gln,
                 ignored=tuple(sorted(k for k in event if k not in used)), **kw)


def event_of_statement(st: Statement, *, event_id: str | None = None) -> dict[str, Any]:
    """The EPCIS event a statement records (without eventID unless given, and without Waybill links)."""
    shape = SHAPE_OF_TYPE[st.type]
    event: dict[str, Any] = {"type": shape.event_type}
    if event_id:
        event["eventID"] = event_id
    event.update({"eventTime": format_time(st.time), "eventTimeZoneOffset": "+00:00"})
    if st.type in ("aggregate", "disaggregate"):
        assert st.container is not None
        event.update(parentID=epc_uri(st.container), childEPCs=[epc_uri(k) for k in st.items])
    else:
        event["epcList"] = [epc_uri(k) for k in st.items]
    event.update(action=shape.action, bizStep=shape.biz_step)
    disposition = DISPOSITION_OF_DECISION[st.decision] if st.type == "inspect" and st.decision else shape.disposition
    if disposition:
        event["disposition"] = disposition
    event["readPoint"] = {"id": location_uri(st.location)}
    if st.location.get("gln"):
        event["bizLocation"] = {"id": gln_uri(st.location["gln"])}
    if st.type == "ship":
        event["sourceList"] = [{"type": "possessing_party", "source": party_uri(st.actor)}]
        event["destinationList"] = [{"type": "possessing_party", "destination": party_uri(st.to or "")}]
    elif st.type == "receive":
        event["sourceList"] = [{"type": "possessing_party", "source": party_uri(st.from_ or "")}]
        event["destinationList"] = [{"type": "possessing_party", "destination": party_uri(st.actor)}]
    elif st.type == "commission" and st.product:
        ilmd = {PRODUCT_NAME: st.product["name"]}
        if "lot" in st.product:
            ilmd[LOT] = st.product["lot"]
        if "expiry" in st.product:
            ilmd[EXPIRY] = st.product["expiry"]
        event["ilmd"] = ilmd
    return event
