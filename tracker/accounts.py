"""Staff accounts and browser device keys: who may sign in to the staff pages, for which party and role, and
which browser keys an admin has approved into that party.

Accounts are operational data kept beside the ledger (tables ``users`` and ``device_requests``); trust still
flows only through the ledger: a browser key signs nothing the ledger accepts until an admin-signed `party`
statement adds it to the party's keys. The server never holds a device's private key.

Passwords are hashed with scrypt (hashlib, RFC 7914) under a random 16-byte salt; the encoded form
``scrypt$N$r$p$salt$hash`` carries its own parameters so they can be raised later.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from .dsse import Envelope, parse_envelope
from .errors import InvalidInput, NotFound, Rejected, TrackerError
from .keys import KeyPair, key_id, public_key_from_b64
from .ledger import AppendResult, Ledger
from .signing import party_statement, sign_statement
from .statements import SUPPLY_CHAIN_ROLES, PartyRecord, Statement, format_time, parse_statement, parse_time
from .store.base import StoredDevice, StoredUser

__all__ = [
    "USER_ROLES", "DEVICE_STATUSES", "STAFF_TYPES", "CUSTOMS_TYPES", "DEMO_USERS",
    "User", "Device", "AuthenticationError", "Forbidden",
    "hash_password", "is_correct_password",
    "create_user", "authenticate", "get_user", "list_users", "set_password", "set_disabled",
    "request_device", "get_device", "list_devices", "reject_device",
    "approval_statement", "revocation_statement", "record_approval", "record_revocation",
    "approve_device_with_key", "authorize_envelopes", "ensure_demo_users",
]

USER_ROLES = ("staff", "customs", "admin")
DEVICE_STATUSES = ("pending", "approved", "rejected", "revoked")
# What each kind of user may sign from the browser (the ledger still checks the party's own roles).
STAFF_TYPES = frozenset({"commission", "aggregate", "disaggregate", "ship", "receive", "sell"})
CUSTOMS_TYPES = frozenset({"inspect"})
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=5)
KEY_CLOCK_SKEW = timedelta(minutes=5)  # the ledger's own allowance (tracker.ledger.CLOCK_SKEW)
REGISTRY_LOCATION_NAME = "Registry"

# scrypt cost: N=2^14, r=8 (16 MiB, tens of milliseconds): OWASP's minimum for interactive logins.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1
_DUMMY_HASH: str | None = None


class AuthenticationError(TrackerError):
    """Wrong username or password, or a locked or disabled account. The message never says which."""

    code = "invalid_credentials"
    http_status = 401


class Forbidden(TrackerError):
    """A signed-in user tried to act for another party, with another role, or with a key not theirs."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: int
    username: str
    party_id: str
    role: str
    disabled: bool
    created_at: str
    session_token: str  # changes when the password changes: old sessions stop working

    @staticmethod
    def of(row: StoredUser) -> "User":
        token = hashlib.sha256(b"waybill-session:" + row.password_hash.encode()).hexdigest()[:16]
        return User(id=row.id, username=row.username, party_id=row.party_id, role=row.role,
                    disabled=row.disabled, created_at=row.created_at, session_token=token)


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


# --- passwords ---------------------------------------------------------------------------------------------

def hash_password(password: str, *, salt: bytes | None = None, n: int = _SCRYPT_N, r: int = _SCRYPT_R,
                  p: int = _SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64 fields) for ``password``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def is_correct_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant-time compare). Never raises."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if not (2 <= n_ <= 2 ** 20 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt, validate=True), n=n_, r=r_, p=p_,
                             maxmem=128 * r_ * n_ * 2, dklen=len(expected))
        return hmac.compare_digest(got, expected)
    except (ValueError, TypeError, binascii.Error, MemoryError, UnicodeEncodeError):
        return False


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="weak_password",
                           field="password")
    return password


# --- users -------------------------------------------------------------------------------------------------

def _party_or_refuse(ledger: Ledger, party_id: str) -> PartyRecord:
    try:
        return ledger.party(party_id)
    except NotFound as exc:
        raise InvalidInput(f"there is no registered party {party_id!r}: register it first (tracker party add)",
                           code="party_not_found", field="party") from exc


def _check_role_fits(role: str, party: PartyRecord) -> None:
    if role not in USER_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(USER_ROLES)}", code="invalid_role", field="role")
    roles = set(party.roles)
    if role == "admin" and "admin" not in roles:
        raise InvalidInput(f"an admin user must belong to a party with role admin, not {party.id}",
                           code="invalid_role", field="role")
    if role == "customs" and "customs" not in roles:
        raise InvalidInput(f"a customs officer must belong to a customs party; {party.id} has roles "
                           f"{', '.join(party.roles)}", code="invalid_role", field="role")
    if role == "staff" and not roles & SUPPLY_CHAIN_ROLES:
        raise InvalidInput(f"staff must belong to a manufacturer, exporter, warehouse, courier or retailer; "
                           f"{party.id} has roles {', '.join(party.roles)}", code="invalid_role", field="role")


