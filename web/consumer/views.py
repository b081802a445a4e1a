"""Consumer views. No login and no private business data: the item page shows only what the public
provenance answer (SPEC §4) holds, plus display names from the public party registry."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from scanners.decode import ImageLimits, decode_image
from tracker import provenance
from tracker.errors import InvalidIdentifier, InvalidInput, TrackerError
from tracker.identifiers import ContainerKey, ItemKey, Key, parse_key, parse_link_path, read_code
from tracker.scans import ScanRecorder

from .. import ledger
from ..errors import wants_json
from ..i18n import LANGUAGES
from ..routing import raw_path, raw_query
from ..security import limited, public_lookup
from . import bp, wording
from .forms import ScanForm


@bp.app_template_global()
def item_url(key: str) -> str:
    """The consumer page of a canonical item key ``01/{gtin}/21/{serial}`` (a '/' in the serial as %2F)."""
    item = _item_only(parse_key(key))
    return url_for("consumer.item", gtin=item.gtin, serial=item.serial)


def _item_only(key: Key) -> ItemKey:
    if not isinstance(key, ItemKey):
        raise InvalidIdentifier("That is the code of a shipping unit (a case or pallet), not of a product. "
                                "Scan or type the code on the product itself.", code="not_an_item", field="code")
    return key


@bp.app_context_processor
def _wording() -> dict[str, object]:
    return {"wording": wording}


def _party_names(answer: provenance.Provenance) -> dict[str, str]:
    """Display names of every party the path mentions (actors and addressees), from the lookup itself."""
    names = wording.party_names([dict(p) for p in answer.path])
    names.update(answer.party_names)
    return names


@bp.get("/")
def home() -> str:
    return render_template("consumer/home.html", form=ScanForm())


@bp.get("/search")  # not limited itself: it only parses and redirects to the (limited) item or container page
def search() -> ResponseReturnValue:
    """Whatever the reader typed -- a Digital Link, the bracketed text under a QR code, or the digits and serial
    as a label prints them -- goes through the core's one parser; its errors say in plain words what is wrong."""
    key = read_code(request.args.get("code", "")).unit
    lang = request.args.get("lang")
    suffix = f"?lang={lang}" if lang in LANGUAGES else ""
    if isinstance(key, ContainerKey):
        return redirect(url_for("consumer.container", sscc=key.sscc) + suffix, 303)
    return redirect(item_url(str(key)) + suffix, 303)


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    return redirect(url_for("static", filename="favicon.svg"), 301)


class Busy(TrackerError):
    code = "busy"
    http_status = 503

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _decode_gate(app: Flask) -> threading.BoundedSemaphore:
    """Photos decoded at once in this process (``WAYBILL_SCAN_CONCURRENCY``): decoding is CPU work, and the
    other requests must keep a core."""
    gate = app.extensions.get("waybill_scan_gate")
    if gate is None:
        gate = app.extensions.setdefault("waybill_scan_gate",
                                         threading.BoundedSemaphore(max(1, int(app.config["WAYBILL_SCAN_CONCURRENCY"]))))
    return gate


def _scan_limits() -> ImageLimits:
    cfg = current_app.config
    return ImageLimits(max_bytes=int(cfg["WAYBILL_SCAN_MAX_BYTES"]), max_pixels=int(cfg["WAYBILL_SCAN_MAX_PIXELS"]),
                       seconds=float(cfg["WAYBILL_SCAN_SECONDS"]))


@bp.post("/scan")
@limited("scan", "lookup")  # its own strict bucket, and it is a lookup too
def scan() -> ResponseReturnValue:
    form = ScanForm()
    if not form.validate_on_submit():
        return render_template("consumer/home.html", form=form), 400
    limits = _scan_limits()
    photo = form.photo.data.stream.read(limits.max_bytes + 1)
    if len(photo) > limits.max_bytes:
        raise InvalidInput(f"the photo is larger than {limits.max_bytes / (1024 * 1024):g} MiB",
                           code="image_too_large")
    gate = _decode_gate(current_app._get_current_object())  # type: ignore[attr-defined]
    if not gate.acquire(timeout=limits.seconds):
        raise Busy("Many photos are being read right now. Please try again in a few seconds.")
    try:
        found = decode_image(photo, limits=limits)
    finally:
        gate.release()
    items = list(dict.fromkeys(d.key for d in found if d.key and d.key.startswith("01/")))
    if len(items) == 1 and len(found) == 1:
        return redirect(item_url(items[0]), 303)
    status = 200 if found else 422
    return render_template("consumer/scan.html", found=found, items=items), status


@bp.get("/01/<gtin>/<path:qualifiers>")
@bp.get("/<path:resolver_prefix>/01/<gtin>/<path:qualifiers>")
def qualified_link(gtin: str, qualifiers: str, resolver_prefix: str | None = None) -> ResponseReturnValue:
    """A Digital Link with key qualifiers besides the serial (``/01/{gtin}/22/{cpv}/10/{lot}/21/{serial}``, in
    that order): the item is the GTIN and serial, so go to its page, query string kept. Anything else that
    reaches this route (no serial, qualifiers out of order, a raw '/' in the serial…) is a 400 naming the rule."""
    link = parse_link_path(raw_path(), raw_query())
    key = _item_only(link.key)
    query = raw_query()
    return redirect(item_url(str(key)) + (f"?{query}" if query else ""), 307)


