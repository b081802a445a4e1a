"""Staff accounts in the browser: sign-in (flask-login over web.accounts), server-side sessions, role guards,
and this browser's device key enrolment (``/account``).

The signed session cookie carries only a random session id; the session is live while its row in
``web_sessions`` exists (web.accounts), which flask-login's user loader checks on every request. Signing out,
a password change, and disabling or re-enabling the user delete the rows, so a saved cookie stops working at
once.

``register(app)`` wires the whole staff side into the app factory: the login manager and the ``auth``,
``staff``, ``customs`` and ``admin`` blueprints.

Settings (environment, or ``test_config``):

==================================  =========================================================================
``WAYBILL_SESSION_IDLE_MINUTES``    a signed-in session ends after this long without a request (default 60)
``WAYBILL_SESSION_MAX_HOURS``       and in any case this long after sign-in (default 12)
==================================  =========================================================================
"""
from __future__ import annotations

import os
import unicodedata
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Blueprint, Flask, abort, current_app, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user

from .. import accounts, ledger
from ..errors import error_response, wants_json

__all__ = ["bp", "register", "Account", "requires", "current_account", "safe_next"]

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])
ROLE_HOME = {"staff": "staff.record", "customs": "customs.dashboard", "admin": "admin.index"}


class Account(UserMixin):
    """The signed-in user as flask-login sees it; ``get_id`` is the server-side session id the cookie holds."""

    def __init__(self, user: accounts.User, session_id: str) -> None:
        self.user = user
        self.session_id = session_id

    def get_id(self) -> str:
        return self.session_id

    @property
    def is_active(self) -> bool:
        return not self.user.disabled

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def party_id(self) -> str:
        return self.user.party_id

    @property
    def role(self) -> str:
        return self.user.role


def current_account() -> accounts.User:
    """The signed-in core user (only inside a view guarded by ``requires``)."""
    return current_user.user


def requires(*roles: str) -> Callable[[F], F]:
    """Guard a view: anonymous → login (HTML) or 401 (JSON); signed in with another role → 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return _login_manager().unauthorized()
            if roles and current_user.role not in roles:
                abort(403, f"This page is for {' or '.join(roles)} users; you are signed in as "
                           f"{current_user.username} ({current_user.role} of {current_user.party_id}).")
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def _login_manager() -> LoginManager:
    from flask import current_app

    return current_app.login_manager  # type: ignore[attr-defined]


def _load_user(session_id: str) -> Account | None:
    max_age = timedelta(hours=float(current_app.config["WAYBILL_SESSION_MAX_HOURS"]))
    user = accounts.session_user(ledger(), session_id or "", now=datetime.now(timezone.utc), max_age=max_age)
    return Account(user, session_id) if user is not None else None


_MAX_NEXT = 2048


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None. Refused, as sent and after percent-decoding (repeated,
    since browsers and proxies decode again): a scheme or host, a leading ``//``, any backslash, and any control,
    whitespace or other non-printing character (a tab or newline that browsers strip or a header cannot hold)."""
    if not target or len(target) > _MAX_NEXT:
        return None
    seen, text = set(), target
    while text not in seen:
        seen.add(text)
        if not text.startswith("/") or text.startswith("//") or "\\" in text:
            return None
        if any(unicodedata.category(ch)[0] in "CZ" for ch in text):
            return None
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return None
        text = unquote(text)
    return target


def _unauthorized() -> Any:
    if wants_json() or request.method != "GET":
        return error_response(401, "login_required", "Sign in first: this needs a staff account.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def home_for(role: str) -> str:
    return url_for(ROLE_HOME.get(role, "auth.account"))


def register(app: Flask) -> None:
    """Add the staff side to ``app``: login manager, session lifetimes, and the four blueprints."""
    from ..admin import bp as admin_bp
    from ..customs import bp as customs_bp
    from ..staff import bp as staff_bp

    idle = int(app.config.get("WAYBILL_SESSION_IDLE_MINUTES") or os.environ.get("WAYBILL_SESSION_IDLE_MINUTES") or 60)
    app.config.setdefault("WAYBILL_SESSION_MAX_HOURS",
                          float(os.environ.get("WAYBILL_SESSION_MAX_HOURS") or 12))
    app.config["WAYBILL_SESSION_IDLE_MINUTES"] = idle
    # Signed-in sessions are permanent cookies whose signature stops verifying after `idle` minutes without a
    # request (Flask re-signs the cookie on every request).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=idle)
    manager = LoginManager()
    manager.init_app(app)
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)
    app.register_blueprint(bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(customs_bp)
    app.register_blueprint(admin_bp)

    @app.context_processor
    def _staff_nav() -> dict[str, Any]:
        return {"home_for": home_for}


from . import views  # noqa: E402,F401  (routes register on import)
