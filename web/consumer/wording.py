"""Plain-language wording for the consumer pages, in the reader's language: verdicts, reasons, roles, timeline
sentences and places.

The core's reason messages are English sentences with facts in them; they stay the API's. The page instead
renders each reason from its stable code plus the facts it already has -- the step the reason points at (who,
when, where, to whom), the party names and the scan counts -- so every sentence can be translated whole.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from ..i18n import country_name, local_date, local_time

__all__ = ["VERDICTS", "REASON_TITLES", "ROLE_NAMES", "UNKNOWN_HEADLINE", "event_sentence", "when", "place",
           "party_names", "reason_text", "verdict", "reason_title", "role_name", "scan_line", "journey"]

# verdict -> (headline, one-line explanation)
VERDICTS: Mapping[str, tuple[Any, Any]] = {
    "genuine": (_l("Genuine"), _l("Every step of this item's journey was signed by the company that handled it, "
                                  "and the record checks out.")),
    "suspicious": (_l("Suspicious"), _l("Something in this item's history needs a closer look. It may be fine, "
                                        "but ask the seller before you rely on it.")),
    "likely_counterfeit": (_l("Likely counterfeit"), _l("This item's record does not check out. Do not trust it: "
                                                        "ask the seller, or report it to the brand.")),
}
UNKNOWN_HEADLINE = _l("We have no record of this item — likely counterfeit")

REASON_TITLES: Mapping[str, Any] = {
    "unknown_item": _l("We have no record of this item"),
    "not_commissioned_by_manufacturer": _l("Registered by a company that does not own this product code"),
    "bad_signature": _l("A record in its history carries a forged signature"),
    "unauthorized_signer": _l("A record was made by someone not allowed to make it"),
    "revoked_key": _l("A record was signed with a withdrawn (possibly stolen) key"),
    "custody_gap": _l("A step in its journey is missing"),
    "unreceived_shipment": _l("A delivery was never confirmed"),
    "missing_customs_clearance": _l("It crossed a border without customs clearance"),
    "held_by_customs": _l("Held by customs"),
    "seized": _l("Seized by customs"),
    "fork": _l("Its history splits in two"),
    "cloned_serial": _l("This serial number has been copied"),
    "activity_after_sale": _l("It moved again after it was sold"),
    "time_inconsistency": _l("The dates in its history do not add up"),
    "ledger_integrity_failure": _l("The records could not be verified"),
    "in_transit": _l("On its way"),
    "unverified_brand": _l("Nobody registered owns this brand's product code"),
    "licensed_manufacturer": _l("Made under the brand owner's licence"),
    "location_mismatch": _l("A step was declared somewhere its company does not operate"),
    "sold": _l("Already sold"),
    "label_copied": _l("This code is being scanned in too many places"),
    "path_truncated": _l("Its history is too long to check in full"),
}

ROLE_NAMES: Mapping[str, Any] = {
    "manufacturer": _l("Manufacturer"), "exporter": _l("Exporter"), "customs": _l("Customs"),
    "warehouse": _l("Warehouse"), "courier": _l("Courier"), "retailer": _l("Shop"), "admin": _l("Registry"),
}


def verdict(code: str) -> tuple[str, str]:
    headline, text = VERDICTS[code]
    return str(headline), str(text)


def reason_title(code: str) -> str:
    title = REASON_TITLES.get(code)
    return str(title) if title is not None else code


def role_name(role: str | None) -> str:
    if not role:
        return ""
    name = ROLE_NAMES.get(role)
    return str(name) if name is not None else role


def party_names(path: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {row["actor"]: row["actor_name"] for row in path if row.get("actor") and row.get("actor_name")}


def _name(pid: str | None, names: Mapping[str, str]) -> str:
    return names.get(pid, pid) if pid else ""


def event_sentence(row: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """``"Sent to Hamburg Logistics"`` — what happened, in words (the actor is shown beside it)."""
    kind = row.get("type")
    other = row.get("to") or row.get("from")
    other_name = _name(other, names)
    if kind == "commission":
        return _("Made and registered")
    if kind == "aggregate":
        return _("Packed into a shipping unit")
    if kind == "disaggregate":
        return _("Unpacked from its shipping unit")
    if kind == "ship":
        return _("Sent to %(name)s", name=other_name) if other_name else _("Sent on")
    if kind == "receive":
        return _("Received from %(name)s", name=other_name) if other_name else _("Received")
    if kind == "inspect":
        decision = row.get("decision")
        if decision == "released":
            return _("Customs cleared it")
        if decision == "held":
            return _("Customs held it for inspection")
        if decision == "seized":
            return _("Customs seized it")
        return _("Customs inspected it")
    if kind == "sell":
        return _("Sold to a customer")
    return _("Recorded")


def when(value: str | None) -> str:
    """RFC 3339 → the date and time in the reader's locale (UTC); unreadable values are shown as given."""
    return local_time(value)