def _bundle(answer: provenance.Provenance) -> dict[str, Any] | None:
    """The proof bundle the page's script checks on the device (tracker.proofbundle), when there is a path."""
    from tracker.proofbundle import build_bundle

    from .. import policy

    if not answer.path:
        return None
    try:
        return build_bundle(ledger(), parse_key(answer.item), policy(), answer=answer)
    except TrackerError:
        return None


def _answer(key: ItemKey | ContainerKey) -> provenance.Provenance:
    """Judge a unit for a consumer. An item's scan counts first (SPEC §7: consumer scans are evidence of a copied
    label); a failure to count is logged, never shown: the verdict must not depend on the counter being up."""
    now = datetime.now(timezone.utc)  # only dates the scan count: no ledger write, so the wall clock will do
    recorder: ScanRecorder = current_app.extensions["waybill_scans"]
    if isinstance(key, ItemKey):
        try:
            recorder.record(str(key), request.remote_addr or "", now=now)
        except TrackerError as exc:
            logging.getLogger("waybill.web").warning("scan not counted: %s", exc)
    return provenance.lookup(ledger(), key, now=now, scan_policy=recorder.policy,
                             unsaved_scans=recorder.unsaved(str(key)))


SUMMARY_OVER = 40  # a journey longer than this many steps is shown as a summary, the rest in pages
PAGE_STEPS = 100


def _steps(doc: dict, answer: provenance.Provenance) -> tuple[list, dict]:
    """(position, row) of the steps the page shows, and how the rest is reached. A long journey shows where it
    began, where it is now and every step a reason names; ``?limit=`` (and ``after=``) page through it all.
    The verdict above was reached on every step either way."""
    path = doc["path"]
    raw_limit, after = request.args.get("limit"), request.args.get("after")
    base = request.base_url
    if raw_limit is None and after is None:
        if len(path) <= SUMMARY_OVER:
            return list(enumerate(path)), {"total": len(path), "summary": False}
        flagged = {r.event_id for r in answer.reasons if r.event_id}
        return provenance.summary_of(path, flagged), {
            "total": len(path), "summary": True, "all_url": f"{base}?limit={PAGE_STEPS}",
            "flagged": sum(1 for row in path if row["event_id"] in flagged)}
    if raw_limit is not None and not raw_limit.isdigit():
        raise InvalidInput(f"limit must be a whole number from 1 to {provenance.MAX_PAGE}", code="invalid_limit",
                           field="limit")
    limit = PAGE_STEPS if raw_limit is None else int(raw_limit)
    page = provenance.page_of(path, limit=limit, after=after)
    return [(page.start + i, row) for i, row in enumerate(page.rows)], {
        "total": len(path), "summary": False, "paged": True, "start": page.start,
        "next_url": f"{base}?limit={limit}&after={page.next}" if page.next else None, "summary_url": base}


def _page(answer: provenance.Provenance) -> Response:
    doc = answer.to_json()
    if wants_json():
        raw_limit, after = request.args.get("limit"), request.args.get("after")
        if raw_limit is not None or after is not None:
            if raw_limit is not None and not raw_limit.isdigit():
                raise InvalidInput(f"limit must be a whole number from 1 to {provenance.MAX_PAGE}",
                                   code="invalid_limit", field="limit")
            limit = provenance.MAX_PAGE if raw_limit is None else int(raw_limit)
            page = provenance.page_of(doc["path"], limit=limit, after=after)
            doc["path"], doc["page"] = list(page.rows), page.to_json(limit)
        response = jsonify(doc)
    else:
        steps, journey = _steps(doc, answer)
        response = Response(render_template("consumer/item.html", answer=doc, tree_size=answer.tree_size,
                                            names=_party_names(answer), scans=answer.scans, page_steps=steps,
                                            journey=journey, bundle=_bundle(answer),
                                            retention_days=current_app.extensions["waybill_scans"].policy.retention_days),
                            mimetype="text/html")
    response.vary.add("Accept")
    return response


@bp.get("/01/<gtin>/21/<serial_path:serial>")
@bp.get("/<path:resolver_prefix>/01/<gtin>/21/<serial_path:serial>")
@public_lookup
def item(gtin: str, serial: str, resolver_prefix: str | None = None) -> ResponseReturnValue:
    """The page behind the QR code. The item is read from the raw request path by the core's Digital Link
    parser, not from the decoded route arguments: ``%2F`` inside a serial is part of it, a raw '/' is not."""
    link = parse_link_path(raw_path(), raw_query())
    key = _item_only(link.key)
    if link.qualifiers:
        query = raw_query()
        return redirect(item_url(str(key)) + (f"?{query}" if query else ""), 307)
    return _page(_answer(key))


@bp.get("/00/<sscc>")
@bp.get("/<path:resolver_prefix>/00/<sscc>")
@public_lookup
def container(sscc: str, resolver_prefix: str | None = None) -> ResponseReturnValue:
    """A case or pallet (SSCC): judged like an item, from the aggregate that created it."""
    key = parse_link_path(raw_path(), raw_query()).key
    if not isinstance(key, ContainerKey):
        raise InvalidIdentifier("This link does not name a case or pallet (…/00/{sscc}).", field="code")
    return _page(_answer(key))
