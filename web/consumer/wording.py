"""Plain-language wording for the consumer pages: verdicts, reasons, roles and timeline sentences."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

__all__ = ["VERDICTS", "REASON_TITLES", "ROLE_NAMES", "event_sentence", "when", "flag", "party_names"]

# verdict -> (headline, one-line explanation)
VERDICTS: Mapping[str, tuple[str, str]] = {
    "genuine": ("Genuine", "Every step of this item's journey was signed by the company that handled it, "
                           "and the record checks out."),
    "suspicious": ("Suspicious", "Something in this item's history needs a closer look. It may be fine, "
                                 "but ask the seller before you rely on it."),
    "likely_counterfeit": ("Likely counterfeit", "This item's record does not check out. Do not trust it: "
                                                 "ask the seller, or report it to the brand."),
}
UNKNOWN_HEADLINE = "We have no record of this item — likely counterfeit"

REASON_TITLES: Mapping[str, str] = {
    "unknown_item": "We have no record of this item",
    "not_commissioned_by_manufacturer": "Registered by a company that does not own this product code",
    "bad_signature": "A record in its history carries a forged signature",
    "unauthorized_signer": "A record was made by someone not allowed to make it",
    "revoked_key": "A record was signed with a withdrawn (possibly stolen) key",
    "custody_gap": "A step in its journey is missing",
    "unreceived_shipment": "A delivery was never confirmed",
    "missing_customs_clearance": "It crossed a border without customs clearance",
    "held_by_customs": "Held by customs",
    "seized": "Seized by customs",
    "fork": "Its history splits in two",
    "cloned_serial": "This serial number has been copied",
    "activity_after_sale": "It moved again after it was sold",
    "time_inconsistency": "The dates in its history do not add up",
    "ledger_integrity_failure": "The records could not be verified",
    "in_transit": "On its way",
    "unverified_brand": "Nobody registered owns this brand's product code",
    "licensed_manufacturer": "Made under the brand owner's licence",
    "location_mismatch": "A step was declared somewhere its company does not operate",
    "sold": "Already sold",
    "label_copied": "This code is being scanned in too many places",
    "path_truncated": "Its history is too long to check in full",
}

ROLE_NAMES: Mapping[str, str] = {
    "manufacturer": "Manufacturer", "exporter": "Exporter", "customs": "Customs", "warehouse": "Warehouse",
    "courier": "Courier", "retailer": "Shop", "admin": "Registry",
}

_DECISIONS = {"released": "cleared it", "held": "held it for inspection", "seized": "seized it"}


def party_names(path: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {row["actor"]: row["actor_name"] for row in path if row.get("actor") and row.get("actor_name")}


def event_sentence(row: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """``"Shipped to Hamburg Logistics"`` — what happened, in words (the actor is shown beside it)."""
    kind = row.get("type")
    other = row.get("to") or row.get("from")
    other_name = names.get(other, other) if other else None
    if kind == "commission":
        return "Made and registered"
    if kind == "aggregate":
        return "Packed into a shipping unit"
    if kind == "disaggregate":
        return "Unpacked from its shipping unit"
    if kind == "ship":
        return f"Sent to {other_name}" if other_name else "Sent on"
    if kind == "receive":
        return f"Received from {other_name}" if other_name else "Received"
    if kind == "inspect":
        return "Customs " + _DECISIONS.get(row.get("decision") or "", "inspected it")
    if kind == "sell":
        return "Sold to a customer"
    return "Recorded"


def when(value: str | None) -> str:
    """RFC 3339 → ``2 Mar 2026, 08:00 UTC``; unreadable values are shown as given."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def flag(country: str | None) -> str:
    """ISO 3166-1 alpha-2 → flag emoji (regional indicator symbols); empty for anything else."""
    if not country or len(country) != 2 or not country.isascii() or not country.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in country.upper())
