"""Staff users: who may sign in to the staff, customs and admin pages, for which party and role; sign-in with an
atomic lockout; and server-side sign-in sessions that end on sign-out, a password change, disabling or
re-enabling the account (a cookie only names a session; the row in ``web_sessions`` is what makes it live).
"""
from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from tracker.errors import InvalidInput, NotFound, Rejected, TrackerError
from tracker.ledger import Ledger
from tracker.statements import SUPPLY_CHAIN_ROLES, PartyRecord

from ..db import StoredUser, web_db
from . import passwords

__all__ = ["USER_ROLES", "MAX_FAILED_LOGINS", "LOCKOUT", "User", "AuthenticationError", "AccountLocked",
           "Forbidden", "create_user", "authenticate", "get_user", "list_users", "set_password", "set_disabled",
           "start_session", "session_user", "end_session", "DEMO_USERS", "ensure_demo_users", "stamp"]

USER_ROLES = ("staff", "customs", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=5)


class AuthenticationError(TrackerError):
    """Wrong username or password, or a disabled account. The message never says which."""

    code = "invalid_credentials"
    http_status = 401


class AccountLocked(TrackerError):
    """Too many failed sign-ins for this name: wait. Said the same way for names that do not exist
    (web.auth counts failures per name in the rate limiter, so an unknown name 'locks' too)."""

    code = "account_locked"
    http_status = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        minutes = max(1, math.ceil(self.retry_after / 60))
        super().__init__(f"Too many failed sign-ins for this user name: sign-in is locked for {minutes} more "
                         f"minute{'s' if minutes != 1 else ''}. Wait, then try again (or ask an admin to reset "
                         "your password).")


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

    @staticmethod
    def of(row: StoredUser) -> "User":
        return User(id=row.id, username=row.username, party_id=row.party_id, role=row.role,
                    disabled=row.disabled, created_at=row.created_at)


def stamp(when: datetime) -> str:
    """Times in the web tables: UTC to the second, fixed width, so SQL compares them as strings."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="weak_password",
                           field="password")
    return password


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
    db = web_db(ledger.store)
    user_id = db.add_user(username=username, password_hash=passwords.hash_password(password), party_id=party_id,
                          role=role, created_at=stamp(now))
    if user_id is None:
        raise Rejected(f"there is already a user {username!r}", code="user_exists", field="username")
    row = db.user_by_id(user_id)
    assert row is not None
    return User.of(row)


def authenticate(ledger: Ledger, *, username: str, password: str, now: datetime) -> User:
    """The user if the password is right. Raises AuthenticationError (unknown name, wrong password, disabled:
    one message for all) or AccountLocked. Every path does one password check's work, so timing does not
    tell a known name from an unknown one. Failures are counted in one atomic UPDATE; the tenth within a
    lock period locks the account for LOCKOUT, and parallel guesses cannot undo the lock."""
    username = (username or "").strip().lower() if isinstance(username, str) else ""
    failure = AuthenticationError("wrong username or password")
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise failure
    db = web_db(ledger.store)
    row = db.user_by_name(username) if USERNAME.match(username) else None
    if row is None:
        passwords.burn(password)
        raise failure
    if row.locked_until and _parse_stamp(row.locked_until) > now:
        passwords.burn(password)
        raise AccountLocked((_parse_stamp(row.locked_until) - now).total_seconds())
    right = passwords.is_correct_password(row.password_hash, password)
    if row.disabled:
        raise failure
    if not right:
        _, locked = db.record_failure(row.id, now=stamp(now), lock_until=stamp(now + LOCKOUT),
                                      max_failures=MAX_FAILED_LOGINS)
        if locked and _parse_stamp(locked) > now:
            raise AccountLocked((_parse_stamp(locked) - now).total_seconds())
        raise failure
    if passwords.needs_rehash(row.password_hash):
        db.clear_failures(row.id, password_hash=passwords.hash_password(password))
    elif row.failed_logins or row.locked_until:
        db.clear_failures(row.id)
    return User.of(row)


def get_user(ledger: Ledger, user_id: int) -> User | None:
    row = web_db(ledger.store).user_by_id(user_id)
    return User.of(row) if row else None


def _user_named(ledger: Ledger, username: str) -> User:
    row = web_db(ledger.store).user_by_name((username or "").strip().lower())
    if row is None:
        raise NotFound(f"no user {username!r}", code="user_not_found", field="username")
    return User.of(row)


def list_users(ledger: Ledger) -> list[User]:
    return [User.of(r) for r in web_db(ledger.store).list_users()]


def set_password(ledger: Ledger, username: str, password: str) -> User:
    """Change a password; every session of the user ends (including the one that made the change)."""
    user = _user_named(ledger, username)
    web_db(ledger.store).set_user(user.id, password_hash=passwords.hash_password(_check_password(password)),
                                  end_sessions=True)
    return _user_named(ledger, username)


def set_disabled(ledger: Ledger, user_id: int, disabled: bool) -> User:
    """Disable or enable a user. Either way every existing session of the user ends: re-enabling an account
    must not revive cookies issued before it was disabled."""
    db = web_db(ledger.store)
    if not db.set_user(user_id, disabled=disabled, end_sessions=True):
        raise NotFound(f"no user #{user_id}", code="user_not_found")
    row = db.user_by_id(user_id)
    assert row is not None
    return User.of(row)


# --- sessions ------------------------------------------------------------------------------------------------

def _session_hash(token: str) -> str:
    # The table holds a hash of the cookie's session id: reading the table does not hand out live sessions.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start_session(ledger: Ledger, user: User, *, now: datetime) -> str:
    """A new session for ``user``; returns its id (256 random bits) for the signed session cookie."""
    token = secrets.token_urlsafe(32)
    web_db(ledger.store).add_session(id_hash=_session_hash(token), user_id=user.id, created_at=stamp(now))
    return token


def session_user(ledger: Ledger, token: str, *, now: datetime, max_age: timedelta) -> User | None:
    """The user of a live session: it exists, is younger than ``max_age``, and the user is enabled."""
    if not token or len(token) > 128:
        return None
    db = web_db(ledger.store)
    found = db.session(_session_hash(token))
    if found is None:
        return None
    row, created = found
    if row.disabled or now - _parse_stamp(created) > max_age:
        if not row.disabled:
            db.end_session(_session_hash(token))
        return None
    return User.of(row)


def end_session(ledger: Ledger, token: str) -> None:
    if token:
        web_db(ledger.store).end_session(_session_hash(token))


# --- demo ------------------------------------------------------------------------------------------------------

# username, password, party, role: for the demo network only (`tracker serve --demo`). Never use these elsewhere.
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
    existing = {u.username for u in list_users(ledger)}
    for username, password, party_id, role in users:
        if username in existing or party_id not in registered:
            continue
        create_user(ledger, username=username, password=password, party_id=party_id, role=role, now=now)
        created.append((username, password, party_id, role))
    return created
