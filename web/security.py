"""What every response and every public lookup gets: security headers, CSRF protection for the HTML
forms, and a per-client rate limit on lookups.

The JSON API is exempt from CSRF: its writes are authenticated by the signatures they carry, and it
sets no cookies. Views opt in to the lookup limit with :func:`public_lookup`; the factory wraps them
with this app's limiter, so each app (and each test) has its own counters.
"""
from __future__ import annotations

from typing import Callable, Iterable, TypeVar

from flask import Blueprint, Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

__all__ = ["init_app", "public_lookup", "SECURITY_HEADERS", "CSP"]

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

F = TypeVar("F", bound=Callable[..., object])
_LOOKUP_MARK = "_waybill_public_lookup"


def public_lookup(view: F) -> F:
    """Mark a view as a public lookup: it gets the per-client ``WAYBILL_LOOKUP_LIMIT``."""
    setattr(view, _LOOKUP_MARK, True)
    return view


def _lookup_limit() -> str:
    return current_app.config["WAYBILL_LOOKUP_LIMIT"]


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask, *, csrf_exempt: Iterable[Blueprint] = ()) -> None:
    csrf = CSRFProtect(app)
    for bp in csrf_exempt:
        csrf.exempt(bp)
    limiter = Limiter(get_remote_address, app=app, default_limits=[])
    # One bucket per client shared by every lookup view: the page and the API answer the same question.
    shared = limiter.shared_limit(_lookup_limit, scope="public-lookup")
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, _LOOKUP_MARK, False):
            app.view_functions[endpoint] = shared(view)
    app.extensions["waybill_limiter"] = limiter
    app.after_request(_add_headers)
