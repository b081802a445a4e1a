"""The OpenAPI description of the EPCIS 2.0 routes (web/api/epcis.py), merged into /api/v1/openapi.json."""
from __future__ import annotations

from typing import Any

from tracker.epcis.capture import MAX_EVENTS
from tracker.epcis.query import DEFAULT_PER_PAGE, MAX_PER_PAGE
from tracker.epcis.vocab import PAYLOAD_TYPE

__all__ = ["EPCIS_SCHEMAS", "EPCIS_PATHS"]

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        "application/json": {"schema": _ref("Error")},
        "application/problem+json": {"schema": _ref("EpcisProblem")}}}


_EVENT = {
    "type": "object", "required": ["type", "eventID", "eventTime", "eventTimeZoneOffset", "action", "bizStep",
                                   "waybill:ledger"],
    "properties": {
        "type": {"enum": ["ObjectEvent", "AggregationEvent"]},
        "eventID": {"type": "string", "minLength": 1, "maxLength": 300,
                    "description": "The source system's eventID of an imported event, else the CBV 2.0 event hash "
                                   "ID (ni:///sha-256;...?ver=CBV2.0) of this event without its waybill: fields."},
        "eventTime": {"type": "string"}, "eventTimeZoneOffset": {"type": "string"},
        "action": {"enum": ["ADD", "OBSERVE", "DELETE"]}, "bizStep": {"type": "string"},
        "disposition": {"type": "string"},
        "epcList": {"type": "array", "items": {"type": "string"}},
        "parentID": {"type": "string"}, "childEPCs": {"type": "array", "items": {"type": "string"}},
        "waybill:ledger": {
            "type": "object", "required": ["eventId", "leafIndex", "envelope"],
            "description": "The Waybill event this EPCIS event records: its signed envelope and an RFC 6962 "
                           "inclusion proof to the document's waybill:checkpoint.",
            "properties": {
                "eventId": _ref("EventId"), "leafIndex": {"type": "integer", "minimum": 0},
                "envelope": _ref("Envelope"),
                "inclusionProof": {"type": "object", "required": ["treeSize", "hashes"], "properties": {
                    "treeSize": {"type": "integer", "minimum": 1},
                    "hashes": {"type": "array", "items": _ref("Base64")}}},
            }},
    },
}

EPCIS_SCHEMAS: dict[str, Any] = {
    "EpcisProblem": {
        "type": "object", "required": ["type", "title", "status", "error"],
        "description": "RFC 7807 problem (EPCIS 2.0 REST binding), sent when the client accepts "
                       "application/problem+json or sends a GS1-EPCIS-Version header.",
        "properties": {"type": {"type": "string", "pattern": "^epcisException:"}, "title": {"type": "string"},
                       "status": {"type": "integer"}, "detail": {"type": "string"},
                       "error": {"type": "object", "required": ["code", "message"]},
                       "errors": {"type": "array", "items": {"type": "object"}}},
    },
    "EpcisQueryDocument": {
        "type": "object", "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody",
                                       "waybill:checkpoint"],
        "description": "An EPCIS 2.0 EPCISQueryDocument (valid against GS1's EPCIS JSON Schema).",
        "properties": {
            "@context": {"type": "array"}, "type": {"const": "EPCISQueryDocument"},
            "schemaVersion": {"const": "2.0"}, "creationDate": {"type": "string"},
            "epcisBody": {"type": "object", "required": ["queryResults"], "properties": {"queryResults": {
                "type": "object", "required": ["queryName", "resultsBody"], "properties": {
                    "queryName": {"const": "SimpleEventQuery"},
                    "resultsBody": {"type": "object", "required": ["eventList"], "properties": {
                        "eventList": {"type": "array", "items": _EVENT}}}}}}},
            "waybill:checkpoint": {"type": "string", "description": "The signed checkpoint the proofs lead to."},
        },
    },
    "EpcisCaptureEnvelope": {
        "type": "object", "required": ["payloadType", "payload", "signatures"], "additionalProperties": False,
        "description": "DSSE envelope over an EPCIS 2.0 document, signed by a registered party's key. The "
                       "document's epcisHeader holds waybill:statements: one statement envelope per event, in "
                       "order, signed by the same party (docs/epcis.md).",
        "properties": {
            "payloadType": {"const": PAYLOAD_TYPE},
            "payload": {"allOf": [_ref("Base64")], "description": "base64 of the EPCIS document's JSON bytes"},
            "signatures": {"type": "array", "minItems": 1, "maxItems": 8, "items": _ref("Signature")},
        },
    },
    "EpcisCaptureJob": {
        "type": "object", "required": ["captureID", "createdAt", "finishedAt", "running", "success",
                                       "captureErrorBehaviour", "errors", "waybill:results"],
        "properties": {
            "captureID": {"type": "string"}, "createdAt": {"type": "string"}, "finishedAt": {"type": "string"},
            "running": {"const": False}, "success": {"type": "boolean"},
            "captureErrorBehaviour": {"enum": ["rollback", "proceed"]},
            "errors": {"type": "array", "items": {"type": "object", "required": ["index", "code", "message"]}},
            "waybill:results": {"type": "array", "items": {"oneOf": [_ref("AppendResultCreated"), {"type": "null"}]},
                                "description": "Per event: the stored statement, or null (see errors)."},
        },
    },
    "AppendResultCreated": {
        "type": "object", "required": ["event_id", "leaf_index", "created"],
        "properties": {"event_id": _ref("EventId"), "leaf_index": {"type": "integer", "minimum": 0},
                       "created": {"type": "boolean"}},
    },
}


