"""SPEC §4 endpoints. Each view parses the request, calls one core function, and returns JSON."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Response, current_app, jsonify, request, url_for

from tracker import provenance
from tracker.errors import InvalidInput, NotFound, TrackerError
from tracker.identifiers import ItemKey
from tracker.ledger import AppendResult
from tracker.statements import EVENT_ID, PARTY_ID

from .. import ledger
from .. import now as server_now
from ..security import public_lookup
from . import bp
from .body import json_body
from .openapi import openapi_document

_INT = re.compile(r"^[0-9]{1,19}$")


def _now() -> datetime:
    return server_now()


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain")


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _event_id_arg(value: str | None, *, name: str = "event_id") -> str:
    if value is None or value == "":
        raise InvalidInput(f"{name} is required", code="missing_parameter", field=name)
    if not EVENT_ID.match(value):
        raise InvalidInput(f"{name} must look like sha256:<64 lowercase hex digits>", code="invalid_event_id",
                           field=name)
    return value


def _int_arg(name: str, *, required: bool) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", code="missing_parameter", field=name)
        return None
    if not _INT.match(value):
        raise InvalidInput(f"{name} must be a non-negative integer", code="invalid_tree_size", field=name)
    return int(value)


def _error_json(exc: TrackerError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message}}


def _ids(result: AppendResult) -> dict[str, Any]:
    return {"event_id": result.event_id, "leaf_index": result.leaf_index}


# --- writes ----------------------------------------------------------------------------------------

@bp.post("/events")
def post_event() -> tuple[Response, int] | Response:
    doc = json_body(max_bytes=current_app.config["WAYBILL_MAX_EVENT_BYTES"])
    # Only a JSON object is an envelope (a JSON string holding one is not); None makes the core say so.
    result = ledger().append(doc if isinstance(doc, dict) else None, now=_now())
    response = jsonify(_ids(result))
    response.headers["Location"] = url_for("api.get_event", event_id=result.event_id)
    return response, 201 if result.created else 200


@bp.post("/events/batch")
def post_batch() -> Response:
    doc = json_body()
    if not isinstance(doc, dict) or not isinstance(doc.get("envelopes"), list) or set(doc) != {"envelopes"}:
        raise InvalidInput('the body must be {"envelopes": [envelope, ...]}', code="invalid_batch",
                           field="envelopes")
    envelopes = [e if isinstance(e, dict) else None for e in doc["envelopes"]]
    results = ledger().append_batch(envelopes, now=_now())
    return jsonify({"results": [_error_json(r) if isinstance(r, TrackerError) else _ids(r) for r in results]})


# --- reads -----------------------------------------------------------------------------------------

@bp.get("/events/<event_id>")
def get_event(event_id: str) -> Response:
    entry, statement = ledger().get_event(_event_id_arg(event_id))
    return jsonify({"event_id": entry.event_id, "leaf_index": entry.leaf_index,
                    "envelope": json.loads(entry.leaf_data), "statement": dict(statement.raw)})


def _item_from_url(gtin: str, rest: str) -> tuple[ItemKey, bool]:
    """(item, wants_head) from ``/items/{gtin}/{serial}[/head]``. A serial may contain '/', sent as %2F;
    the raw request URI tells an encoded ``A%2Fhead`` (serial "A/head") from ``A/head`` (head of "A")."""
    raw = urlsplit(request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or "").path
    marker = f"/items/{gtin}/"
    serial, is_head = rest, False
    if marker in raw:
        segments = raw.split(marker, 1)[1].split("/")
        if len(segments) == 1:
            serial = unquote(segments[0])
        elif len(segments) == 2 and segments[1] == "head":
            serial, is_head = unquote(segments[0]), True
        elif rest.endswith("/head"):
            serial, is_head = rest[: -len("/head")], True
    elif rest.endswith("/head"):
        serial, is_head = rest[: -len("/head")], True
    return ItemKey(gtin=gtin, serial=serial), is_head


@bp.get("/items/<gtin>/<serial_path:rest>")
@public_lookup
def get_item(gtin: str, rest: str) -> Response:
    item, is_head = _item_from_url(gtin, rest)
    if is_head:
        event_id = provenance.head(ledger(), str(item))
        if event_id is None:
            raise NotFound(f"we have no record of item {item}", code="unknown_item")
        return jsonify({"event_id": event_id})
    return jsonify(provenance.lookup(ledger(), item).to_json())


@bp.get("/parties")
def get_parties() -> Response:
    parties = sorted(ledger().parties(), key=lambda p: p.id)
    return jsonify({"parties": [p.public_json() for p in parties]})


@bp.get("/parties/<party_id>")
def get_party(party_id: str) -> Response:
    if not PARTY_ID.match(party_id):
        raise InvalidInput(f"party id {party_id!r} must match {PARTY_ID.pattern}", code="invalid_party_id",
                           field="id")
    return jsonify(ledger().party(party_id).public_json())


@bp.get("/checkpoint")
def get_checkpoint() -> Response:
    return _text(ledger().checkpoint())


@bp.get("/proof/inclusion")
def get_inclusion_proof() -> Response:
    event_id = _event_id_arg(request.args.get("event_id"))
    tree_size = _int_arg("tree_size", required=False)
    leaf_index, size, hashes = ledger().inclusion_proof(event_id=event_id, tree_size=tree_size)
    return jsonify({"leaf_index": leaf_index, "tree_size": size, "hashes": _b64(hashes)})


@bp.get("/proof/consistency")
def get_consistency_proof() -> Response:
    first = _int_arg("first", required=True)
    second = _int_arg("second", required=True)
    assert first is not None and second is not None
    return jsonify({"hashes": _b64(ledger().consistency_proof(first, second))})


@bp.get("/log/verifier-key")
def get_verifier_key() -> Response:
    return _text(ledger().vkey)


@bp.get("/openapi.json")
def get_openapi() -> Response:
    return jsonify(openapi_document())

