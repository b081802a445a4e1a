"""The OpenAPI 3.1 description of ``/api/v1`` (SPEC §4). Its schemas are JSON Schema 2020-12; the web
tests validate real answers against them, so this document cannot drift from what the server says."""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from tracker.provenance import SEVERITY, VERDICTS
from tracker.statements import ROLES, TYPES

__all__ = ["openapi_document"]

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    names = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge",
             415: "UnsupportedMediaType", 422: "Rejected", 429: "TooManyRequests", 503: "StorageUnavailable",
             507: "StorageFull"}
    return {str(s): {"$ref": f"#/components/responses/{names[s]}"} for s in statuses}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                         "description": "Stable snake_case error code, e.g. invalid_json, unknown_party, "
                                        "bad_signature, unknown_item, rate_limited."},
                "message": {"type": "string", "minLength": 1, "description": "What was wrong, in words."},
            }}},
    },
    "EventId": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$",
                "description": "sha256: + hex SHA-256 of the signed payload bytes."},
    "Base64": {"type": "string", "pattern": "^[A-Za-z0-9+/_-]*={0,2}$"},
    "Time": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$",
             "description": "RFC 3339, UTC, Z suffix."},
    "PartyId": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}$"},
    "Signature": {
        "type": "object", "required": ["keyid", "sig"], "additionalProperties": False,
        "properties": {"keyid": {"type": "string", "pattern": "^[0-9a-f]{16}$"}, "sig": _ref("Base64")},
    },
    "Envelope": {
        "type": "object", "required": ["payloadType", "payload", "signatures"], "additionalProperties": False,
        "description": "DSSE envelope; signatures are Ed25519 over PAE(payloadType, payload).",
        "properties": {
            "payloadType": {"const": "application/vnd.waybill.event+json"},
            "payload": {"allOf": [_ref("Base64")], "description": "base64 of the statement's UTF-8 JSON bytes"},
            "signatures": {"type": "array", "minItems": 1, "maxItems": 8, "items": _ref("Signature")},
        },
    },
    "Location": {
        "type": "object", "required": ["name", "country"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                       "gln": {"type": "string", "pattern": "^[0-9]{13}$"}},
    },
    "Statement": {
        "type": "object", "required": ["v", "type", "actor", "time", "location"],
        "description": "The signed statement (SPEC §2); type-specific fields follow the SPEC table. Door rules "
                       "(SPEC §7): `prev` names the latest event of every item and container the statement "
                       "touches (all types but party, licence, commission, and the new container of an "
                       "aggregate), else 400 invalid_statement naming the key; `to`/`from` name registered "
                       "parties, else 422 unknown_party; every field is a full match (no trailing newline). "
                       "A `licence` statement (see Licence) is signed by a brand owner.",
        "properties": {
            "v": {"const": 1}, "type": {"enum": list(TYPES)}, "actor": _ref("PartyId"), "time": _ref("Time"),
            "location": _ref("Location"),
            "prev": {"type": "object", "additionalProperties": _ref("EventId")},
        },
    },
    "Licence": {
        "type": "object", "required": ["v", "type", "actor", "time", "location", "licensee", "gs1_prefixes",
                                       "not_before"],
        "description": "A brand owner (a manufacturer registered with gs1_prefixes) licenses a contract "
                       "manufacturer to commission GTINs under some of its prefixes from not_before until "
                       "not_after. Signed by the brand owner; the latest licence from one owner to one licensee "
                       "for a prefix decides, so a licence is ended by signing a new one with an earlier "
                       "not_after. A commission by a licensee in that window is judged genuine (reason "
                       "licensed_manufacturer, info); without one, not_commissioned_by_manufacturer (critical).",
        "properties": {
            "v": {"const": 1}, "type": {"const": "licence"}, "actor": _ref("PartyId"), "time": _ref("Time"),
            "location": _ref("Location"), "licensee": _ref("PartyId"),
            "gs1_prefixes": {"type": "array", "minItems": 1, "maxItems": 64,
                             "items": {"type": "string", "pattern": "^[0-9]{4,12}$"}},
            "not_before": _ref("Time"), "not_after": _ref("Time"),
        },
    },
    "AppendResult": {
        "type": "object", "required": ["event_id", "leaf_index"], "additionalProperties": False,
        "properties": {"event_id": _ref("EventId"), "leaf_index": {"type": "integer", "minimum": 0}},
    },
    "BatchRequest": {
        "type": "object", "required": ["envelopes"], "additionalProperties": False,
        "properties": {"envelopes": {"type": "array", "maxItems": 1000, "items": {
            "description": "A DSSE envelope (schema Envelope). Each one is judged on its own: a malformed or "
                           "refused envelope gets an error in its place in the results; it does not fail the "
                           "batch."}}},
    },
    "BatchResponse": {
        "type": "object", "required": ["results"], "additionalProperties": False,
        "properties": {"results": {"type": "array", "items": {"oneOf": [_ref("AppendResult"), _ref("Error")]},
                                   "description": "One result per envelope, in order."}},
    },
    "EventRecord": {
        "type": "object", "required": ["event_id", "leaf_index", "envelope", "statement"],
        "additionalProperties": False,
        "properties": {"event_id": _ref("EventId"), "leaf_index": {"type": "integer", "minimum": 0},
                       "envelope": _ref("Envelope"), "statement": _ref("Statement"),
                       "note_redacted": {"type": "boolean", "description": (
                           "A legacy inspect statement signed a plaintext note; it is left out of `statement` (the "
                           "envelope's payload still holds it: signed bytes cannot change).")},
                       "private_note": {"type": "string", "description": (
                           "The customs note, only for a signed-in customs officer of that country or the admin.")}},
    },
    "NoteUpload": {
        "type": "object", "required": ["event_id", "note", "salt"], "additionalProperties": False,
        "description": "The preimage of an inspect statement's note_commitment: sha256(salt || UTF-8 note).",
        "properties": {"event_id": _ref("EventId"), "note": {"type": "string", "minLength": 1, "maxLength": 500},
                       "salt": {"type": "string", "pattern": "^([0-9a-fA-F]{2}){16,64}$"}},
    },
    "NoteStored": {
        "type": "object", "required": ["event_id", "stored"], "additionalProperties": False,
        "properties": {"event_id": _ref("EventId"), "stored": {"type": "boolean"}},
    },
    "Reason": {
        "type": "object", "required": ["code", "severity", "message", "event_id"], "additionalProperties": False,
        "description": "Stable codes (SPEC §4, §7). Beyond SPEC §4: unverified_brand (warning: no registered "
                       "party owns the GTIN's GS1 company prefix, read after the indicator digit); "
                       "licensed_manufacturer (info: made under a brand owner's licence); location_mismatch "
                       "(warning: a declared location the registry contradicts; borders are judged from "
                       "registered countries and sites); sold (info: when and where it was sold; an item sold "
                       "before is not new); label_copied (warning: consumer scans from more distinct networks "
                       "than a genuine label sees -- after the sale, or before any retailer held it; counted per "
                       "item and day under a keyed hash of the network prefix, kept 90 days, no addresses); "
                       "path_truncated (warning: the history goes past what one lookup follows).",
        "properties": {
            "code": {"enum": sorted(SEVERITY)},
            "severity": {"enum": ["critical", "warning", "info"]},
            "message": {"type": "string"},
            "event_id": {"oneOf": [_ref("EventId"), {"type": "null"}]},
        },
    },
    "PathEvent": {
        "type": "object", "required": ["event_id", "type", "actor", "actor_name", "role", "time", "location"],
        "additionalProperties": False,
        "properties": {
            "event_id": _ref("EventId"), "type": {"enum": list(TYPES)}, "actor": {"type": "string"},
            "actor_name": {"type": "string"}, "role": {"oneOf": [{"enum": list(ROLES)}, {"type": "null"}]},
            "time": {"type": "string"}, "location": {"oneOf": [_ref("Location"), {"type": "null"}]},
            "to": _ref("PartyId"), "from": _ref("PartyId"), "decision": {"enum": ["released", "held", "seized"]},
        },
    },
    "Product": {
        "type": "object", "required": ["name", "manufacturer"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "manufacturer": _ref("PartyId"), "lot": {"type": "string"},
                       "expiry": {"type": "string"}},
    },
    "Provenance": {
        "type": "object", "additionalProperties": False,
        "required": ["item", "gtin", "serial", "product", "verdict", "reasons", "holder", "path", "checkpoint"],
        "properties": {
            "item": {"type": "string", "description": "canonical key 01/{gtin14}/21/{serial}, or 00/{sscc18} for a "
                                                     "container"},
            "gtin": {"type": ["string", "null"], "pattern": "^[0-9]{14}$"},
            "serial": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
            "product": {"oneOf": [_ref("Product"), {"type": "null"}]},
            "verdict": {"enum": list(VERDICTS)},
            "reasons": {"type": "array", "items": _ref("Reason")},
            "holder": {"oneOf": [_ref("PartyId"), {"type": "null"}]},
            "path": {"type": "array", "items": _ref("PathEvent")},
            "checkpoint": {"type": ["string", "null"],
                           "description": "the signed checkpoint (C2SP signed note) the answer was computed at"},
        },
    },
    "Head": {
        "type": "object", "required": ["event_id"], "additionalProperties": False,
        "properties": {"event_id": _ref("EventId")},
    },
    "PartyKey": {
        "type": "object", "required": ["keyid", "public_key", "not_before"], "additionalProperties": False,
        "properties": {"keyid": {"type": "string", "pattern": "^[0-9a-f]{16}$"}, "public_key": _ref("Base64"),
                       "not_before": _ref("Time"), "revoked_at": _ref("Time")},
    },
    "Party": {
        "type": "object", "required": ["id", "name", "country", "roles", "keys", "gs1_prefixes"],
        "additionalProperties": False, "description": "Public registry data only.",
        "properties": {
            "id": _ref("PartyId"), "name": {"type": "string"}, "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "roles": {"type": "array", "minItems": 1, "items": {"enum": list(ROLES)}},
            "keys": {"type": "array", "minItems": 1, "items": _ref("PartyKey")},
            "gs1_prefixes": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{4,12}$"}},
            "sites": {"type": "array", "items": _ref("Site"),
                      "description": "Registered sites: where a declared location may be without a mismatch."},
        },
    },
    "Site": {
        "type": "object", "required": ["name", "country"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                       "gln": {"type": "string", "pattern": "^[0-9]{13}$"}},
    },
    "PartyList": {
        "type": "object", "required": ["parties"], "additionalProperties": False,
        "properties": {"parties": {"type": "array", "items": _ref("Party")}},
    },
    "InclusionProof": {
        "type": "object", "required": ["leaf_index", "tree_size", "hashes"], "additionalProperties": False,
        "properties": {"leaf_index": {"type": "integer", "minimum": 0}, "tree_size": {"type": "integer", "minimum": 1},
                       "hashes": {"type": "array", "items": _ref("Base64")}},
    },
    "ConsistencyProof": {
        "type": "object", "required": ["hashes"], "additionalProperties": False,
        "properties": {"hashes": {"type": "array", "items": _ref("Base64")}},
    },
}

