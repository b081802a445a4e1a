"""What every response and every public route gets: security headers, CSRF protection for the HTML forms, and
per-client rate limits (flask-limiter) -- a bucket per kind of route, each configurable in ``web.settings``:

==========  ==============================================================  ============================
kind        routes                                                          setting
==========  ==============================================================  ============================
lookup      consumer item page, ``GET /api/v1/items/...``                   ``WAYBILL_LOOKUP_LIMIT``
scan        ``POST /scan`` (photo decoding: the costliest public route)     ``WAYBILL_SCAN_LIMIT``
write       ``POST /api/v1/events``, ``/events/batch``, ``/notes``          ``WAYBILL_WRITE_LIMIT``
read        checkpoint, proofs, events, parties, verifier key, OpenAPI      ``WAYBILL_READ_LIMIT``
tiles       ``/tlog/`` (C2SP tiles: immutable, what mirrors copy in bulk)    ``WAYBILL_TILES_LIMIT``
login       ``POST /login``                                                 ``WAYBILL_LOGIN_LIMIT``
(default)   every other route (pages, static files, signed-in JSON)         ``WAYBILL_DEFAULT_LIMIT``
==========  ==============================================================  ============================

Beyond the per-client buckets, :func:`hit_keyed` counts by something the request names: writes per signing key
(``WAYBILL_KEY_WRITE_LIMIT``) and failed sign-ins per user name (``WAYBILL_LOGIN_NAME_LIMIT``). A 429 carries
``Retry-After``, and under /api the JSON error body.

The JSON API is exempt from CSRF: its writes are authenticated by the signatures they carry, and it sets no
cookies.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, TypeVar

from flask import Blueprint, Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits import parse_many

from tracker.errors import TrackerError

__all__ = ["init_app", "public_lookup", "limited", "hit_keyed", "keyed_exhausted", "RateLimited",
           "SECURITY_HEADERS", "CSP", "LIMIT_SETTINGS"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), geolocation=(), microphone=()",
}
LIMIT_SETTINGS = {"lookup": "WAYBILL_LOOKUP_LIMIT", "scan": "WAYBILL_SCAN_LIMIT", "write": "WAYBILL_WRITE_LIMIT",
                  "read": "WAYBILL_READ_LIMIT", "login": "WAYBILL_LOGIN_LIMIT", "tiles": "WAYBILL_TILES_LIMIT"}
_METHODS = {"login": ["POST"]}  # the sign-in form itself (GET) falls under the default limit

F = TypeVar("F", bound=Callable[..., object])
_MARK = "_waybill_limit_kind"


class RateLimited(TrackerError):
    """Too many requests for something the request names (a signing key, a user name)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


def limited(*kinds: str) -> Callable[[F], F]:
    """Put a view in the per-client buckets ``kinds`` (see the table above); a request spends from each."""
    unknown = [k for k in kinds if k not in LIMIT_SETTINGS]
    if unknown or not kinds:
        raise ValueError(f"unknown rate-limit kind {unknown!r}")

    def mark(view: F) -> F:
        setattr(view, _MARK, kinds)
        return view

    return mark


public_lookup = limited("lookup")


def _limiter() -> Limiter:
    return current_app.extensions["waybill_limiter"]


def _window(setting: str) -> tuple[list, Limiter] | None:
    limiter = _limiter()
    if not limiter.enabled or not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    return list(parse_many(current_app.config[setting])), limiter


def keyed_exhausted(setting: str, scope: str, ident: str) -> float | None:
    """Seconds until ``ident`` may try again under ``setting``, or None if it has requests left (counts
    nothing)."""
    found = _window(setting)
    if found is None:
        return None
    items, limiter = found
    for item in items:
        if not limiter.limiter.test(item, scope, ident):
            reset, _ = limiter.limiter.get_window_stats(item, scope, ident)
            return max(1.0, reset - time.time())
    return None


def hit_keyed(setting: str, scope: str, ident: str, *, what: str) -> None:
    """Count one request for ``ident``; raises RateLimited (429, Retry-After) once its budget is spent."""
    found = _window(setting)
    if found is None:
        return
    items, limiter = found
    for item in items:
        if not limiter.limiter.hit(item, scope, ident):
            reset, _ = limiter.limiter.get_window_stats(item, scope, ident)
            raise RateLimited(f"Too many requests for {what} ({item}). Please wait and try again.",
                              retry_after=reset - time.time())


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask, *, csrf_exempt: Iterable[Blueprint] = ()) -> None:
    csrf = CSRFProtect(app)
    for bp in csrf_exempt:
        csrf.exempt(bp)
    limiter = Limiter(get_remote_address, app=app,
                      default_limits=[lambda: current_app.config["WAYBILL_DEFAULT_LIMIT"]])
    # One bucket per client and kind, shared by the views of that kind: the consumer page and the API answer
    # the same question, so they spend the same budget.
    buckets = {kind: limiter.shared_limit(_setting(setting), scope=kind, methods=_METHODS.get(kind))
               for kind, setting in LIMIT_SETTINGS.items()}
    for endpoint, view in list(app.view_functions.items()):
        wrapped: Callable[..., Any] = view
        for kind in getattr(view, _MARK, ()):
            wrapped = buckets[kind](wrapped)
        app.view_functions[endpoint] = wrapped
    app.extensions["waybill_limiter"] = limiter
    app.after_request(_add_headers)