def create_user(ledger: Ledger, *, username: str, password: str, party_id: str, role: str, now: datetime) -> User:
    """Add a user bound to a registered party. Raises InvalidInput (bad name, weak password, unknown party,
    role that does not fit the party) or Rejected (``user_exists``)."""
    username = (username or "").strip().lower()
    if not USERNAME.match(username):
        raise InvalidInput("a username is 2-63 characters: lowercase letters, digits, '.', '_' or '-'",
                           code="invalid_username", field="username")
    _check_password(password)
    party = _party_or_refuse(ledger, party_id)
    _check_role_fits(role, party)
    encoded = hash_password(password)
    with ledger.store.write() as txn:
        if txn.user_by_name(username) is not None:
            raise Rejected(f"there is already a user {username!r}", code="user_exists", field="username")
        user_id = txn.add_user(username=username, password_hash=encoded, party_id=party_id, role=role,
                               created_at=format_time(now))
        row = txn.user_by_id(user_id)
    assert row is not None
    return User.of(row)


def authenticate(ledger: Ledger, *, username: str, password: str, now: datetime) -> User:
    """The user if the password is right. Raises AuthenticationError, the same for every failure (unknown
    user, wrong password, disabled, locked after repeated failures), so the answer leaks nothing."""
    global _DUMMY_HASH
    username = (username or "").strip().lower()
    failure = AuthenticationError("wrong username or password (or the account is locked: wait a few minutes)")
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise failure
    with ledger.store.read() as txn:
        row = txn.user_by_name(username) if USERNAME.match(username) else None
    if row is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password("not a password")
        is_correct_password(_DUMMY_HASH, password)  # same work as a real check: no user enumeration by timing
        raise failure
    if row.locked_until and parse_time(row.locked_until) > now:
        raise failure
    if row.disabled or not is_correct_password(row.password_hash, password):
        with ledger.store.write() as txn:
            fails = (txn.user_by_id(row.id) or row).failed_logins + 1
            locked = format_time(now + LOCKOUT) if fails >= MAX_FAILED_LOGINS else None
            txn.update_user(row.id, failed_logins=0 if locked else fails, locked_until=locked)
        raise failure
    if row.failed_logins or row.locked_until:
        with ledger.store.write() as txn:
            txn.update_user(row.id, failed_logins=0, locked_until=None)
    return User.of(row)


def get_user(ledger: Ledger, user_id: int) -> User | None:
    with ledger.store.read() as txn:
        row = txn.user_by_id(user_id)
    return User.of(row) if row else None


def _user_named(ledger: Ledger, username: str) -> User:
    with ledger.store.read() as txn:
        row = txn.user_by_name((username or "").strip().lower())
    if row is None:
        raise NotFound(f"no user {username!r}", code="user_not_found", field="username")
    return User.of(row)


def list_users(ledger: Ledger) -> list[User]:
    with ledger.store.read() as txn:
        return [User.of(r) for r in txn.list_users()]


def set_password(ledger: Ledger, username: str, password: str) -> User:
    """Change a password; the user's other sessions end (their session token changes)."""
    user = _user_named(ledger, username)
    encoded = hash_password(_check_password(password))
    with ledger.store.write() as txn:
        txn.update_user(user.id, password_hash=encoded, failed_logins=0, locked_until=None)
        row = txn.user_by_id(user.id)
    assert row is not None
    return User.of(row)


def set_disabled(ledger: Ledger, user_id: int, disabled: bool) -> User:
    with ledger.store.write() as txn:
        if txn.user_by_id(user_id) is None:
            raise NotFound(f"no user #{user_id}", code="user_not_found")
        txn.update_user(user_id, disabled=disabled)
        row = txn.user_by_id(user_id)
    assert row is not None
    return User.of(row)


# --- device keys ---------------------------------------------------------------------------------------------

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
    with ledger.store.write() as txn:
        existing = txn.device_by_keyid(keyid)
        if existing is not None:
            if existing.user_id != user.id:
                raise Rejected(f"key {keyid} is already enrolled by another user", code="key_in_use",
                               field="public_key")
            return Device.of(existing)
        owner = txn.party_for_keyid(keyid)
        if owner is not None:
            raise Rejected(f"key {keyid} already belongs to {owner}", code="key_in_use", field="public_key")
        device_id = txn.add_device(keyid=keyid, public_key=base64.b64encode(raw).decode(), user_id=user.id,
                                   party_id=user.party_id, label=label, requested_at=format_time(now))
        row = txn.device_by_id(device_id)
    assert row is not None
    return Device.of(row)


