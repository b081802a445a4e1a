"""The one error handler: ``{"error": {"code", "message"}}`` under ``/api`` (or when the client asked
for JSON), a friendly HTML page everywhere else. Bad input is always a 4xx, never a 500."""
from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from tracker.errors import TrackerError

__all__ = ["init_app", "error_response", "wants_json"]

log = logging.getLogger("waybill.web")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    507: "storage_full",
}
_HTTP_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    413: "The request body is too large.",
    415: "Send the body as application/json.",
}
_TITLES = {
    400: "That didn't work",
    404: "Page not found",
    405: "Not allowed",
    413: "That file is too large",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
    507: "Temporarily unable to record",
}

_SERVER_MESSAGES = {
    "storage_unavailable": "The ledger database is temporarily unavailable. Please try again shortly.",
    "storage_full": "The ledger's storage is full, so nothing new can be recorded: nothing was written. "
                    "Looking items up still works. Please try again later; the operator has been alerted.",
    "ledger_integrity_failure": "The ledger failed an integrity check; the operator has been alerted.",
}
_CODE_TITLES = {
    "invalid_identifier": "That is not a valid product code",
    "not_an_item": "That is not a product code",
    "invalid_image": "We could not read that photo",
    "image_too_large": "That photo is too large",
    "body_too_large": "That file is too large",
    "csrf_failed": "Please try again",
    "rate_limited": "Too many requests",
    "account_locked": "Sign-in is locked for a while",
    "busy": "Busy: please try again",
}


def wants_json() -> bool:
    if request.path == "/api" or request.path.startswith(("/api/", "/tlog/")):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"


def error_response(status: int, code: str, message: str) -> Response:
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
    else:
        html = render_template("errors/error.html", status=status, code=code, message=message,
                               title=_CODE_TITLES.get(code) or _TITLES.get(status, "That didn't work"))
        response = Response(html, mimetype="text/html")
    response.status_code = status
    return response


def handle_error(exc: Exception) -> Response | HTTPException:
    if isinstance(exc, TrackerError):
        if exc.http_status >= 500 and exc.code != "busy":
            # Server-side trouble (storage down, tampered rows): log the detail, tell the client what it means.
            log.error("%s on %s %s: %s", exc.code, request.method, request.path, exc.message)
            response = error_response(exc.http_status, exc.code, _SERVER_MESSAGES.get(
                exc.code, "Something went wrong on our side. Please try again later."))
        else:
            response = error_response(exc.http_status, exc.code, exc.message)
        retry_after = getattr(exc, "retry_after", None)  # rate limits and storage faults say when to try again
        if retry_after:
            response.headers["Retry-After"] = str(int(retry_after))
        return response
    if isinstance(exc, CSRFError):
        return error_response(400, "csrf_failed", "The form expired or was not sent from this site. "
                                                  "Reload the page and try again.")
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status < 400:  # routing redirects (e.g. a missing trailing slash) are not errors
            return exc
        code = _HTTP_CODES.get(status) or _snake(exc.name)
        if status == 429:
            message = f"Too many requests ({exc.description}). Please wait a moment and try again."
        else:
            custom = exc.description and exc.description != type(exc).description
            message = (exc.description if custom else _HTTP_MESSAGES.get(status)) or exc.description or exc.name
        if status == 404 and (request.path == "/api" or request.path.startswith("/api/")):
            message = f"There is no API endpoint {request.method} {request.path}; see /api/v1/openapi.json."
        response = error_response(status, code, message)
        if status == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "Something went wrong on our side. Please try again later.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_error)
    app.register_error_handler(TrackerError, handle_error)
    app.register_error_handler(Exception, handle_error)
