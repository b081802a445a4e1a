"""URL converters shared by the blueprints, and the request path as the client sent it.

A GS1 serial may hold '/' (AI-82), sent as ``%2F``. WSGI decodes ``PATH_INFO``, after which ``A%2FB`` (one
serial) and ``A/B`` (two segments) look the same, so the GS1 routes read the raw path: werkzeug's dev server
and test client, and gunicorn, pass it as ``RAW_URI`` / ``REQUEST_URI``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

from flask import Blueprint, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

__all__ = ["SerialPathConverter", "use_serial_path", "raw_path", "raw_query", "raw_segments_after"]

# RFC 3986 pchar minus the percent-encoding itself: what may stay unencoded in one path segment.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


class SerialPathConverter(PathConverter):
    """``path``, but it may start with '/': a GS1 serial may ("/", "/A1" are valid AI-82), and its URL form
    ``%2F...`` arrives decoded. The stock converter refuses a leading '/', so such items answered 404 (API)
    or redirected to themselves forever (consumer page). Built URLs encode '/' as ``%2F``: the views read a raw
    '/' as a segment separator."""

    regex = r"[\s\S]+?"  # like ".+?" but a (refused) encoded newline reaches the parser: a 400, not a 404
    part_isolating = False  # spans '/' (werkzeug infers isolation from a '/' in the regex, and there is none)

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe=_SEGMENT_SAFE)


def use_serial_path(bp: Blueprint) -> None:
    """Make ``<serial_path:...>`` available to ``bp``'s rules (deferred functions run in recording order, so
    call this before the views module adds its rules)."""
    def register(state: BlueprintSetupState) -> None:
        state.app.url_map.converters.setdefault("serial_path", SerialPathConverter)

    bp.record_once(register)


def _decoded(raw: str) -> str:
    return unquote_to_bytes(raw).decode("utf-8", "replace")


def raw_path() -> str:
    """The request path exactly as sent (still percent-encoded), script root included. When the server gives no
    raw URI, or one that does not decode to the routed path (a rewriting proxy), the decoded path is encoded
    again: a '/' that was sent as %2F then reads as a separator."""
    routed = request.script_root + request.path
    for name in ("RAW_URI", "REQUEST_URI"):
        value = request.environ.get(name)
        if not value:
            continue
        path = urlsplit(value.encode("latin-1").decode("utf-8", "replace")).path
        if path and _decoded(path) == routed:
            return path
    return quote(routed, safe="/" + _SEGMENT_SAFE)


def raw_query() -> str:
    """The query string as sent (WSGI leaves ``QUERY_STRING`` encoded)."""
    return request.query_string.decode("latin-1")


def raw_segments_after(prefix: str) -> list[str] | None:
    """The raw segments of the request path after the decoded ``prefix`` (e.g. ``/api/v1/items``), or None when
    the path does not start with it."""
    segments = raw_path().split("/")
    wanted = (request.script_root + prefix).split("/")
    if len(segments) < len(wanted) or [_decoded(s) for s in segments[:len(wanted)]] != wanted:
        return None
    return segments[len(wanted):]
