"""Browser device keys: a signed-in user asks for this browser's public key to join their party; an admin
approves it by signing a `party` statement that adds exactly that key (trust flows only through the ledger: the
key signs nothing the ledger accepts until then). The server never holds a device's private key.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from tracker.dsse import Envelope, parse_envelope
from tracker.errors import InvalidInput, NotFound, Rejected
from tracker.keys import KeyPair, key_id, public_key_from_b64
from tracker.ledger import AppendResult, Ledger
from tracker.signing import party_statement, sign_statement
from tracker.statements import PartyRecord, Statement, format_time, parse_statement, parse_time

from ..db import StoredDevice, web_db
from .users import Forbidden, User, _party_or_refuse

__all__ = ["DEVICE_STATUSES", "STAFF_TYPES", "CUSTOMS_TYPES", "Device", "request_device", "get_device",
           "list_devices", "reject_device", "approval_statement", "revocation_statement", "record_approval",
           "record_revocation", "approve_device_with_key", "authorize_envelopes"]

DEVICE_STATUSES = ("pending", "approved", "rejected", "revoked")
# What each kind of user may sign from the browser (the ledger still checks the party's own roles).
STAFF_TYPES = frozenset({"commission", "aggregate", "disaggregate", "ship", "receive", "sell"})
CUSTOMS_TYPES = frozenset({"inspect"})
KEY_CLOCK_SKEW = timedelta(minutes=5)  # the ledger's own allowance (tracker.ledger.CLOCK_SKEW)
REGISTRY_LOCATION_NAME = "Registry"


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    id: int
    keyid: str
    public_key: str
    user_id: int
    party_id: str
    label: str
    status: str
    requested_at: str
    decided_at: str | None
    decided_by: str | None
    event_id: str | None

    @staticmethod
    def of(row: StoredDevice) -> "Device":
        return Device(id=row.id, keyid=row.keyid, public_key=row.public_key, user_id=row.user_id,
                      party_id=row.party_id, label=row.label, status=row.status, requested_at=row.requested_at,
                      decided_at=row.decided_at, decided_by=row.decided_by, event_id=row.event_id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "keyid": self.keyid, "public_key": self.public_key, "party": self.party_id,
                "label": self.label, "status": self.status, "requested_at": self.requested_at,
                "decided_at": self.decided_at, "event_id": self.event_id}


# --- device requests ---------------------------------------------------------------------------------------------

def request_device(ledger: Ledger, user: User, *, public_key: str, label: str, now: datetime) -> Device:
    """Ask for this browser's public key to join ``user``'s party. Idempotent for the same user and key.
    Raises InvalidInput (not a 32-byte Ed25519 key) or Rejected (``key_in_use``)."""
    try:
        raw = public_key_from_b64(public_key)
    except Exception as exc:
        raise InvalidInput("public_key must be the base64 of a raw 32-byte Ed25519 public key",
                           code="invalid_public_key", field="public_key") from exc
    label = " ".join(str(label or "").split())[:100] or "browser"
    if not label.isprintable():
        raise InvalidInput("the device name must be printable text", code="invalid_label", field="label")
    keyid = key_id(raw)
    db = web_db(ledger.store)
    existing = db.device_by_keyid(keyid)
    if existing is None:
        owner = next((p.id for p in ledger.parties() if p.key(keyid) is not None), None)
        if owner is not None:
            raise Rejected(f"key {keyid} already belongs to {owner}", code="key_in_use", field="public_key")
        existing = db.add_device(keyid=keyid, public_key=base64.b64encode(raw).decode(), user_id=user.id,
                                 party_id=user.party_id, label=label, requested_at=format_time(now))
    if existing.user_id != user.id:
        raise Rejected(f"key {keyid} is already enrolled by another user", code="key_in_use", field="public_key")
    return Device.of(existing)


def get_device(ledger: Ledger, device_id: int) -> Device:
    row = web_db(ledger.store).device_by_id(device_id)
    if row is None:
        raise NotFound(f"no device request #{device_id}", code="device_not_found")
    return Device.of(row)


def list_devices(ledger: Ledger, *, user_id: int | None = None, party_id: str | None = None,
                 status: str | None = None) -> list[Device]:
    return [Device.of(r) for r in web_db(ledger.store).list_devices(user_id=user_id, party_id=party_id,
                                                                     status=status)]


def reject_device(ledger: Ledger, device_id: int, *, admin: User, now: datetime) -> Device:
    _require_admin(admin)
    device = get_device(ledger, device_id)
    if device.status != "pending":
        raise Rejected(f"device {device.keyid} is {device.status}, not pending", code="not_pending")
    web_db(ledger.store).set_device_status(device.id, status="rejected", decided_at=format_time(now),
                                           decided_by=admin.username)
    return get_device(ledger, device_id)


def _key_doc(key: Any) -> dict[str, str]:
    doc = {"public_key": base64.b64encode(key.public_key).decode(), "not_before": format_time(key.not_before)}
    if key.revoked_at is not None:
        doc["revoked_at"] = format_time(key.revoked_at)
    return doc


def _registry_location(ledger: Ledger) -> dict[str, str]:
    admin = ledger.party("admin")
    return {"name": REGISTRY_LOCATION_NAME, "country": admin.country}


def _party_update(ledger: Ledger, party: PartyRecord, keys: Sequence[Mapping[str, str]], *, now: datetime) -> dict[str, Any]:
    return party_statement(admin="admin", time=now.replace(microsecond=0), location=_registry_location(ledger),
                           party_id=party.id, name=party.name, country=party.country, roles=party.roles,
                           keys=keys, gs1_prefixes=party.gs1_prefixes)


def approval_statement(ledger: Ledger, device_id: int, *, now: datetime) -> dict[str, Any]:
    """The unsigned `party` statement that adds a pending device's key to its party (every other field as
    registered). An admin signs its bytes (``statement_bytes``) and hands the envelope to ``record_approval``."""
    device = get_device(ledger, device_id)
    if device.status != "pending":
        raise Rejected(f"device {device.keyid} is {device.status}, not pending", code="not_pending")
    party = _party_or_refuse(ledger, device.party_id)
    if party.key(device.keyid) is not None:
        raise Rejected(f"key {device.keyid} is already a key of {party.id}", code="key_in_use")
    # Valid from a little before enrolment: a phone's clock that runs behind must not make its first
    # statements predate its key. Nothing can be signed with it before the approval reaches the ledger anyway.
    not_before = (parse_time(device.requested_at) - KEY_CLOCK_SKEW).replace(microsecond=0)
    keys = [_key_doc(k) for k in party.keys] + [{"public_key": device.public_key, "not_before": format_time(not_before)}]
    return _party_update(ledger, party, keys, now=now)


def revocation_statement(ledger: Ledger, *, party_id: str, keyid: str, now: datetime) -> dict[str, Any]:
    """The unsigned `party` statement that revokes ``keyid`` of ``party_id`` from ``now`` on."""
    party = _party_or_refuse(ledger, party_id)
    target = party.key(keyid)
    if target is None:
        raise NotFound(f"{party_id} has no key {keyid}", code="key_not_found", field="keyid")
    if target.revoked_at is not None and target.revoked_at <= now:
        raise Rejected(f"key {keyid} of {party_id} is already revoked", code="already_revoked", field="keyid")
    when = format_time(now.replace(microsecond=0))
    keys = [dict(_key_doc(k), revoked_at=when) if k.keyid == keyid else _key_doc(k) for k in party.keys]
    return _party_update(ledger, party, keys, now=now)


def _require_admin(user: User) -> None:
    if user.role != "admin" or user.party_id != "admin":
        raise Forbidden("only an administrator may change the party registry")


def _signed_party_update(ledger: Ledger, envelope: Any, *, admin: User | None) -> tuple[Envelope, Statement, PartyRecord]:
    env = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    st = parse_statement(env.payload)
    if st.type != "party" or st.actor != "admin" or st.party is None:
        raise Rejected("expected a party statement signed by admin", code="unexpected_statement", field="type")
    if admin is not None:
        _require_admin(admin)
        mine = {d.keyid for d in list_devices(ledger, user_id=admin.id, status="approved")}
        if not {s.keyid for s in env.signatures} <= mine:
            raise Forbidden("sign with this browser's approved device key (the key you enrolled)",
                            code="not_your_device")
    old = _party_or_refuse(ledger, st.party.id)
    new = st.party
    if (new.name, new.country, new.roles, new.gs1_prefixes) != (old.name, old.country, old.roles, old.gs1_prefixes):
        raise Rejected(f"the statement changes more of {old.id} than its keys", code="unexpected_statement",
                       field="party")
    return env, st, old


def record_approval(ledger: Ledger, device_id: int, envelope: Any, *, admin: User | None, now: datetime,
                    decided_by: str | None = None) -> AppendResult:
    """Append an admin-signed `party` statement that adds exactly this device's key to its party, and mark the
    device approved. ``admin`` is the signed-in admin (None from the command line, which signs with a key
    file). Raises Forbidden, Rejected (not the expected change, or refused by the ledger)."""
    device = get_device(ledger, device_id)
    if device.status != "pending":
        raise Rejected(f"device {device.keyid} is {device.status}, not pending", code="not_pending")
    env, st, old = _signed_party_update(ledger, envelope, admin=admin)
    new = st.party
    assert new is not None  # _signed_party_update refuses a statement without one
    added = [k for k in new.keys if old.key(k.keyid) is None]
    unchanged = all(new.key(k.keyid) == k for k in old.keys)
    if (new.id != device.party_id or not unchanged or len(added) != 1 or added[0].keyid != device.keyid
            or added[0].revoked_at is not None):
        raise Rejected(f"the statement must add key {device.keyid} to {device.party_id} and change nothing else",
                       code="unexpected_statement", field="party.keys")
    result = ledger.append(env, now=now)
    web_db(ledger.store).set_device_status(device.id, status="approved", decided_at=format_time(now),
                                           decided_by=decided_by or (admin.username if admin else "command line"),
                                           event_id=result.event_id)
    return result


def record_revocation(ledger: Ledger, envelope: Any, *, party_id: str, keyid: str, admin: User | None,
                      now: datetime) -> AppendResult:
    """Append an admin-signed `party` statement that revokes exactly ``keyid`` of ``party_id`` (and changes
    nothing else); a device enrolled with that key is marked revoked."""
    env, st, old = _signed_party_update(ledger, envelope, admin=admin)
    new = st.party
    assert new is not None  # _signed_party_update refuses a statement without one
    target_old, target_new = old.key(keyid), new.key(keyid)
    others_same = all(new.key(k.keyid) == k for k in old.keys if k.keyid != keyid) and len(new.keys) == len(old.keys)
    if (new.id != party_id or target_old is None or target_new is None or target_new.revoked_at is None
            or not others_same or target_new.public_key != target_old.public_key
            or target_new.not_before != target_old.not_before):
        raise Rejected(f"the statement must revoke key {keyid} of {party_id} and change nothing else",
                       code="unexpected_statement", field="party.keys")
    result = ledger.append(env, now=now)
    db = web_db(ledger.store)
    device = db.device_by_keyid(keyid)
    if device is not None and device.party_id == party_id:
        db.set_device_status(device.id, status="revoked", decided_at=format_time(now),
                             decided_by=admin.username if admin else "command line", event_id=result.event_id)
    return result


def approve_device_with_key(ledger: Ledger, device_id: int, *, admin_key: KeyPair, now: datetime) -> AppendResult:
    """Approve a device by signing its party statement with an admin key file (``tracker user approve``):
    how the first admin browser is bootstrapped, since no browser can sign for the registry yet."""
    doc = approval_statement(ledger, device_id, now=now)
    return record_approval(ledger, device_id, sign_statement(doc, admin_key), admin=None, now=now)


# --- acting for a party --------------------------------------------------------------------------------------

def authorize_envelopes(ledger: Ledger, user: User, envelopes: Iterable[Any], *,
                        allowed_types: Iterable[str]) -> list[Envelope]:
    """Check that every envelope is a statement ``user`` may post from the browser: actor is the user's own
    party, the type is one the user's role records, and every signature is by one of the user's approved
    devices. Raises InvalidStatement (malformed) or Forbidden naming the first violation."""
    allowed = frozenset(allowed_types)
    mine = {d.keyid for d in list_devices(ledger, user_id=user.id, status="approved")}
    out = []
    for i, raw in enumerate(envelopes):
        env = raw if isinstance(raw, Envelope) else parse_envelope(raw)
        st = parse_statement(env.payload)
        if st.actor != user.party_id:
            raise Forbidden(f"envelope {i}: you act for {user.party_id}, not {st.actor}", code="wrong_party",
                            field="actor")
        if st.type not in allowed:
            raise Forbidden(f"envelope {i}: a {user.role} user may not record a {st.type} statement here",
                            code="wrong_role", field="type")
        if not mine:
            raise Forbidden("this account has no approved device key yet: enrol this browser and ask an admin "
                            "to approve it", code="no_device")
        foreign = [s.keyid for s in env.signatures if s.keyid not in mine]
        if foreign:
            raise Forbidden(f"envelope {i}: key {foreign[0]} is not an approved device of {user.username}",
                            code="not_your_device", field="signatures")
        out.append(env)
    return out


