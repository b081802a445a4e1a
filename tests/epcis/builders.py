"""EPCIS 2.0 documents as a logistics system writes them (EPC URNs, bare CBV words, offsets), for the tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from tracker.epcis.vocab import EPCIS_CONTEXT

DATA = Path(__file__).resolve().parent / "data"
CEST = timezone(timedelta(hours=2))


def sgtin(company: str, reference: str, serial: str) -> str:
    return f"urn:epc:id:sgtin:{company}.{reference}.{serial}"


def sscc(company: str, reference: str) -> str:
    return f"urn:epc:id:sscc:{company}.{reference}"


def party(pid: str) -> str:
    return f"urn:waybill:epcis:party:{pid}"


def document(events: Sequence[dict[str, Any]], *, extra_context: dict[str, str] | None = None) -> dict[str, Any]:
    context: list[Any] = [EPCIS_CONTEXT] + ([extra_context] if extra_context else [])
    return {"@context": context, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-03-02T08:00:00.000Z", "epcisBody": {"eventList": list(events)}}


def _time(when: datetime, tz: timezone = CEST) -> dict[str, str]:
    local = when.astimezone(tz)
    offset = local.strftime("%z")
    return {"eventTime": local.isoformat(timespec="milliseconds"), "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}"}


def object_event(action: str, biz_step: str, when: datetime, epcs: Iterable[str], *, disposition: str | None = None,
                 event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "ObjectEvent", **({"eventID": event_id} if event_id else {}), **_time(when),
                             "epcList": list(epcs), "action": action, "bizStep": biz_step}
    if disposition:
        event["disposition"] = disposition
    event.update(fields)
    return event


def aggregation(action: str, biz_step: str, when: datetime, parent: str, children: Iterable[str],
                **fields: Any) -> dict[str, Any]:
    return {"type": "AggregationEvent", **_time(when), "parentID": parent, "childEPCs": list(children),
            "action": action, "bizStep": biz_step, **fields}


def commissioning(when: datetime, epcs: Iterable[str], *, lot: str | None = None, name: str | None = None,
                  **fields: Any) -> dict[str, Any]:
    ilmd: dict[str, str] = {}
    if lot:
        ilmd["cbvmda:lotNumber"] = lot
    if name:
        ilmd["waybill:productName"] = name
    return object_event("ADD", "commissioning", when, epcs, disposition="active",
                        **({"ilmd": ilmd} if ilmd else {}), **fields)


def shipping(when: datetime, epcs: Iterable[str], *, by: str, to: str, **fields: Any) -> dict[str, Any]:
    return object_event("OBSERVE", "shipping", when, epcs, disposition="in_transit",
                        sourceList=[{"type": "possessing_party", "source": party(by)}],
                        destinationList=[{"type": "possessing_party", "destination": party(to)}], **fields)


def receiving(when: datetime, epcs: Iterable[str], *, by: str | None = None, sender: str | None = None,
              **fields: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if sender:
        extra["sourceList"] = [{"type": "possessing_party", "source": party(sender)}]
    if by:
        extra["destinationList"] = [{"type": "possessing_party", "destination": party(by)}]
    return object_event("OBSERVE", "receiving", when, epcs, disposition="in_progress", **extra, **fields)


def inspecting(when: datetime, epcs: Iterable[str], disposition: str = "conformant", **fields: Any) -> dict[str, Any]:
    return object_event("OBSERVE", "inspecting", when, epcs, disposition=disposition, **fields)


def selling(when: datetime, epcs: Iterable[str], **fields: Any) -> dict[str, Any]:
    return object_event("OBSERVE", "retail_selling", when, epcs, disposition="retail_sold", **fields)