def get_device(ledger: Ledger, device_id: int) -> Device:
    with ledger.store.read() as txn:
        row = txn.device_by_id(device_id)
    if row is None:
        raise NotFound(f"no device request #{device_id}", code="device_not_found")
    return Device.of(row)


def list_devices(ledger: Ledger, *, user_id: int | None = None, party_id: str | None = None,
                 status: str | None = None) -> list[Device]:
    with ledger.store.read() as txn:
        return [Device.of(r) for r in txn.list_devices(user_id=user_id, party_id=party_id, status=status)]


def reject_device(ledger: Ledger, device_id: int, *, admin: User, now: datetime) -> Device:
    _require_admin(admin)
    device = get_device(ledger, device_id)
    if device.status != "pending":
        raise Rejected(f"device {device.keyid} is {device.status}, not pending", code="not_pending")
    with ledger.store.write() as txn:
        txn.set_device_status(device.id, status="rejected", decided_at=format_time(now), decided_by=admin.username)
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
    added = [k for k in new.keys if old.key(k.keyid) is None]
    unchanged = all(new.key(k.keyid) == k for k in old.keys)
    if (new.id != device.party_id or not unchanged or len(added) != 1 or added[0].keyid != device.keyid
            or added[0].revoked_at is not None):
        raise Rejected(f"the statement must add key {device.keyid} to {device.party_id} and change nothing else",
                       code="unexpected_statement", field="party.keys")
    result = ledger.append(env, now=now)
    with ledger.store.write() as txn:
        txn.set_device_status(device.id, status="approved", decided_at=format_time(now),
                              decided_by=decided_by or (admin.username if admin else "command line"),
                              event_id=result.event_id)
    return result


def record_revocation(ledger: Ledger, envelope: Any, *, party_id: str, keyid: str, admin: User | None,
                      now: datetime) -> AppendResult:
    """Append an admin-signed `party` statement that revokes exactly ``keyid`` of ``party_id`` (and changes
    nothing else); a device enrolled with that key is marked revoked."""
    env, st, old = _signed_party_update(ledger, envelope, admin=admin)
    new = st.party
    target_old, target_new = old.key(keyid), new.key(keyid)
    others_same = all(new.key(k.keyid) == k for k in old.keys if k.keyid != keyid) and len(new.keys) == len(old.keys)
    if (new.id != party_id or target_old is None or target_new is None or target_new.revoked_at is None
            or not others_same or target_new.public_key != target_old.public_key
            or target_new.not_before != target_old.not_before):
        raise Rejected(f"the statement must revoke key {keyid} of {party_id} and change nothing else",
                       code="unexpected_statement", field="party.keys")
    result = ledger.append(env, now=now)
    with ledger.store.write() as txn:
        device = txn.device_by_keyid(keyid)
        if device is not None and device.party_id == party_id:
            txn.set_device_status(device.id, status="revoked", decided_at=format_time(now),
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


# --- demo ----------------------------------------------------------------------------------------------------

# username, password, party, role: for the demo network (tracker/demo.py) only. Never use these anywhere else.
DEMO_USERS: tuple[tuple[str, str, str, str], ...] = (
    ("admin", "waybill-admin", "admin", "admin"),
    ("customs-de", "waybill-customs", "de-customs", "customs"),
    ("customs-us", "waybill-customs", "us-customs", "customs"),
    ("hh-staff", "waybill-staff", "hh-warehouse", "staff"),
    ("berlin-staff", "waybill-staff", "berlin-shop", "staff"),
    ("pearl-staff", "waybill-staff", "pearl-export", "staff"),
)


def ensure_demo_users(ledger: Ledger, *, now: datetime,
                      users: Iterable[tuple[str, str, str, str]] = DEMO_USERS) -> list[tuple[str, str, str, str]]:
    """Create the demo users whose party is registered and who do not exist yet; returns those created
    (username, password, party, role). Safe to run again."""
    created = []
    registered = {p.id for p in ledger.parties()}
    with ledger.store.read() as txn:
        existing = {u.username for u in txn.list_users()}
    for username, password, party_id, role in users:
        if username in existing or party_id not in registered:
            continue
        create_user(ledger, username=username, password=password, party_id=party_id, role=role, now=now)
        created.append((username, password, party_id, role))
    return created

