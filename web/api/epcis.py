"""EPCIS 2.0 REST binding, the parts Waybill serves (docs/epcis.md): query events, an item's history, capture.

Errors are ``{"error": {"code", "message"}}`` like everywhere on /api/v1, unless the client asks for the
binding's RFC 7807 shape (``Accept: application/problem+json``, or any request announcing itself with a
``GS1-EPCIS-Version`` header): then ``application/problem+json`` with an ``epcisException:...`` type, the
per-event problems as ``errors``, and the same ``error`` member as an extension."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable, TypeVar, cast

from flask import Response, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from tracker.epcis.capture import MAX_EVENTS, CaptureRefused, verify_capture
from tracker.epcis.epc import key_of_epc
from tracker.epcis.export import exported_events, item_history, query_document
from tracker.epcis.query import QueryParameterError, parse_query, run_query
from tracker.errors import InvalidInput, TrackerError
from tracker.identifiers import parse_code
from tracker.ledger import AppendResult

from .. import ledger
from . import bp
from .body import json_body

__all__ = ["problem"]

_EXCEPTIONS = {400: "epcisException:ValidationException", 401: "epcisException:SecurityException",
               403: "epcisException:SecurityException", 404: "epcisException:NoSuchResourceException",
               406: "epcisException:ValidationException", 413: "epcisException:CaptureLimitExceededException",
               415: "epcisException:ValidationException", 500: "epcisException:ImplementationException"}
_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
F = TypeVar("F", bound=Callable[..., Any])


def wants_problem() -> bool:
    if request.headers.get("GS1-EPCIS-Version"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "application/problem+json"])
    return best == "application/problem+json" and request.accept_mimetypes["application/problem+json"] > \
        request.accept_mimetypes["application/json"]


def problem(status: int, code: str, message: str, *, kind: str | None = None, **extra: Any) -> Response:
    """An error answer in the shape the client asked for (module docstring)."""
    if wants_problem():
        body: dict[str, Any] = {"type": kind or _EXCEPTIONS.get(status, "epcisException:ImplementationException"),
                                "title": message[:200], "status": status, "detail": message,
                                "error": {"code": code, "message": message}, **extra}
    else:
        body = {"error": {"code": code, "message": message}}
    response = jsonify(body)
    response.status_code = status
    if wants_problem():
        response.mimetype = "application/problem+json"
    response.headers.update(_HEADERS)
    return response


def _epcis_errors(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except QueryParameterError as exc:
            return problem(400, exc.code, exc.message, kind="epcisException:QueryParameterException")
        except CaptureRefused as exc:
            extra: dict[str, Any] = {"errors": [p.to_json() for p in exc.problems]} if exc.problems else {}
            return problem(exc.http_status, exc.code, exc.message, **extra)
        except TrackerError as exc:
            if exc.http_status >= 500:
                raise  # storage trouble and integrity failures: the app's handler logs and words them
            return problem(exc.http_status, exc.code, exc.message)
        except HTTPException as exc:
            status = exc.code or 400
            if status >= 500:
                raise
            code = {413: "body_too_large", 415: "unsupported_media_type"}.get(status, "bad_request")
            return problem(status, code, exc.description or exc.name)
    return cast(F, wrapped)


def _json(doc: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(doc)
    response.status_code = status
    response.headers.update(_HEADERS)
    return response


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.get("/epcis/events")
@_epcis_errors
def epcis_events() -> Response:
    query = parse_query(request.args.to_dict(flat=True))
    led = ledger()
    page = run_query(led, query, token=request.args.get("nextPageToken"))
    doc = query_document(exported_events(led, page.items, tree_size=page.tree_size), checkpoint=page.checkpoint,
                         now=_now())
    response = _json(doc)
    if page.next_token:
        args: dict[str, Any] = dict(request.args.to_dict(flat=True), nextPageToken=page.next_token)
        response.headers["Link"] = f'<{url_for("api.epcis_events", **args)}>; rel="next"'
    return response


@bp.get("/epcis/history")
@_epcis_errors
def epcis_history() -> Response:
    epc = request.args.get("epc")
    if not epc:
        raise QueryParameterError("epc is required: an EPC URN or Digital Link URI of an item or container",
                                  field="epc")
    try:
        key = key_of_epc(epc) if epc.startswith("urn:epc:") else str(parse_code(epc))
    except TrackerError as exc:
        raise QueryParameterError(exc.message, field="epc") from exc
    return _json(item_history(ledger(), key, now=_now()))


@bp.post("/epcis/capture")
@_epcis_errors
def epcis_capture() -> Response:
    behaviour = request.headers.get("GS1-Capture-Error-Behaviour", "rollback")
    if behaviour not in ("rollback", "proceed"):
        raise InvalidInput("GS1-Capture-Error-Behaviour must be rollback or proceed", code="invalid_header",
                           field="GS1-Capture-Error-Behaviour")
    body = json_body()  # the app's WAYBILL_MAX_BODY_BYTES; the document inside is capped by verify_capture
    led = ledger()
    now = _now()
    capture = verify_capture(led, body if isinstance(body, dict) else None, now=now)
    signed = [s for s in capture.statements if not isinstance(s, TrackerError)]
    failed = len(signed) != len(capture.statements)
    results: list[Any] = list(capture.statements)
    if not (failed and behaviour == "rollback"):
        appended = iter(led.append_batch(signed, now=now, all_or_nothing=behaviour == "rollback") if signed else [])
        results = [s if isinstance(s, TrackerError) else next(appended) for s in capture.statements]
    errors = [{"index": i, "eventID": capture.events[i].get("eventID"), "code": r.code, "message": r.message,
               **({"field": r.field} if r.field else {})} for i, r in enumerate(results) if isinstance(r, TrackerError)]
    job = {"captureID": uuid.uuid4().hex, "createdAt": now.isoformat().replace("+00:00", "Z"),
           "finishedAt": _now().isoformat().replace("+00:00", "Z"), "running": False, "success": not errors,
           "captureErrorBehaviour": behaviour, "errors": errors,
           "waybill:results": [{"event_id": r.event_id, "leaf_index": r.leaf_index, "created": r.created}
                               if isinstance(r, AppendResult) else None for r in results]}
    response = _json(job, 202)
    response.headers["GS1-EPCIS-Capture-Limit"] = str(MAX_EVENTS)
    return response