def _list(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string", "minLength": 1},
            "description": description + " Several values: separated by |."}


EPCIS_PATHS: dict[str, Any] = {
    "/epcis/events": {"get": {
        "operationId": "epcisEvents", "summary": "EPCIS 2.0 simple event query (ledger order, paged)",
        "parameters": [
            _list("MATCH_epc", "Events whose epcList or childEPCs name these EPCs (EPC URN or Digital Link)."),
            _list("MATCH_anyEPC", "Events naming these EPCs anywhere (epcList, childEPCs or parentID)."),
            _list("MATCH_parentID", "Aggregation events of these containers."),
            _list("EQ_bizStep", "CBV business steps, e.g. shipping."),
            _list("eventType", "ObjectEvent or AggregationEvent."),
            _list("EQ_action", "ADD, OBSERVE or DELETE."),
            _list("EQ_disposition", "CBV dispositions, e.g. in_transit."),
            _list("EQ_eventID", "Event IDs (source eventIDs or CBV 2.0 hash IDs)."),
            {"name": "GE_eventTime", "in": "query", "required": False,
             "schema": {"type": "string", "format": "date-time"}},
            {"name": "LT_eventTime", "in": "query", "required": False,
             "schema": {"type": "string", "format": "date-time"}},
            {"name": "perPage", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}},
            {"name": "nextPageToken", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "From the Link header (rel=next) of the previous page."},
        ],
        "responses": {
            "200": {"description": "An EPCISQueryDocument; a Link header (rel=next) when more events follow.",
                    "headers": {"Link": {"required": False, "schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _ref("EpcisQueryDocument")}}},
            "400": _error("A query parameter Waybill does not support or cannot read (QueryParameterException)."),
        },
    }},
    "/epcis/history": {"get": {
        "operationId": "epcisHistory",
        "summary": "An item's or container's whole history (container moves included) as EPCIS 2.0",
        "parameters": [{"name": "epc", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1},
                        "description": "EPC URN, Digital Link URI or element string of the item or container."}],
        "responses": {
            "200": {"description": "An EPCISQueryDocument (empty eventList for an unknown item).",
                    "content": {"application/json": {"schema": _ref("EpcisQueryDocument")}}},
            "400": _error("Not an item or container identifier."),
        },
    }},
    "/epcis/capture": {"post": {
        "operationId": "epcisCapture",
        "summary": f"Capture up to {MAX_EVENTS} EPCIS events, each recorded as the party's own signed statement",
        "parameters": [{"name": "GS1-Capture-Error-Behaviour", "in": "header", "required": False,
                        "schema": {"enum": ["rollback", "proceed"], "default": "rollback"},
                        "description": "rollback: store nothing if any event is refused; proceed: store the rest."}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EpcisCaptureEnvelope")}}},
        "responses": {
            "202": {"description": "Processed (synchronously): the capture job, with per-event results and errors.",
                    "content": {"application/json": {"schema": _ref("EpcisCaptureJob")}}},
            "400": _error("Not a valid envelope, EPCIS document, or statements block (ValidationException)."),
            "401": _error("The document is not signed by a valid key of a registered party (SecurityException)."),
            "413": _error("Too many events or too large a body (CaptureLimitExceededException)."),
            "415": _error("The body is not JSON."),
        },
    }},
}