_RESPONSES = {
    "BadRequest": _json(_ref("Error"), "Bad input: malformed JSON, UTF-8, identifier, parameter or statement."),
    "NotFound": _json(_ref("Error"), "No such event, party, item or endpoint."),
    "MethodNotAllowed": _json(_ref("Error"), "Method not allowed on this path."),
    "PayloadTooLarge": _json(_ref("Error"), "Request body too large."),
    "UnsupportedMediaType": _json(_ref("Error"), "The body is not application/json."),
    "Rejected": _json(_ref("Error"), "A well-formed statement the ledger refuses (signature, key, role, "
                                     "unknown item, clock)."),
    "TooManyRequests": _json(_ref("Error"), "A rate limit (per client, per signing key) was exceeded; see "
                                            "Retry-After."),
    "StorageUnavailable": {**_json(_ref("Error"), "storage_unavailable: the ledger database is down or restarting. "
                                                  "Nothing was written; send the same request again after "
                                                  "Retry-After seconds (a repeated envelope is stored once)."),
                           "headers": {"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}}},
    "StorageFull": {**_json(_ref("Error"), "storage_full: the ledger's storage is full. Nothing was written; reads "
                                           "still work; send the same request again later."),
                    "headers": {"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}}},
}

_GTIN = {"name": "gtin", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{8,14}$"},
         "description": "GTIN-8/12/13/14 with a valid check digit (left-padded to 14)."}
_SERIAL = {"name": "serial", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1, "maxLength": 20},
           "description": "Serial (AI 21), 1-20 characters of GS1 AI-82, percent-encoded ('/' as %2F)."}

_SSCC = {"name": "sscc", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{18}$"},
         "description": "SSCC (AI 00): 18 digits with a valid check digit."}

_PATHS: dict[str, Any] = {
    "/events": {"post": {
        "operationId": "postEvent", "summary": "Submit one signed statement",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Envelope")}}},
        "responses": {"201": _json(_ref("AppendResult"), "Accepted and appended."),
                      "200": _json(_ref("AppendResult"), "Already in the ledger: the same ids."),
                      **_errors(400, 405, 413, 415, 422, 503, 507)},
    }},
    "/events/batch": {"post": {
        "operationId": "postEventBatch", "summary": "Submit up to 1000 signed statements in order",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BatchRequest")}}},
        "responses": {"200": _json(_ref("BatchResponse"), "Per-envelope results in order."),
                      **_errors(400, 405, 413, 415, 503, 507)},
    }},
    "/notes": {"post": {
        "operationId": "postNote", "summary": "Deliver the private note behind an inspect statement's commitment",
        "description": "No session needed: the preimage is the proof. The note is never shown to the public.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NoteUpload")}}},
        "responses": {"201": _json(_ref("NoteStored"), "Stored."),
                      "200": _json(_ref("NoteStored"), "This note was already stored."),
                      **_errors(400, 404, 413, 415, 422)},
    }},
    "/events/{event_id}": {"get": {
        "operationId": "getEvent", "summary": "One event: envelope and statement",
        "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": _ref("EventId")}],
        "responses": {"200": _json(_ref("EventRecord"), "The event."), **_errors(400, 404, 503)},
    }},
    "/items/{gtin}/{serial}": {"get": {
        "operationId": "getItem", "summary": "Provenance of an item: path, verdict and reasons",
        "parameters": [_GTIN, _SERIAL],
        "responses": {"200": _json(_ref("Provenance"), "The provenance answer (unknown items: likely_counterfeit "
                                                        "with reason unknown_item)."),
                      **_errors(400, 404, 429, 503)},
    }},
    "/items/{gtin}/{serial}/head": {"get": {
        "operationId": "getItemHead", "summary": "The item's latest event id (what a signer puts in prev)",
        "parameters": [_GTIN, _SERIAL],
        "responses": {"200": _json(_ref("Head"), "The latest event."), **_errors(400, 404, 429, 503)},
    }},
    "/containers/{sscc}": {"get": {
        "operationId": "getContainer", "summary": "Provenance of a container (case, pallet), judged like an item",
        "parameters": [_SSCC],
        "responses": {"200": _json(_ref("Provenance"), "The provenance answer (gtin, serial and product null)."),
                      **_errors(400, 404, 429)},
    }},
    "/containers/{sscc}/head": {"get": {
        "operationId": "getContainerHead", "summary": "The container's latest event id (what a signer puts in prev)",
        "parameters": [_SSCC],
        "responses": {"200": _json(_ref("Head"), "The latest event."), **_errors(400, 404, 429)},
    }},
    "/parties": {"get": {
        "operationId": "listParties", "summary": "Registered parties (public data)",
        "responses": {"200": _json(_ref("PartyList"), "Every party."), **_errors(503)},
    }},
    "/parties/{party_id}": {"get": {
        "operationId": "getParty", "summary": "One party (public data)",
        "parameters": [{"name": "party_id", "in": "path", "required": True, "schema": _ref("PartyId")}],
        "responses": {"200": _json(_ref("Party"), "The party."), **_errors(400, 404, 503)},
    }},
    "/checkpoint": {"get": {
        "operationId": "getCheckpoint", "summary": "Latest signed checkpoint (C2SP tlog-checkpoint)",
        "responses": {"200": _text("origin, tree size, base64 root hash, blank line, signature lines."),
                      **_errors(503)},
    }},
    "/proof/inclusion": {"get": {
        "operationId": "getInclusionProof", "summary": "RFC 6962 inclusion proof for an event",
        "parameters": [
            {"name": "event_id", "in": "query", "required": True, "schema": _ref("EventId")},
            {"name": "tree_size", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1}, "description": "default: the latest checkpoint"},
        ],
        "responses": {"200": _json(_ref("InclusionProof"), "The audit path."), **_errors(400, 404, 503)},
    }},
    "/proof/consistency": {"get": {
        "operationId": "getConsistencyProof", "summary": "RFC 6962 consistency proof between two tree sizes",
        "parameters": [
            {"name": "first", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}},
            {"name": "second", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}},
        ],
        "responses": {"200": _json(_ref("ConsistencyProof"), "The proof."), **_errors(400, 503)},
    }},
    "/log/verifier-key": {"get": {
        "operationId": "getVerifierKey", "summary": "The ledger's C2SP vkey (name+keyid+base64 key)",
        "responses": {"200": _text("The verifier key string.")},
    }},
    "/openapi.json": {"get": {
        "operationId": "getOpenApi", "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {
            "type": "object"}}}}},
    }},
}


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    from .epcis_openapi import EPCIS_PATHS, EPCIS_SCHEMAS  # the EPCIS 2.0 routes (web/api/epcis.py)

    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Waybill API", "version": "1",
                 "description": "Signed, tamper-evident provenance tracker (SPEC §4). Every error is "
                                "{\"error\": {\"code\", \"message\"}}. Writes are DSSE envelopes signed by the "
                                "party making the statement; reads are public."},
        "servers": [{"url": "/api/v1"}],
        "paths": {**_PATHS, **EPCIS_PATHS},
        "components": {"schemas": {**_SCHEMAS, **EPCIS_SCHEMAS}, "responses": _RESPONSES},
    }


def openapi_document() -> dict[str, Any]:
    doc = copy.deepcopy(_document())
    for operations in doc["paths"].values():  # every route is rate limited (web.security)
        for operation in operations.values():
            operation["responses"].setdefault("429", {"$ref": "#/components/responses/TooManyRequests"})
    return doc
