"""Admin views. Every registry change is signed in the admin's browser; the server only proposes the
statement bytes and checks what comes back (tracker.accounts.record_approval / record_revocation)."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from flask import Response, flash, jsonify, redirect, render_template, url_for

from tracker.errors import InvalidInput, TrackerError
from tracker.statements import statement_bytes

from .. import accounts, ledger
from .. import now as server_now
from ..api.body import json_body
from ..auth import current_account, requires
from . import bp
from .forms import ActionForm, CreateUserForm


def _now() -> datetime:
    return server_now()


def _user_form() -> CreateUserForm:
    form = CreateUserForm()
    form.party.choices = sorted(p.id for p in ledger().parties())
    return form


def _page(form: CreateUserForm | None = None, status: int = 200) -> tuple[str, int]:
    led = ledger()
    parties = sorted(led.parties(), key=lambda p: p.id)
    users = accounts.list_users(led)
    devices = accounts.list_devices(led)
    by_user = {u.id: u for u in users}
    device_by_key = {d.keyid: d for d in devices}
    me = current_account()
    my_keys = [d.keyid for d in devices if d.user_id == me.id and d.status == "approved"]
    now = _now()
    from tracker.cosigning import witness_statuses

    return render_template("admin/index.html", parties=parties, users=users, devices=devices, by_user=by_user,
                           device_by_key=device_by_key, form=form or _user_form(), action=ActionForm(),
                           my_keys=my_keys, user=me, now=now, witnesses=witness_statuses(led)), status


@bp.get("/")
@requires("admin")
def index() -> tuple[str, int]:
    return _page()


@bp.post("/users")
@requires("admin")
def create_user() -> Any:
    form = _user_form()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        user = accounts.create_user(ledger(), username=form.username.data or "", password=form.password.data or "",
                                    party_id=form.party.data or "", role=form.role.data or "", now=_now())
    except TrackerError as exc:
        form.username.errors = [*form.username.errors, exc.message]
        return _page(form, 400 if exc.http_status < 500 else exc.http_status)
    flash(f"User {user.username} created ({user.role} of {user.party_id}).")
    return redirect(url_for("admin.index"), 303)


@bp.post("/users/<int:user_id>/<any(disable, enable):action>")
@requires("admin")
def set_user_state(user_id: int, action: str) -> Response:
    ActionForm().validate_on_submit()  # CSRF already checked globally
    if user_id == current_account().id and action == "disable":
        raise InvalidInput("you cannot disable your own account", code="cannot_disable_self")
    user = accounts.set_disabled(ledger(), user_id, action == "disable")
    flash(f"User {user.username} {'disabled' if user.disabled else 'enabled'}.")
    return redirect(url_for("admin.index"), 303)


@bp.post("/devices/<int:device_id>/reject")
@requires("admin")
def reject_device(device_id: int) -> Response:
    device = accounts.reject_device(ledger(), device_id, admin=current_account(), now=_now())
    flash(f"Device {device.keyid} rejected.")
    return redirect(url_for("admin.index"), 303)


def _proposal(doc: dict[str, Any]) -> Response:
    payload = statement_bytes(doc)
    return jsonify({"statement": doc, "payload": base64.b64encode(payload).decode()})


@bp.get("/devices/<int:device_id>/statement")
@requires("admin")
def approval_statement(device_id: int) -> Response:
    return _proposal(accounts.approval_statement(ledger(), device_id, now=_now()))


@bp.post("/devices/<int:device_id>/approve")
@requires("admin")
def approve_device(device_id: int) -> tuple[Response, int]:
    envelope = _envelope()
    result = accounts.record_approval(ledger(), device_id, envelope, admin=current_account(), now=_now())
    return jsonify({"event_id": result.event_id, "leaf_index": result.leaf_index}), 201


@bp.get("/parties/<party_id>/keys/<keyid>/statement")
@requires("admin")
def revocation_statement(party_id: str, keyid: str) -> Response:
    return _proposal(accounts.revocation_statement(ledger(), party_id=party_id, keyid=keyid, now=_now()))


@bp.post("/parties/<party_id>/keys/<keyid>/revoke")
@requires("admin")
def revoke_key(party_id: str, keyid: str) -> tuple[Response, int]:
    envelope = _envelope()
    result = accounts.record_revocation(ledger(), envelope, party_id=party_id, keyid=keyid, admin=current_account(),
                                        now=_now())
    return jsonify({"event_id": result.event_id, "leaf_index": result.leaf_index}), 201


def _envelope() -> dict[str, Any]:
    doc = json_body()
    envelope = doc.get("envelope") if isinstance(doc, dict) else None
    if not isinstance(envelope, dict):
        raise InvalidInput('send {"envelope": <signed party statement>}', code="invalid_request", field="envelope")
    return envelope
