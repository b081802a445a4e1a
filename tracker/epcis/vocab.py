"""The EPCIS 2.0 / CBV 2.0 vocabulary Waybill speaks, and the one table that maps statement types to events.

CBV values arrive in three spellings (bare word in JSON-LD, ``urn:epcglobal:cbv:...`` from EPCIS 1.x systems,
``https://ref.gs1.org/cbv/...`` web URIs); they are compared in the bare form."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["EPCIS_CONTEXT", "WAYBILL_NS", "WAYBILL_PREFIX", "CONTEXT", "PAYLOAD_TYPE", "MEDIA_TYPE", "EventShape",
           "SHAPES", "SHAPE_OF_TYPE", "DECISION_OF_DISPOSITION", "DISPOSITION_OF_DECISION", "cbv_word",
           "LOT", "EXPIRY", "PRODUCT_NAME", "EVENT_LINK", "SCHEMA_VERSION"]

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
WAYBILL_NS = "urn:waybill:epcis:"  # JSON-LD namespace of Waybill's extension fields
WAYBILL_PREFIX = "waybill"
CONTEXT: tuple[object, ...] = (EPCIS_CONTEXT, {WAYBILL_PREFIX: WAYBILL_NS})
SCHEMA_VERSION = "2.0"
PAYLOAD_TYPE = "application/vnd.waybill.epcis+json"  # DSSE payload type of a party-signed EPCIS document
MEDIA_TYPE = "application/ld+json"

# ILMD fields (CBV master data attributes) and Waybill extensions.
LOT = "cbvmda:lotNumber"
EXPIRY = "cbvmda:itemExpirationDate"
PRODUCT_NAME = f"{WAYBILL_PREFIX}:productName"
EVENT_LINK = f"{WAYBILL_PREFIX}:ledger"  # per exported event: Waybill event id, leaf, proof, envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class EventShape:
    """How one statement type looks as an EPCIS event."""

    statement_type: str
    event_type: str  # ObjectEvent | AggregationEvent
    action: str
    biz_step: str
    disposition: str | None  # written on export; None: decided per statement (inspect) or none


SHAPES: tuple[EventShape, ...] = (
    EventShape(statement_type="commission", event_type="ObjectEvent", action="ADD", biz_step="commissioning",
               disposition="active"),
    EventShape(statement_type="aggregate", event_type="AggregationEvent", action="ADD", biz_step="packing",
               disposition="in_progress"),
    EventShape(statement_type="disaggregate", event_type="AggregationEvent", action="DELETE", biz_step="unpacking",
               disposition="in_progress"),
    EventShape(statement_type="ship", event_type="ObjectEvent", action="OBSERVE", biz_step="shipping",
               disposition="in_transit"),
    EventShape(statement_type="receive", event_type="ObjectEvent", action="OBSERVE", biz_step="receiving",
               disposition="in_progress"),
    EventShape(statement_type="inspect", event_type="ObjectEvent", action="OBSERVE", biz_step="inspecting",
               disposition=None),
    EventShape(statement_type="sell", event_type="ObjectEvent", action="OBSERVE", biz_step="retail_selling",
               disposition="retail_sold"),
)
SHAPE_OF_TYPE: Mapping[str, EventShape] = {s.statement_type: s for s in SHAPES}

# A customs decision travels as the inspecting event's disposition.
DISPOSITION_OF_DECISION: Mapping[str, str] = {"released": "conformant", "held": "non_sellable_other",
                                              "seized": "non_conformant"}
DECISION_OF_DISPOSITION: Mapping[str, str] = {v: k for k, v in DISPOSITION_OF_DECISION.items()}

_FORMS = {  # CBV vocabulary -> (EPCIS 1.x URN prefix, web URI prefix, CURIE prefix)
    "bizstep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-", "cbv:BizStep-"),
    "disp": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-", "cbv:Disp-"),
    "sdt": ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-", "cbv:SDT-"),
}


def cbv_word(value: object, vocabulary: str) -> str | None:
    """The bare CBV word of ``value`` in ``vocabulary`` (bizstep, disp, sdt), whatever its spelling; None for
    anything that is not a string. A non-CBV URI comes back unchanged (it is then simply not one we map)."""
    if not isinstance(value, str):
        return None
    for prefix in _FORMS[vocabulary]:
        if value.startswith(prefix):
            return value[len(prefix):]
    return value
