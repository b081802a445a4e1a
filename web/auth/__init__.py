"""Staff accounts in the browser: sign-in (flask-login over tracker.accounts), session expiry, role guards,
and this browser's device key enrolment (``/account``).

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
import time
from datetime import timedelta
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Blueprint, Flask, abort, redirect, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, logout_user

from tracker import accounts

from .. import ledger
from ..errors import error_response, wants_json

__all__ = ["bp", "register", "Account", "requires", "current_account"]

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])
ROLE_HOME = {"staff": "staff.record", "customs": "customs.dashboard", "admin": "admin.index"}


class Account(UserMixin):
    """The signed-in user as flask-login sees it. The session stores ``"{id}:{session_token}"``: changing the
    password changes the token, which ends every other session of that user."""

    def __init__(self, user: accounts.User) -> None:
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_token}"

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
    return current_user.user  # type: ignore[union-attr]


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


def _load_user(user_id: str) -> Account | None:
    ident, _, token = (user_id or "").partition(":")
    if not ident.isdigit():
        return None
    user = accounts.get_user(ledger(), int(ident))
    if user is None or user.disabled or user.session_token != token:
        return None
    return Account(user)


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: ``/x`` yes; ``//evil``, ``/\\evil``, ``https://evil`` no."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _unauthorized() -> Any:
    if wants_json() or request.method != "GET":
        return error_response(401, "login_required", "Sign in first: this needs a staff account.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _expire_old_sessions() -> None:
    """End sessions past the absolute lifetime (the idle limit is the signed cookie's own max age)."""
    from flask import current_app

    started = session.get("auth_at")
    if started is None or not current_user.is_authenticated:
        return
    limit = current_app.config["WAYBILL_SESSION_MAX_HOURS"] * 3600
    if time.time() - float(started) > limit:
        logout_user()
        session.clear()


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
    app.before_request(_expire_old_sessions)
    app.register_blueprint(bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(customs_bp)
    app.register_blueprint(admin_bp)

    @app.context_processor
    def _staff_nav() -> dict[str, Any]:
        return {"home_for": home_for}


from . import views  # noqa: E402,F401  (routes register on import)
