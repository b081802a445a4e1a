"""SPEC §4 endpoints. Each view parses the request, calls one core function, and returns JSON."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any
from flask import Response, current_app, jsonify, request, url_for
from flask_login import current_user

from tracker import provenance
from tracker.dsse import parse_envelope
from tracker.errors import InvalidIdentifier, InvalidInput, NotFound, TrackerError
from tracker.identifiers import ContainerKey, ItemKey, parse_link_path, validate_serial
from tracker.ledger import AppendResult
from tracker.parties import PARTY_ID_RULE
from tracker.statements import EVENT_ID, PARTY_ID

from .. import ledger
from .. import now as server_now
from ..notes import note_for, redacted_statement, store_note
from ..routing import raw_segments_after
from ..security import hit_keyed, limited, public_lookup
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


def _signing_keyids(doc: Any) -> list[str]:
    """The key ids an envelope claims to be signed by (checked or not: a flood under one claimed key is
    throttled before any signature is verified; a forger rotating made-up ids still meets the per-client limit)."""
    sigs = doc.get("signatures") if isinstance(doc, dict) else None
    if not isinstance(sigs, list):
        return []
    ids = [s.get("keyid") for s in sigs[:4] if isinstance(s, dict)]
    return sorted({k[:32] for k in ids if isinstance(k, str) and k})


# --- writes ----------------------------------------------------------------------------------------

@bp.post("/events")
@limited("write")
def post_event() -> tuple[Response, int] | Response:
    doc = json_body(max_bytes=current_app.config["WAYBILL_MAX_EVENT_BYTES"])
    for keyid in _signing_keyids(doc):
        hit_keyed("WAYBILL_KEY_WRITE_LIMIT", "signing-key", keyid, what=f"signing key {keyid}")
    # Only a JSON object is an envelope (a JSON string holding one is not); None makes the core say so.
    result = ledger().append(parse_envelope(doc if isinstance(doc, dict) else None), now=_now())
    response = jsonify(_ids(result))
    response.headers["Location"] = url_for("api.get_event", event_id=result.event_id)
    return response, 201 if result.created else 200


@bp.post("/events/batch")
@limited("write")
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
@limited("read")
def get_event(event_id: str) -> Response:
    entry, statement = ledger().get_event(_event_id_arg(event_id))
    shown = redacted_statement(dict(statement.raw))
    doc: dict[str, Any] = {"event_id": entry.event_id, "leaf_index": entry.leaf_index,
                           "envelope": json.loads(entry.leaf_data), "statement": shown}
    if shown.pop("note_redacted", False):
        doc["note_redacted"] = True
    reader = current_user.user if statement.type == "inspect" and current_user.is_authenticated else None
    note = note_for(ledger(), reader, entry.event_id) if reader is not None else None
    response = jsonify(dict(doc, private_note=note) if note is not None else doc)
    response.vary.add("Cookie")
    if note is not None:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/notes")
@limited("write")
def post_note() -> tuple[Response, int]:
    doc = json_body(max_bytes=8192)
    if not isinstance(doc, dict):
        raise InvalidInput('send {"event_id": ..., "note": ..., "salt": "<hex>"}', code="invalid_request")
    stored = store_note(ledger(), event_id=doc.get("event_id"), note=doc.get("note"), salt=doc.get("salt"),
                        now=_now())
    return jsonify({"event_id": doc["event_id"], "stored": True}), 201 if stored else 200


def _item_from_url() -> tuple[ItemKey, bool]:
    """(item, wants_head) from the raw ``/items/{gtin}/{serial}[/head]``: a '/' inside a serial is sent as %2F
    (``A%2Fhead`` is the serial "A/head"; ``A/head`` is the head of "A"), a raw '/' separates segments. The
    GTIN and serial are read by the core's Digital Link parser, as ``/01/{gtin}/21/{serial}``."""
    segments = raw_segments_after(f"{bp.url_prefix}/items")
    if segments is None or len(segments) < 2:  # pragma: no cover - the route guarantees the prefix
        raise InvalidIdentifier("use /items/{gtin}/{serial}", field="serial")
    is_head = len(segments) == 3 and segments[2] == "head"
    if len(segments) > 2 and not is_head:
        raise InvalidIdentifier("a '/' inside a serial must be sent percent-encoded as %2F: "
                                "/items/{gtin}/{serial}[/head]", field="serial")
    gtin, serial = segments[0], segments[1]
    if not serial:
        validate_serial("")
    item = parse_link_path(f"/01/{gtin}/21/{serial}").key
    if not isinstance(item, ItemKey):  # pragma: no cover - a path built as /01/…/21/… names an item or raises
        raise InvalidIdentifier("use /items/{gtin}/{serial}", field="serial")
    return item, is_head


