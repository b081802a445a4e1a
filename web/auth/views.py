"""Sign in, sign out, and this browser's device key (``/account``)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from tracker.errors import InvalidInput

from .. import accounts, ledger
from .. import now as server_now
from ..api.body import json_body
from ..security import RateLimited, hit_keyed, keyed_exhausted, limited
from . import Account, bp, current_account, home_for, requires, safe_next
from .forms import LoginForm, LogoutForm


def _now() -> datetime:
    return server_now()


@bp.app_context_processor
def _logout_form() -> dict[str, Any]:
    return {"logout_form": LogoutForm}


def _login_page(form: LoginForm, *, error: str | None = None, status: int = 200) -> Response:
    response = Response(render_template("auth/login.html", form=form, error=error), status=status,
                        mimetype="text/html")
    return response


@bp.route("/login", methods=["GET", "POST"])
@limited("login")
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user.is_authenticated:
            return redirect(safe_next(form.next.data) or home_for(current_user.role))
        return _login_page(form)
    if not form.validate_on_submit():
        return _login_page(form, status=400)
    name = (form.username.data or "").strip().lower()[:63]
    try:
        # Failed sign-ins are also counted per name in the rate limiter, for names that exist and names that do
        # not alike: a name past its budget gets the lockout answer either way, so it tells nothing.
        waiting = keyed_exhausted("WAYBILL_LOGIN_NAME_LIMIT", "login-name", name)
        if waiting is not None:
            accounts.passwords.burn(form.password.data or "")
            raise accounts.AccountLocked(waiting)
        try:
            user = accounts.authenticate(ledger(), username=name, password=form.password.data or "", now=_now())
        except accounts.AuthenticationError:
            hit_keyed("WAYBILL_LOGIN_NAME_LIMIT", "login-name", name, what="this user name")
            waiting = keyed_exhausted("WAYBILL_LOGIN_NAME_LIMIT", "login-name", name)
            if waiting is not None:  # that was the name's last try, as the database lock counts for real names
                raise accounts.AccountLocked(waiting) from None
            raise
    except accounts.AccountLocked as exc:
        response = _login_page(form, error=exc.message, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except RateLimited as exc:
        # This failure spent the name's last try: from now on it is locked out.
        response = _login_page(form, error=accounts.AccountLocked(exc.retry_after).message, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except accounts.AuthenticationError as exc:
        return _login_page(form, error=exc.message, status=401)
    session.clear()  # no session fixation: a fresh session (and CSRF token) for the signed-in user
    login_user(Account(user, accounts.start_session(ledger(), user, now=_now())))
    session.permanent = True
    return redirect(safe_next(form.next.data) or home_for(user.role), 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    form = LogoutForm()
    form.validate_on_submit()  # CSRF is checked globally before this view runs
    if current_user.is_authenticated:
        accounts.end_session(ledger(), current_user.get_id())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"), 303)


@bp.get("/account")
@requires()
def account() -> str:
    user = current_account()
    devices = accounts.list_devices(ledger(), user_id=user.id)
    party = ledger().party(user.party_id)
    return render_template("auth/account.html", user=user, party=party, devices=devices)


@bp.get("/account/devices")
@requires()
def devices() -> Response:
    user = current_account()
    return jsonify({"devices": [d.to_json() for d in accounts.list_devices(ledger(), user_id=user.id)]})


@bp.post("/account/devices")
@requires()
def enroll() -> tuple[Response, int]:
    doc = json_body(max_bytes=4096)
    if not isinstance(doc, dict):
        raise InvalidInput('send {"public_key": "<base64>", "label": "<device name>"}', code="invalid_request")
    device = accounts.request_device(ledger(), current_account(), public_key=doc.get("public_key") or "",
                                     label=doc.get("label") or "", now=_now())
    return jsonify(device.to_json()), 201
