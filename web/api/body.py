"""Reading a JSON request body without ever turning bad input into a 500: wrong media type (415),
too large (413), not UTF-8, not JSON, NaN/Infinity or nested past Python's recursion limit (400)."""
from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from tracker.errors import InvalidInput

__all__ = ["json_body"]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_body(*, max_bytes: int | None = None) -> Any:
    """The request body parsed as JSON. ``max_bytes`` lowers the app's MAX_CONTENT_LENGTH for this request."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise UnsupportedMediaType(f"send the body as application/json (got {mimetype or 'no Content-Type'})")
    limit = request.max_content_length
    if max_bytes is not None:
        limit = max_bytes if limit is None else min(limit, max_bytes)
    streamed = request.content_length is None  # chunked: no length to check up front
    # A declared Content-Length past the limit is refused before reading (413). A chunked body is read through
    # a stream capped at the limit, which *truncates* silently at the cap instead of failing (werkzeug
    # LimitedStream.readall): allow one byte more and refuse if it arrives, so the cap is a limit, not a cut.
    request.max_content_length = limit + 1 if (limit is not None and streamed) else limit
    raw = request.get_data(cache=False)  # raises RequestEntityTooLarge (413) past a declared length
    if limit is not None and len(raw) > limit:
        raise RequestEntityTooLarge()
    if not raw.strip():
        raise InvalidInput("the request body is empty: send a JSON document", code="invalid_json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the request body is not valid UTF-8 (byte {exc.start})", code="invalid_utf8") from exc
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError as exc:
        raise InvalidInput("the JSON document is nested too deeply", code="invalid_json") from exc
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN/Infinity
        raise InvalidInput(f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
