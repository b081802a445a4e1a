"""What a handheld (or a browser) needs to know about a scanned code before it signs a handoff: the unit's
canonical key, who holds it, the event a new statement must name in ``prev``, and — for a receive — the
shipment addressed to the scanning party that is still waiting to be accepted.

The answer is advice for the signer's screen; the ledger admits (and provenance judges) what is signed.
"""
from __future__ import annotations

from typing import Any

from . import provenance
from .errors import TrackerError
from .identifiers import is_container_key, parse_code
from .ledger import Ledger

__all__ = ["scan_status"]


def scan_status(ledger: Ledger, code: str, *, party: str) -> dict[str, Any]:
    """``{"key", "kind", "known", "holder", "holder_name", "head", "verdict", "product", "incoming"}`` for a
    scanned ``code`` as seen by ``party``. ``incoming`` is ``{"ship", "from", "from_name", "shipped_unit"}``
    when the latest shipment of the unit is addressed to ``party`` and not yet received, else None;
    ``shipped_unit`` is the key the shipment names (a container, when the item travelled inside one).
    Raises InvalidIdentifier for a code that is not an item or container code."""
    key = str(parse_code(code))
    answer = provenance.lookup(ledger, key)
    path = answer.path
    known = bool(path)
    names = {row["actor"]: row.get("actor_name") or row["actor"] for row in path}
    incoming = None
    for row in path:
        if row["type"] == "ship":
            incoming = row if row.get("to") == party else None
        elif row["type"] == "receive" and incoming is not None and row["actor"] == party:
            incoming = None
    pending = None
    if incoming is not None:
        shipped_unit = key
        try:
            _, ship = ledger.get_event(incoming["event_id"])
            if key not in ship.items:
                shipped_unit = next((k for k in ship.items if is_container_key(k)), ship.items[0])
        except TrackerError:
            pass
        pending = {"ship": incoming["event_id"], "from": incoming["actor"],
                   "from_name": names.get(incoming["actor"], incoming["actor"]), "shipped_unit": shipped_unit}
    holder = answer.holder
    holder_name = names.get(holder, holder) if holder else None
    if holder and holder not in names:
        try:
            holder_name = ledger.party(holder).name
        except TrackerError:
            holder_name = holder
    return {"key": key, "kind": "container" if is_container_key(key) else "item", "known": known,
            "holder": holder, "holder_name": holder_name, "head": path[-1]["event_id"] if path else None,
            "verdict": answer.verdict, "product": (answer.product or {}).get("name"),
            "reasons": [r.code for r in answer.reasons if r.severity != "info"], "incoming": pending}

