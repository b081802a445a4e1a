"""Building and signing statements: what a device does before it posts to the ledger."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from .dsse import Envelope, sign_envelope
from .keys import KeyPair
from .statements import format_time, parse_statement, statement_bytes

__all__ = ["new_statement", "sign_statement", "party_statement"]


def new_statement(stype: str, *, actor: str, time: datetime | str, location: Mapping[str, str],
                  prev: Mapping[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """A statement dict; ``from_`` is spelt ``from`` on the wire. Validated when signed."""
    doc: dict[str, Any] = {"v": 1, "type": stype, "actor": actor,
                           "time": time if isinstance(time, str) else format_time(time),
                           "location": dict(location)}
    if prev is not None:
        doc["prev"] = dict(prev)
    for key, value in fields.items():
        if value is not None:
            doc["from" if key == "from_" else key] = value
    return doc


def sign_statement(doc: Mapping[str, Any], keys: KeyPair | Iterable[KeyPair]) -> Envelope:
    """Serialise, validate the shape (so a device never signs what the ledger will refuse as malformed), and
    sign. The door rules that depend on the ledger (``check_new_statement``: prev) are the ledger's to apply."""
    payload = statement_bytes(doc)
    parse_statement(payload)
    return sign_envelope(payload, [keys] if isinstance(keys, KeyPair) else list(keys))


def party_statement(*, admin: str, time: datetime | str, location: Mapping[str, str], party_id: str, name: str,
                    country: str, roles: Iterable[str], keys: Iterable[Mapping[str, Any]],
                    gs1_prefixes: Iterable[str] = (), sites: Iterable[Mapping[str, str]] = ()) -> dict[str, Any]:
    party: dict[str, Any] = {"id": party_id, "name": name, "country": country, "roles": list(roles),
                             "keys": [dict(k) for k in keys]}
    if gs1_prefixes:
        party["gs1_prefixes"] = list(gs1_prefixes)
    if sites:
        party["sites"] = [dict(site) for site in sites]
    return new_statement("party", actor=admin, time=time, location=location, party=party)
