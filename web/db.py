"""The web side's own SQL: staff accounts, device requests, server-side sign-in sessions and private customs
notes. These are operational data, not ledger evidence, so they live beside the ledger (same database, its own
tables, migrations 0003 and 0005 in the shared Alembic chain) but outside the core: nothing in ``tracker/``
reads them, and the views never see SQL (they call ``web.accounts`` and ``web.notes``).

One :class:`WebDb` per ledger store, with its own engine on the store's URL, so sign-in traffic does not queue
behind the ledger's append lock (on PostgreSQL the store's writes take a global advisory lock).
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import (Boolean, Column, case, Integer, MetaData, String, Table, Text, create_engine, delete, event, func,
                        insert, select, update)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from tracker.errors import TrackerError

__all__ = ["WebDb", "StoredUser", "StoredDevice", "StoredNote", "web_db", "WebStorageError"]

metadata = MetaData()
USERS = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("party_id", String(63), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", String(40), nullable=True),
)
DEVICES = Table(
    "device_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("keyid", String(16), nullable=False, unique=True),
    Column("public_key", String(64), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("party_id", String(63), nullable=False),
    Column("label", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", String(40), nullable=False),
    Column("decided_at", String(40), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("event_id", String(71), nullable=True),
)
SESSIONS = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
)
NOTES = Table(
    "private_notes", metadata,
    Column("event_id", String(71), primary_key=True),
    Column("actor", String(63), nullable=False),
    Column("note", Text, nullable=False),
    Column("salt", String(128), nullable=True),  # hex; NULL for a legacy note that was signed in plaintext
    Column("source", String(16), nullable=False),  # legacy | preimage | session
    Column("stored_at", String(40), nullable=False),
)


class WebStorageError(TrackerError):
    code = "storage_unavailable"
    http_status = 503


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredUser:
    id: int
    username: str
    password_hash: str
    party_id: str
    role: str
    created_at: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDevice:
    id: int
    keyid: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    user_id: int
    party_id: str
    label: str
    status: str  # pending | approved | rejected | revoked
    requested_at: str
    decided_at: str | None = None
    decided_by: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredNote:
    event_id: str
    actor: str
    note: str
    salt: str | None
    source: str
    stored_at: str


def _user(row: Any) -> StoredUser:
    return StoredUser(id=row.id, username=row.username, password_hash=row.password_hash, party_id=row.party_id,
                      role=row.role, created_at=row.created_at, disabled=bool(row.disabled),
                      failed_logins=int(row.failed_logins or 0), locked_until=row.locked_until)


def _device(row: Any) -> StoredDevice:
    return StoredDevice(id=row.id, keyid=row.keyid, public_key=row.public_key, user_id=row.user_id,
                        party_id=row.party_id, label=row.label, status=row.status, requested_at=row.requested_at,
                        decided_at=row.decided_at, decided_by=row.decided_by, event_id=row.event_id)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - driver hook
        dbapi_conn.isolation_level = None  # BEGIN is ours (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:  # pragma: no cover - driver hook
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class WebDb:
    """Short transactions on the web tables. Every method is one transaction."""

    def __init__(self, url: str) -> None:
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                self._reader = _sqlite_engine(url, immediate=False)
                self._writer = _sqlite_engine(url, immediate=True)
            else:
                self._reader = self._writer = create_engine(url, pool_pre_ping=True, pool_size=3, max_overflow=5)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise WebStorageError(f"cannot open the accounts database: {exc}") from exc

    @contextmanager
    def _txn(self, *, write: bool) -> Iterator[Connection]:
        try:
            with (self._writer if write else self._reader).connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise WebStorageError(f"the accounts database is unavailable: {exc.orig}") from exc

    def close(self) -> None:
        self._reader.dispose()
        if self._writer is not self._reader:
            self._writer.dispose()

    # --- users ---------------------------------------------------------------------------------------------
    def user_by_id(self, user_id: int) -> StoredUser | None:
        with self._txn(write=False) as conn:
            row = conn.execute(select(USERS).where(USERS.c.id == user_id)).first()
        return _user(row) if row else None

    def user_by_name(self, username: str) -> StoredUser | None:
        with self._txn(write=False) as conn:
            row = conn.execute(select(USERS).where(USERS.c.username == username)).first()
        return _user(row) if row else None

    def list_users(self) -> list[StoredUser]:
        with self._txn(write=False) as conn:
            return [_user(r) for r in conn.execute(select(USERS).order_by(USERS.c.party_id, USERS.c.username))]

    def add_user(self, *, username: str, password_hash: str, party_id: str, role: str, created_at: str) -> int | None:
        """The new user's id, or None when the name is taken."""
        try:
            with self._txn(write=True) as conn:
                result = conn.execute(insert(USERS).values(username=username, password_hash=password_hash,
                                                           party_id=party_id, role=role, created_at=created_at,
                                                           disabled=False, failed_logins=0))
                key = result.inserted_primary_key
                return int(key[0]) if key else None
        except IntegrityError:
            return None

    def set_user(self, user_id: int, *, password_hash: str | None = None, disabled: bool | None = None,
                 end_sessions: bool = False) -> bool:
        """Change a user (a new password also clears the failure count and lock); ``end_sessions`` deletes
        every sign-in session of the user in the same transaction. False when there is no such user."""
        values: dict[str, object] = {}
        if password_hash is not None:
            values.update(password_hash=password_hash, failed_logins=0, locked_until=None)
        if disabled is not None:
            values["disabled"] = disabled
        with self._txn(write=True) as conn:
            found = conn.execute(update(USERS).where(USERS.c.id == user_id).values(**values)).rowcount if values \
                else conn.execute(select(USERS.c.id).where(USERS.c.id == user_id)).first() is not None
            if end_sessions:
                conn.execute(delete(SESSIONS).where(SESSIONS.c.user_id == user_id))
        return bool(found)

    def record_failure(self, user_id: int, *, now: str, lock_until: str, max_failures: int) -> tuple[int, str | None]:
        """Count one failed sign-in atomically (one UPDATE ... RETURNING: parallel guesses each add one, none
        can overwrite another's count or lift a lock). A lock that has run out starts a fresh count. Returns
        (failures, locked_until)."""
        expired = USERS.c.locked_until.is_not(None) & (USERS.c.locked_until <= now)
        counted = case((expired, 1), else_=func.coalesce(USERS.c.failed_logins, 0) + 1)
        locked = case((counted >= max_failures, lock_until), (expired, None), else_=USERS.c.locked_until)
        stmt = (update(USERS).where(USERS.c.id == user_id)
                .values(failed_logins=counted, locked_until=locked)
                .returning(USERS.c.failed_logins, USERS.c.locked_until))
        with self._txn(write=True) as conn:
            row = conn.execute(stmt).first()
        return (int(row[0]), row[1]) if row else (0, None)

    def clear_failures(self, user_id: int, *, password_hash: str | None = None) -> None:
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self._txn(write=True) as conn:
            conn.execute(update(USERS).where(USERS.c.id == user_id).values(**values))

    # --- sessions ------------------------------------------------------------------------------------------
    def add_session(self, *, id_hash: str, user_id: int, created_at: str) -> None:
        with self._txn(write=True) as conn:
            conn.execute(insert(SESSIONS).values(id_hash=id_hash, user_id=user_id, created_at=created_at))

    def session(self, id_hash: str) -> tuple[StoredUser, str] | None:
        """(user, session created_at) of a live session."""
        query = (select(USERS, SESSIONS.c.created_at.label("session_created_at"))
                 .join(SESSIONS, SESSIONS.c.user_id == USERS.c.id).where(SESSIONS.c.id_hash == id_hash))
        with self._txn(write=False) as conn:
            row = conn.execute(query).first()
        return (_user(row), row.session_created_at) if row else None

    def end_session(self, id_hash: str) -> None:
        with self._txn(write=True) as conn:
            conn.execute(delete(SESSIONS).where(SESSIONS.c.id_hash == id_hash))

    def end_sessions_before(self, created_before: str) -> int:
        with self._txn(write=True) as conn:
            return int(conn.execute(delete(SESSIONS).where(SESSIONS.c.created_at < created_before)).rowcount or 0)

    def session_count(self, user_id: int) -> int:
        with self._txn(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(SESSIONS)
                                    .where(SESSIONS.c.user_id == user_id)).scalar() or 0)

    # --- device requests -----------------------------------------------------------------------------------
    def device_by_id(self, device_id: int) -> StoredDevice | None:
        with self._txn(write=False) as conn:
            row = conn.execute(select(DEVICES).where(DEVICES.c.id == device_id)).first()
        return _device(row) if row else None

    def device_by_keyid(self, keyid: str) -> StoredDevice | None:
        with self._txn(write=False) as conn:
            row = conn.execute(select(DEVICES).where(DEVICES.c.keyid == keyid)).first()
        return _device(row) if row else None

    def list_devices(self, *, user_id: int | None = None, party_id: str | None = None,
                     status: str | None = None) -> list[StoredDevice]:
        query = select(DEVICES).order_by(DEVICES.c.id)
        if user_id is not None:
            query = query.where(DEVICES.c.user_id == user_id)
        if party_id is not None:
            query = query.where(DEVICES.c.party_id == party_id)
        if status is not None:
            query = query.where(DEVICES.c.status == status)
        with self._txn(write=False) as conn:
            return [_device(r) for r in conn.execute(query)]

    def add_device(self, *, keyid: str, public_key: str, user_id: int, party_id: str, label: str,
                   requested_at: str) -> StoredDevice:
        """The new pending request, or the existing one for this key (whoever made it)."""
        with self._txn(write=True) as conn:
            row = conn.execute(select(DEVICES).where(DEVICES.c.keyid == keyid)).first()
            if row is None:
                conn.execute(insert(DEVICES).values(keyid=keyid, public_key=public_key, user_id=user_id,
                                                    party_id=party_id, label=label, status="pending",
                                                    requested_at=requested_at))
                row = conn.execute(select(DEVICES).where(DEVICES.c.keyid == keyid)).first()
        return _device(row)

    def set_device_status(self, device_id: int, *, status: str, decided_at: str, decided_by: str | None,
                          event_id: str | None = None) -> None:
        values: dict[str, object] = {"status": status, "decided_at": decided_at, "decided_by": decided_by}
        if event_id is not None:
            values["event_id"] = event_id
        with self._txn(write=True) as conn:
            conn.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(**values))

    # --- private notes -------------------------------------------------------------------------------------
    def note(self, event_id: str) -> StoredNote | None:
        with self._txn(write=False) as conn:
            row = conn.execute(select(NOTES).where(NOTES.c.event_id == event_id)).first()
        return StoredNote(event_id=row.event_id, actor=row.actor, note=row.note, salt=row.salt, source=row.source,
                          stored_at=row.stored_at) if row else None

    def notes_for(self, event_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._txn(write=False) as conn:
            for i in range(0, len(event_ids), 500):
                part = event_ids[i:i + 500]
                out.update({r.event_id: r.note for r in conn.execute(
                    select(NOTES.c.event_id, NOTES.c.note).where(NOTES.c.event_id.in_(part)))})
        return out

    def put_note(self, *, event_id: str, actor: str, note: str, salt: str | None, source: str,
                 stored_at: str) -> bool:
        """Store a note once; False if the event already has one (the commitment admits only one note)."""
        try:
            with self._txn(write=True) as conn:
                if conn.execute(select(NOTES.c.event_id).where(NOTES.c.event_id == event_id)).first():
                    return False
                conn.execute(insert(NOTES).values(event_id=event_id, actor=actor, note=note, salt=salt,
                                                  source=source, stored_at=stored_at))
                return True
        except IntegrityError:
            return False


_dbs: "weakref.WeakKeyDictionary[Any, WebDb]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def web_db(store: Any) -> WebDb:
    """The WebDb beside a ledger store (one per store object; its engines are disposed with the store)."""
    with _lock:
        db = _dbs.get(store)
        if db is None:
            db = WebDb(store.url)
            _dbs[store] = db
            weakref.finalize(store, db.close)
        return db
