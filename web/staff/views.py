"""Recording handoffs. The page scans codes, asks ``/staff/resolve`` what each one is (holder, head event,
pending shipment), builds and signs the statements in the browser with the device key, and posts the
envelopes to ``/staff/events``: the JSON API's batch admission behind a session check that the statements
are the user's own party's, signed by the user's own approved device."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, jsonify, render_template, request

from tracker import handoffs
from tracker.errors import InvalidInput, TrackerError

from .. import accounts, ledger
from .. import now as server_now
from ..api.body import json_body
from ..auth import current_account, requires
from . import bp

MAX_ENVELOPES = 100


def _now() -> datetime:
    return server_now()


def party_choices(exclude: str) -> list[dict[str, str]]:
    """Parties a shipment can go to: everyone registered but the sender and the registry itself."""
    return [{"id": p.id, "name": p.name, "country": p.country, "roles": ", ".join(p.roles)}
            for p in sorted(ledger().parties(), key=lambda p: p.name.lower())
            if p.id != exclude and "admin" not in p.roles]


@bp.get("/")
@requires("staff")
def record() -> str:
    user = current_account()
    party = ledger().party(user.party_id)
    approved = [d.keyid for d in accounts.list_devices(ledger(), user_id=user.id, status="approved")]
    return render_template("staff/record.html", user=user, party=party, parties=party_choices(user.party_id),
                           approved=approved, work=handoffs.overview(ledger(), user.party_id))


@bp.get("/resolve")
@requires("staff", "customs")
def resolve() -> Response:
    code = request.args.get("code", "")
    return jsonify(handoffs.scan_status(ledger(), code, party=current_account().party_id))


@bp.post("/events")
@requires("staff")
def submit() -> Response:
    doc = json_body()
    envelopes = doc.get("envelopes") if isinstance(doc, dict) else None
    if not isinstance(envelopes, list) or not 0 < len(envelopes) <= MAX_ENVELOPES:
        raise InvalidInput(f'send {{"envelopes": [...]}} with 1 to {MAX_ENVELOPES} signed envelopes',
                           code="invalid_batch", field="envelopes")
    checked = accounts.authorize_envelopes(ledger(), current_account(), envelopes, allowed_types=accounts.STAFF_TYPES)
    results = ledger().append_batch(checked, now=_now())
    out: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, TrackerError):
            out.append({"error": {"code": r.code, "message": r.message, "field": r.field}})
        else:
            out.append({"event_id": r.event_id, "leaf_index": r.leaf_index, "created": r.created})
    return jsonify({"results": out})
