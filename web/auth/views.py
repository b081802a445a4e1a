"""Sign in, sign out, and this browser's device key (``/account``)."""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flask import Response, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from tracker import accounts
from tracker.errors import InvalidInput

from .. import ledger
from .. import now as server_now
from ..api.body import json_body
from . import Account, bp, current_account, home_for, requires, safe_next
from .forms import LoginForm, LogoutForm


def _now() -> datetime:
    return server_now()


@bp.app_context_processor
def _logout_form() -> dict[str, Any]:
    return {"logout_form": LogoutForm}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user.is_authenticated:
            return redirect(safe_next(form.next.data) or home_for(current_user.role))
        return render_template("auth/login.html", form=form)
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 400
    try:
        user = accounts.authenticate(ledger(), username=form.username.data or "", password=form.password.data or "",
                                     now=_now())
    except accounts.AuthenticationError as exc:
        return render_template("auth/login.html", form=form, error=exc.message), 401
    session.clear()  # no session fixation: a fresh session (and CSRF token) for the signed-in user
    login_user(Account(user))
    session.permanent = True
    session["auth_at"] = time.time()
    return redirect(safe_next(form.next.data) or home_for(user.role), 303)


@bp.post("/logout")
def logout() -> Response:
    form = LogoutForm()
    form.validate_on_submit()  # CSRF is checked globally before this view runs
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
