"""Consumer views. No login and no private business data: the item page shows only what the public
provenance answer (SPEC §4) holds, plus display names from the public party registry."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, redirect, render_template, request, url_for

from scanners.decode import decode_image
from tracker import provenance
from tracker.errors import InvalidIdentifier
from tracker.identifiers import ItemKey, parse_code

from .. import ledger
from ..errors import wants_json
from ..security import public_lookup
from . import bp, wording
from .forms import ScanForm


@bp.app_template_global()
def item_url(key: str) -> str:
    """The consumer page of a canonical item key ``01/{gtin}/21/{serial}``."""
    _, gtin, _, serial = key.split("/", 3)
    return url_for("consumer.item", gtin=gtin, serial=serial)


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


@bp.get("/search")  # not limited itself: it only parses and redirects to the (limited) item page
def search() -> Response:
    key = parse_code(request.args.get("code", ""))
    if not isinstance(key, ItemKey):
        raise InvalidIdentifier("That is the code of a shipping unit (a case or pallet), not of a product. "
                                "Scan or type the code on the product itself.", code="not_an_item", field="code")
    return redirect(url_for("consumer.item", gtin=key.gtin, serial=key.serial), 303)


@bp.post("/scan")
@public_lookup
def scan() -> Response | tuple[str, int] | str:
    form = ScanForm()
    if not form.validate_on_submit():
        return render_template("consumer/home.html", form=form), 400
    found = decode_image(form.photo.data.read())
    items = list(dict.fromkeys(d.key for d in found if d.key and d.key.startswith("01/")))
    if len(items) == 1 and len(found) == 1:
        return redirect(item_url(items[0]), 303)
    status = 200 if found else 422
    return render_template("consumer/scan.html", found=found, items=items), status


@bp.get("/01/<gtin>/<path:qualifiers>")
@bp.get("/<path:resolver_prefix>/01/<gtin>/<path:qualifiers>")
def qualified_link(gtin: str, qualifiers: str, resolver_prefix: str | None = None) -> Response:
    """A Digital Link with more key qualifiers than the serial (``/01/{gtin}/22/{cpv}/10/{lot}/21/{serial}``,
    in that order, serial last): the item is the GTIN and serial, so go to its page."""
    parts = qualifiers.split("/")
    i = 0
    while i + 1 < len(parts) and parts[i] in ("22", "10"):
        i += 2
    if i + 1 >= len(parts) or parts[i] != "21":
        raise InvalidIdentifier("This link names a product but no serial number (…/21/{serial}), so there is "
                                "no single item to check.", code="invalid_identifier", field="serial")
    key = ItemKey(gtin=gtin, serial="/".join(parts[i + 1:]))
    query = request.query_string.decode("latin-1")
    target = url_for("consumer.item", gtin=key.gtin, serial=key.serial) + (f"?{query}" if query else "")
    return redirect(target, 307)


def _bundle(answer: provenance.Provenance) -> dict[str, Any] | None:
    """The proof bundle the page's script checks on the device (tracker.proofbundle), when there is a path."""
    from tracker.errors import TrackerError
    from tracker.proofbundle import build_bundle

    from .. import policy

    if not answer.path:
        return None
    try:
        return build_bundle(ledger(), ItemKey(gtin=answer.gtin or "", serial=answer.serial or ""), policy(),
                            answer=answer)
    except TrackerError:
        return None


@bp.get("/01/<gtin>/21/<serial_path:serial>")
@bp.get("/<path:resolver_prefix>/01/<gtin>/21/<serial_path:serial>")
@public_lookup
def item(gtin: str, serial: str, resolver_prefix: str | None = None) -> Response | str:
    answer = provenance.lookup(ledger(), ItemKey(gtin=gtin, serial=serial))
    if wants_json():
        response = jsonify(answer.to_json())
    else:
        doc = answer.to_json()
        response = Response(render_template("consumer/item.html", answer=doc, tree_size=answer.tree_size,
                                            names=_party_names(answer), bundle=_bundle(answer)), mimetype="text/html")
    response.vary.add("Accept")
    return response
