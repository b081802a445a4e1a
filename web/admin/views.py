"""Admin views. Every registry change is signed in the admin's browser; the server only proposes the
statement bytes and checks what comes back (tracker.accounts.record_approval / record_revocation)."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import os
import tempfile

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

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

    mine_pending = [d for d in devices if d.user_id == me.id and d.status == "pending"]
    return render_template("admin/index.html", parties=parties, users=users, devices=devices, by_user=by_user,
                           device_by_key=device_by_key, form=form or _user_form(), action=ActionForm(),
                           my_keys=my_keys, user=me, now=now, mine_pending=mine_pending,
                           approve_command=approve_command, witnesses=witness_statuses(led)), status


def fingerprint(keyid: str) -> str:
    """The key id as four groups of four (``D34C B767 D00A 9C22``): what the device page shows, to compare aloud."""
    text = keyid.upper()
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def approve_command(keyid: str) -> str:
    """The command that approves ``keyid`` with the admin key file, exactly as it runs on this server."""
    config = current_app.config.get("WAYBILL_CONFIG")
    if config is None:
        return f'tracker user approve {keyid} --admin-key "$WAYBILL_HOME/keys/admin.key"'
    home = str(config.home)
    return f"WAYBILL_HOME={home} tracker user approve {keyid} --admin-key {config.admin_key_path}"


@bp.get("/devices/<int:device_id>")
@requires("admin")
def device_page(device_id: int) -> str:
    """The approval page: who asks, for which party, and the key's fingerprint the device itself shows."""
    device = accounts.get_device(ledger(), device_id)
    users = {u.id: u for u in accounts.list_users(ledger())}
    try:
        party = ledger().party(device.party_id)
    except TrackerError:
        party = None
    me = current_account()
    my_keys = [d.keyid for d in accounts.list_devices(ledger(), user_id=me.id, status="approved")]
    return render_template("admin/device.html", device=device, requester=users.get(device.user_id), party=party,
                           fingerprint=fingerprint(device.keyid), my_keys=my_keys, user=me, action=ActionForm(),
                           own_first=device.user_id == me.id and not my_keys and device.status == "pending",
                           approve_command=approve_command(device.keyid))


@bp.post("/devices/<int:device_id>/bootstrap")
@requires("admin")
def bootstrap(device_id: int) -> Any:
    """Approve this admin's own first browser by proving possession of the registry admin key: the uploaded key
    file signs the approval here and is not kept (the same as ``tracker user approve``, from the browser)."""
    ActionForm().validate_on_submit()  # CSRF already checked globally
    me = current_account()
    device = accounts.get_device(ledger(), device_id)
    if device.user_id != me.id:
        raise accounts.Forbidden("the admin key file approves only your own browser here; approve others' devices "
                                 "with your approved browser key", code="not_your_device")
    upload = request.files.get("admin_key")
    data = upload.stream.read(16_384) if upload is not None else b""
    if not data:
        raise InvalidInput("choose the admin key file (admin.key) first", code="admin_key_missing",
                           field="admin_key")
    from tracker.keys import read_key_file

    fd, path = tempfile.mkstemp(prefix="waybill-admin-key-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            key = read_key_file(path, passphrase=request.form.get("passphrase") or None)
        except TrackerError as exc:
            raise InvalidInput(f"that file is not a readable admin key: {exc.message}", code="admin_key_unreadable",
                               field="admin_key") from None
        except Exception:
            raise InvalidInput("that file is not a readable admin key (is it admin.key, and is its passphrase "
                               "right?)", code="admin_key_unreadable", field="admin_key") from None
    finally:
        os.unlink(path)
    result = accounts.approve_device_with_key(ledger(), device.id, admin_key=key, now=_now())
    flash(f"This browser's key {fingerprint(device.keyid)} is approved for {device.party_id} "
          f"(recorded in the ledger at position {result.leaf_index}). You can now approve other devices here.")
    return redirect(url_for("admin.index"), 303)


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
def set_user_state(user_id: int, action: str) -> ResponseReturnValue:
    ActionForm().validate_on_submit()  # CSRF already checked globally
    if user_id == current_account().id and action == "disable":
        raise InvalidInput("you cannot disable your own account", code="cannot_disable_self")
    user = accounts.set_disabled(ledger(), user_id, action == "disable")
    flash(f"User {user.username} {'disabled' if user.disabled else 'enabled'}.")
    return redirect(url_for("admin.index"), 303)


@bp.post("/devices/<int:device_id>/reject")
@requires("admin")
def reject_device(device_id: int) -> ResponseReturnValue:
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