def place(row: Mapping[str, Any]) -> str:
    """Where a step happened, in words: the site's name when it is not just the company's own name again, then
    the country's name (``Rotterdam depot, Netherlands``; ``China``)."""
    location = row.get("location") or {}
    site = str(location.get("name") or "").strip()
    country = country_name(location.get("country"))
    if site and site.casefold() != str(row.get("actor_name") or "").strip().casefold():
        return f"{site}, {country}" if country else site
    return country


def scan_line(scans: Any, retention_days: int) -> str:
    count = int(scans.scans)
    networks = int(scans.networks)
    line = ngettext("This code has been checked %(num)d time in the last %(days)d days.",
                    "This code has been checked %(num)d times in the last %(days)d days.", count, days=retention_days)
    if networks > 1:
        line += " " + _("The checks came from %(networks)d different networks.", networks=networks)
    return line


def reason_text(reason: Mapping[str, Any], step: Mapping[str, Any] | None, names: Mapping[str, str], *,
                scans: Any = None) -> str:
    """One reason as a sentence in the reader's language, from its code and the facts of the step it names."""
    code = reason.get("code")
    s = step or {}
    actor = s.get("actor_name") or _name(s.get("actor"), names) or _("an unknown company")
    to = _name(s.get("to"), names)
    country = country_name((s.get("location") or {}).get("country"))
    if code == "unknown_item":
        return _("No manufacturer ever registered this serial number.")
    if code == "not_commissioned_by_manufacturer":
        return _("%(maker)s registered this serial, but the product code belongs to another company, which has not "
                 "licensed %(maker)s to make it.", maker=actor)
    if code == "bad_signature":
        return _("The signature on a record by %(actor)s does not verify: the record was forged or altered.",
                 actor=actor)
    if code == "unauthorized_signer":
        return _("%(actor)s made a record it was not allowed to make.", actor=actor)
    if code == "revoked_key":
        return _("%(actor)s signed a record with a key that has been withdrawn.", actor=actor)
    if code == "custody_gap":
        return _("%(actor)s handled it without a record of receiving it: a step is missing.", actor=actor)
    if code == "unreceived_shipment":
        return _("It was sent to %(name)s, who never confirmed receipt; then it turned up somewhere else.",
                 name=to or actor)
    if code == "missing_customs_clearance":
        return _("It was brought into %(country)s without being cleared by customs there.", country=country)
    if code == "held_by_customs":
        return _("%(actor)s is holding it for inspection.", actor=actor)
    if code == "seized":
        return _("%(actor)s seized it.", actor=actor)
    if code == "fork":
        return _("Two records continue from the same step: the same item cannot be in two places.")
    if code == "cloned_serial":
        return _("The same serial number is in two places at once: copies exist.")
    if code == "activity_after_sale":
        return _("%(actor)s recorded it again after it was sold: this code is being reused.", actor=actor)
    if code == "time_inconsistency":
        return _("This step is dated before the step it follows.")
    if code == "ledger_integrity_failure":
        return _("The ledger could not prove that these records are complete and unaltered.")
    if code == "in_transit":
        return _("It is on its way to %(name)s.", name=to) if to else _("It is on its way.")
    if code == "unverified_brand":
        return _("No registered brand owner holds this product code, so nobody can confirm that %(maker)s may make "
                 "it.", maker=actor)
    if code == "licensed_manufacturer":
        return _("Made by %(maker)s under a licence from the brand owner.", maker=actor)
    if code == "location_mismatch":
        return _("%(actor)s declared this step in %(country)s, where it is not registered to operate.",
                 actor=actor, country=country)
    if code == "sold":
        return _("Sold on %(date)s by %(shop)s; an item sold before is not new.", date=local_date(s.get("time")),
                 shop=actor)
    if code == "label_copied":
        if scans is not None and int(scans.networks) > 1:
            return _("This code has been checked from %(networks)d different networks: copies of its label are "
                     "probably in circulation.", networks=int(scans.networks))
        return _("This code has been checked from many different networks: copies of its label are probably in "
                 "circulation.")
    if code == "path_truncated":
        return _("Its history is longer than one check covers, so not all of it could be judged.")
    return str(reason.get("message") or code)


def journey(path: Sequence[Mapping[str, Any]], flagged: set[str], *, keep_last: int = 3,
            threshold: int = 7) -> list[dict[str, Any]]:
    """The timeline as blocks: ``{"steps": [(number, step)], "hidden": bool}``. A long journey shows its origin,
    the latest ``keep_last`` steps and every flagged step; each run of the others folds behind an expander."""
    numbered = list(enumerate(path, start=1))
    if len(path) < threshold:
        return [{"steps": numbered, "hidden": False}]
    shown = {1, *range(len(path) - keep_last + 1, len(path) + 1)}
    shown |= {n for n, step in numbered if step.get("event_id") in flagged}
    blocks: list[dict[str, Any]] = []
    for n, step in numbered:
        hidden = n not in shown
        if blocks and blocks[-1]["hidden"] == hidden:
            blocks[-1]["steps"].append((n, step))
        else:
            blocks.append({"steps": [(n, step)], "hidden": hidden})
    for block in blocks:  # folding a single step saves nothing
        if block["hidden"] and len(block["steps"]) == 1:
            block["hidden"] = False
    return blocks