@bp.get("/items/<gtin>/<serial_path:rest>")
@public_lookup
def get_item(gtin: str, rest: str) -> Response:
    item, is_head = _item_from_url()
    if is_head:
        event_id = provenance.head(ledger(), str(item))
        if event_id is None:
            raise NotFound(f"we have no record of item {item}", code="unknown_item")
        return jsonify({"event_id": event_id})
    return _answer_json(provenance.lookup(ledger(), item))


def _answer_json(answer: provenance.Provenance) -> Response:
    """The SPEC §4 answer. With ``?limit=`` (and ``after=``, the ``next`` cursor of the previous page) the path
    comes in pages of at most 1000 steps, with a ``page`` object; verdict and reasons still cover every event."""
    doc = answer.to_json()
    raw_limit, after = request.args.get("limit"), request.args.get("after")
    if raw_limit is None and after is None:
        return jsonify(doc)
    if raw_limit is not None and not _INT.match(raw_limit):
        raise InvalidInput(f"limit must be a whole number from 1 to {provenance.MAX_PAGE}", code="invalid_limit",
                           field="limit")
    limit = provenance.MAX_PAGE if raw_limit is None else int(raw_limit)
    page = provenance.page_of(doc["path"], limit=limit, after=after)
    doc["path"] = list(page.rows)
    doc["page"] = page.to_json(limit)
    return jsonify(doc)


@bp.get("/containers/<sscc>")
@public_lookup
def get_container(sscc: str) -> Response:
    """A container (case, pallet) is judged like an item: its own path from the aggregate that created it."""
    return _answer_json(provenance.lookup(ledger(), ContainerKey(sscc=sscc)))


@bp.get("/containers/<sscc>/head")
@public_lookup
def get_container_head(sscc: str) -> Response:
    key = ContainerKey(sscc=sscc)
    event_id = provenance.head(ledger(), str(key))
    if event_id is None:
        raise NotFound(f"we have no record of container {key}", code="unknown_item")
    return jsonify({"event_id": event_id})


@bp.get("/parties")
@limited("read")
def get_parties() -> Response:
    parties = sorted(ledger().parties(), key=lambda p: p.id)
    return jsonify({"parties": [p.public_json() for p in parties]})


@bp.get("/parties/<party_id>")
@limited("read")
def get_party(party_id: str) -> Response:
    if not PARTY_ID.match(party_id):
        raise InvalidInput(f"party id {party_id!r} must match {PARTY_ID_RULE}", code="invalid_party_id",
                           field="id")
    return jsonify(ledger().party(party_id).public_json())


@bp.get("/checkpoint")
@limited("read")
def get_checkpoint() -> Response:
    from tracker.cosigning import cosigned_note

    ledger().checkpoint()  # the no_checkpoint error when there is none yet
    return _text(cosigned_note(ledger()))


@bp.get("/proof/inclusion")
@limited("read")
def get_inclusion_proof() -> Response:
    event_id = _event_id_arg(request.args.get("event_id"))
    tree_size = _int_arg("tree_size", required=False)
    leaf_index, size, hashes = ledger().inclusion_proof(event_id=event_id, tree_size=tree_size)
    return jsonify({"leaf_index": leaf_index, "tree_size": size, "hashes": _b64(hashes)})


@bp.get("/proof/consistency")
@limited("read")
def get_consistency_proof() -> Response:
    first = _int_arg("first", required=True)
    second = _int_arg("second", required=True)
    assert first is not None and second is not None
    return jsonify({"hashes": _b64(ledger().consistency_proof(first, second))})


@bp.get("/log/verifier-key")
@limited("read")
def get_verifier_key() -> Response:
    return _text(ledger().vkey)


@bp.get("/openapi.json")
@limited("read")
def get_openapi() -> Response:
    return jsonify(openapi_document())

