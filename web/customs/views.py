"""Customs views. The officer's country is their party's country: there is no way to ask for another's."""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from flask import Response, current_app, jsonify, render_template

from tracker import customs, provenance
from tracker.errors import InvalidInput, NotFound
from tracker.identifiers import parse_key

from .. import accounts, ledger, notes
from .. import now as server_now
from ..api.body import json_body
from ..auth import current_account, requires
from ..consumer import wording
from . import bp, charts

_lock = threading.Lock()


def _now() -> datetime:
    return server_now()


def _country() -> tuple[str, Any]:
    party = ledger().party(current_account().party_id)
    return party.country, party


def _dashboard(country: str) -> customs.Dashboard:
    """The dashboard at the current tree size; recomputed only when the ledger grew (one cache per app)."""
    cache: dict[str, customs.Dashboard] = current_app.extensions.setdefault("waybill_customs_cache", {})
    size = ledger().size()
    with _lock:
        hit = cache.get(country)
    if hit is not None and hit.tree_size == size:
        return hit
    fresh = customs.dashboard(ledger(), country, now=_now())
    with _lock:
        cache[country] = fresh
    return fresh


def _approved() -> str:
    """This user's approved device key ids (the page warns when this browser's key is not among them)."""
    return " ".join(d.keyid for d in accounts.list_devices(ledger(), user_id=current_account().id, status="approved"))


def _names() -> dict[str, str]:
    return {p.id: p.name for p in ledger().parties()}


def _charts(dash: customs.Dashboard, names: dict[str, str]) -> list[dict[str, Any]]:
    s = dash.stats
    flags = charts.stacked_columns([(day[5:], [c, w]) for day, c, w in s.flags_per_day],
                                   [("critical", "c-bad"), ("warning", "c-warn")],
                                   title="Flags per day (critical and warning reasons)")
    flags["id"] = "chart-flags"
    origin = charts.stacked_rows(s.verdicts_by_origin, title="Verdicts by origin country")
    origin["id"] = "chart-origin"
    maker = charts.stacked_rows(s.verdicts_by_manufacturer, names=names, title="Verdicts by manufacturer")
    maker["id"] = "chart-manufacturer"
    median = s.clearance_median_hours
    clearance = charts.columns(list(s.clearance_buckets), unit="releases",
                               title="Clearance times (shipment to release)"
                                     + (f", median {median / 24:.1f} days" if median is not None else ""))
    clearance["id"] = "chart-clearance"
    return [flags, origin, maker, clearance]


@bp.get("/")
@requires("customs")
def dashboard() -> str:
    country, party = _country()
    dash = _dashboard(country)
    names = _names()
    return render_template("customs/dashboard.html", dash=dash, party=party, names=names,
                           charts=_charts(dash, names), user=current_account(), approved=_approved(),
                           decisions_for=customs.decisions_for, sections=SECTIONS)


# One table per status: every consignment shows up exactly once (the verdict column says which are flagged).
SECTIONS = (("awaiting", "Awaiting a decision", "Nothing is waiting for a decision."),
            ("held", "Held for inspection", "Nothing is held."),
            ("released", "Released, not yet delivered", "Nothing released is still on its way."),
            ("seized", "Seized", "Nothing has been seized."),
            ("arrived", "Delivered", "Nothing delivered yet."))


@bp.get("/shipment/<path:ship_event>")
@requires("customs")
def shipment(ship_event: str) -> str:
    """A consignment view: every unit of one shipment into the country, each with its own decision."""
    country, party = _country()
    dash = _dashboard(country)
    units = dash.shipment(ship_event)
    if not units:
        raise NotFound("That shipment is not one of this country's inbound consignments (or is too old to list).",
                       code="shipment_not_found")
    return render_template("customs/shipment.html", dash=dash, units=units, party=party, names=_names(),
                           user=current_account(), approved=_approved(), decisions_for=customs.decisions_for)


@bp.get("/item/<path:key>")
@requires("customs")
def item(key: str) -> str:
    key = str(parse_key(key))
    country, party = _country()
    answer = provenance.lookup(ledger(), key)
    doc = answer.to_json()
    names = _names()
    names.update(wording.party_names(doc["path"]))
    consignments = customs.unit_consignments(ledger(), country, key)
    private = notes.notes_for(ledger(), current_account(),
                              [(s["event_id"], s["actor"]) for s in doc["path"] if s.get("type") == "inspect"])
    return render_template("customs/item.html", key=key, answer=doc, party=party, names=names,
                           consignments=consignments, user=current_account(), approved=_approved(), notes=private,
                           decisions_for=customs.decisions_for)


@bp.post("/inspect")
@requires("customs")
def inspect() -> tuple[Response, int]:
    doc = json_body()
    envelope = doc.get("envelope") if isinstance(doc, dict) else None
    if not isinstance(envelope, dict):
        raise InvalidInput('send {"envelope": <signed inspect statement>, "note"?: ..., "salt"?: "<hex>"}',
                           code="invalid_request", field="envelope")
    (checked,) = accounts.authorize_envelopes(ledger(), current_account(), [envelope],
                                              allowed_types=accounts.CUSTOMS_TYPES)
    has_note = doc.get("note") not in (None, "")
    if has_note:
        notes.check_preimage(checked, note=doc.get("note"), salt=doc.get("salt"))  # before anything is signed in
    result = ledger().append(checked, now=_now())
    if has_note:
        notes.store_note(ledger(), event_id=result.event_id, note=doc.get("note"), salt=doc.get("salt"), now=_now(),
                         source="session")
    return jsonify({"event_id": result.event_id, "leaf_index": result.leaf_index}), 201 if result.created else 200


@bp.get("/export.csv")
@requires("customs")
def export() -> Response:
    country, _ = _country()
    dash = _dashboard(country)
    response = Response(customs.csv_export(dash.assessments), mimetype="text/csv")
    stamp = _now().strftime("%Y%m%d-%H%M")
    response.headers["Content-Disposition"] = f'attachment; filename="customs-{country}-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
