"""SQL storage on SQLAlchemy Core (SQLite embedded, PostgreSQL at scale).

Appends are serialised: SQLite write transactions start with BEGIN IMMEDIATE (one writer at a time,
across processes); PostgreSQL write transactions take a transaction-scoped advisory lock first.
Either way the next leaf index is read *after* the lock, so two writers never share an index.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from ..errors import TrackerError
from ..merkle import NodeId
from .base import StoredCheckpoint, StoredEntry
from .models import CheckpointRow, Entry, KeyEvent, MerkleNode, Meta, Party, PartyKey

__all__ = ["SqlStore", "migrate", "StorageError", "StorageFull"]

_ADVISORY_LOCK = 0x57415942  # "WAYB"
E = Entry.__table__
N = MerkleNode.__table__
K = KeyEvent.__table__
P = Party.__table__
PK = PartyKey.__table__
C = CheckpointRow.__table__
M = Meta.__table__


class StorageError(TrackerError):
    """The database cannot be reached or cannot answer right now: nothing was written, try again."""

    code = "storage_unavailable"
    http_status = 503
    retry_after = 5  # seconds: a restarting database server is usually back within that


class StorageFull(StorageError):
    """The database has no room for the write (disk or quota full): nothing was written; reads still work."""

    code = "storage_full"
    http_status = 507
    retry_after = 60  # someone has to free space first


_SQLITE_FULL = 13  # SQLITE_FULL (the primary code; extended codes keep it in the low byte)
_PG_DISK_FULL = "53100"  # disk_full


def _dbapi_errors() -> tuple[type[BaseException], ...]:
    """The drivers' own errors: the lookup path's plain DB-API cursors (``SqlTxn._rows``) raise them unwrapped."""
    import sqlite3

    found: list[type[BaseException]] = [sqlite3.OperationalError, sqlite3.InterfaceError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency, but SQLite needs nothing else
        pass
    else:
        found += [psycopg.OperationalError, psycopg.InterfaceError]
    return tuple(found)


_DRIVER_ERRORS = _dbapi_errors()


def _is_full(orig: BaseException | None) -> bool:
    import errno

    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == _SQLITE_FULL:
        return True
    if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return True
    return isinstance(orig, OSError) and orig.errno in (errno.ENOSPC, errno.EDQUOT)


def storage_error(exc: BaseException, where: str) -> StorageError:
    """The one mapping from a database failure to what callers see: ``storage_full`` (507) when there is no
    room left, ``storage_unavailable`` (503) for everything else (server down or restarting, connection
    dropped, locked). The message keeps the driver's words for the operator's log; the web layer shows
    clients only a fixed sentence."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if _is_full(orig):
        return StorageFull(f"database {where} is out of space: {orig}")
    return StorageError(f"database {where} is unavailable: {orig}")


def _storage_fault(exc: BaseException) -> bool:
    """True for errors that mean the database is unreachable, restarting or full, not a bug in a query."""
    if isinstance(exc, (OperationalError, InterfaceError)) or isinstance(exc, _DRIVER_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _entry(row) -> StoredEntry:
    return StoredEntry(leaf_index=row.leaf_index, event_id=row.event_id, type=row.type, actor=row.actor,
                       time=row.time, leaf_data=bytes(row.leaf_data))


def _checkpoint(row) -> StoredCheckpoint:
    return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note, created_at=row.created_at)


class SqlTxn:
    """Read and write operations inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Plain DB-API on the transaction's own connection: the lookup path runs a handful of small queries,
        and SQLAlchemy's per-statement machinery cost as much as the queries themselves."""
        cur = self.conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(sql, tuple(params))
            return cur.fetchall()
        finally:
            cur.close()

    # reads
    def tree_size(self) -> int:
        top = self._rows("SELECT max(leaf_index) FROM entries")[0][0]
        return 0 if top is None else top + 1

    def entry_count(self, below: int | None = None, start: int = 0) -> int:
        """Stored entries with ``start <= leaf_index < below``. Unlike tree_size, this sees a row deleted
        from the middle of the log."""
        if below is None:
            below = 1 << 62
        sql = f"SELECT count(*) FROM entries WHERE leaf_index >= {self._mark} AND leaf_index < {self._mark}"
        return int(self._rows(sql, (start, below))[0][0])

    @property
    def _mark(self) -> str:
        return "?" if self.conn.dialect.paramstyle == "qmark" else "%s"

    def _marks(self, n: int) -> str:
        return ", ".join([self._mark] * n)

    def nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        # Lookups and proofs sit on this path: plain SQL, one statement per few hundred nodes, an
        # `(level = ? AND idx IN (...)) OR ...` shape both engines answer from the primary key
        # (SQLite turns a row-value IN over (level, idx) into a full scan).
        by_level: dict[int, list[int]] = {}
        for level, idx in dict.fromkeys(ids):
            by_level.setdefault(level, []).append(idx)
        out: dict[NodeId, bytes] = {}
        clauses: list[str] = []
        params: list[int] = []

        def run() -> None:
            if clauses:
                sql = "SELECT level, idx, hash FROM merkle_nodes WHERE " + " OR ".join(clauses)
                for level, idx, h in self._rows(sql, params):
                    out[(level, idx)] = bytes(h)
                clauses.clear()
                params.clear()

        for level, idxs in by_level.items():
            for i in range(0, len(idxs), 400):
                part = idxs[i:i + 400]
                clauses.append(f"(level = {self._mark} AND idx IN ({self._marks(len(part))}))")
                params.extend([level, *part])
                if len(params) > 800:
                    run()
        run()
        return out

    def nodes_between(self, spans: Sequence[tuple[int, int, int]]) -> dict[NodeId, bytes]:
        """Nodes by (level, first idx, last idx) spans: one cheap range scan per level."""
        out: dict[NodeId, bytes] = {}
        for level, lo, hi in spans:
            rows = self.conn.execute(select(N.c.idx, N.c.hash).where(N.c.level == level, N.c.idx >= lo, N.c.idx <= hi))
            out.update({(level, r.idx): bytes(r.hash) for r in rows})
        return out

    def entry_by_event_id(self, event_id: str) -> StoredEntry | None:
        row = self.conn.execute(select(E).where(E.c.event_id == event_id)).first()
        return _entry(row) if row else None

    def entries_by_event_ids(self, event_ids: Iterable[str]) -> dict[str, StoredEntry]:
        ids = list(set(event_ids))
        out: dict[str, StoredEntry] = {}
        for i in range(0, len(ids), 500):
            for row in self.conn.execute(select(E).where(E.c.event_id.in_(ids[i:i + 500]))):
                out[row.event_id] = _entry(row)
        return out

    def entries_at(self, leaf_indexes: Iterable[int]) -> dict[int, StoredEntry]:
        idx = list(set(leaf_indexes))
        out: dict[int, StoredEntry] = {}
        for i in range(0, len(idx), 500):
            part = idx[i:i + 500]
            sql = ("SELECT leaf_index, event_id, type, actor, time, leaf_data FROM entries "
                   f"WHERE leaf_index IN ({self._marks(len(part))})")
            for li, eid, typ, actor, when, data in self._rows(sql, part):
                out[li] = StoredEntry(leaf_index=li, event_id=eid, type=typ, actor=actor, time=when,
                                      leaf_data=bytes(data))
        return out

    def iter_entries(self, start: int = 0, batch: int = 2000) -> Iterator[StoredEntry]:
        # Keyset pagination: constant memory, and no long-lived cursor across a write lock.
        # Rows come back in leaf order; a missing or reordered index shows up as a gap to the caller.
        last = start - 1
        while True:
            rows = self.conn.execute(select(E).where(E.c.leaf_index > last).order_by(E.c.leaf_index)
                                     .limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = rows[-1].leaf_index

    def leaves_for_keys(self, keys: Iterable[str]) -> dict[str, list[int]]:
        keys = list(set(keys))
        out: dict[str, list[int]] = {k: [] for k in keys}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            sql = f"SELECT key, leaf_index FROM key_events WHERE key IN ({self._marks(len(part))})"
            for key, li in self._rows(sql, part):
                out[key].append(li)
        for leaves in out.values():
            leaves.sort()
        return out

    def key_events_between(self, lo: int, hi: int) -> set[tuple[str, int]]:
        rows = self.conn.execute(select(K.c.key, K.c.leaf_index).where(K.c.leaf_index >= lo, K.c.leaf_index <= hi))
        return {(r.key, r.leaf_index) for r in rows}

    def party_keyids(self) -> dict[str, str]:
        return {r.keyid: r.party_id for r in self.conn.execute(select(PK.c.keyid, PK.c.party_id))}

    def keys_exist(self, keys: Iterable[str]) -> set[str]:
        keys = list(set(keys))
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            found.update(self.conn.execute(select(K.c.key).where(K.c.key.in_(keys[i:i + 500])).distinct()).scalars())
        return found

    def party_record(self, party_id: str) -> str | None:
        return self.conn.execute(select(P.c.record).where(P.c.id == party_id)).scalar()

    def party_records_for(self, party_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(party_ids))
        if not ids:
            return {}
        sql = f"SELECT id, record FROM parties WHERE id IN ({self._marks(len(ids))})"
        return {pid: rec for pid, rec in self._rows(sql, ids)}

    def party_records(self) -> dict[str, str]:
        return {r.id: r.record for r in self.conn.execute(select(P.c.id, P.c.record).order_by(P.c.id))}

    def party_for_keyid(self, keyid: str) -> str | None:
        return self.conn.execute(select(PK.c.party_id).where(PK.c.keyid == keyid)).scalar()

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self._rows("SELECT size, root_hash, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1")
        if not rows:
            return None
        size, root, note, created = rows[0]
        return StoredCheckpoint(size=size, root_hash=bytes(root), note=note, created_at=created)

    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]:
        for row in self.conn.execute(select(C).order_by(C.c.size)).all():
            yield _checkpoint(row)

    def meta(self) -> Mapping[str, str]:
        return {r.name: r.value for r in self.conn.execute(select(M))}

    # writes
    def _bulk(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        # Plain DB-API executemany: bulk ingest is the hot path, and the ORM's per-row
        # parameter processing costs more than the inserts themselves.
        if not rows:
            return
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
        self.conn.exec_driver_sql(sql, list(rows))

    def add_entries(self, rows: Sequence[StoredEntry], *, ingested_at: str) -> None:
        self._bulk("entries", ("leaf_index", "event_id", "type", "actor", "time", "leaf_data", "ingested_at"),
                   [(r.leaf_index, r.event_id, r.type, r.actor, r.time, r.leaf_data, ingested_at) for r in rows])

    def add_nodes(self, rows: Sequence[tuple[int, int, bytes]]) -> None:
        self._bulk("merkle_nodes", ("level", "idx", "hash"), rows)

    def add_key_events(self, rows: Sequence[tuple[str, int]]) -> None:
        self._bulk("key_events", ("key", "leaf_index"), rows)

    def put_party(self, party_id: str, record_json: str, leaf_index: int, keyids: Sequence[str]) -> None:
        done = self.conn.execute(update(P).where(P.c.id == party_id)
                                 .values(record=record_json, leaf_index=leaf_index)).rowcount
        if not done:
            self.conn.execute(insert(P).values(id=party_id, record=record_json, leaf_index=leaf_index))
        known = set(self.conn.execute(select(PK.c.keyid).where(PK.c.party_id == party_id)).scalars())
        new = [k for k in keyids if k not in known]
        if new:
            self.conn.execute(insert(PK), [{"keyid": k, "party_id": party_id} for k in new])

    def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        self.conn.execute(insert(C).values(size=cp.size, root_hash=cp.root_hash, note=cp.note,
                                           created_at=cp.created_at))

    def set_meta(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            if not self.conn.execute(update(M).where(M.c.name == name).values(value=value)).rowcount:
                self.conn.execute(insert(M).values(name=name, value=value))


    # --- accounts and customs (tracker.accounts, tracker.customs); tables U and D at the end of the module ---
    def user_by_id(self, user_id: int) -> StoredUser | None:
        row = self.conn.execute(select(U).where(U.c.id == user_id)).first()
        return _user(row) if row else None

    def user_by_name(self, username: str) -> StoredUser | None:
        row = self.conn.execute(select(U).where(U.c.username == username)).first()
        return _user(row) if row else None

    def list_users(self) -> list[StoredUser]:
        return [_user(r) for r in self.conn.execute(select(U).order_by(U.c.party_id, U.c.username))]

    def add_user(self, *, username: str, password_hash: str, party_id: str, role: str, created_at: str) -> int:
        result = self.conn.execute(insert(U).values(username=username, password_hash=password_hash,
                                                    party_id=party_id, role=role, created_at=created_at,
                                                    disabled=False, failed_logins=0))
        return int(result.inserted_primary_key[0])

    def update_user(self, user_id: int, *, password_hash: str | None = None, disabled: bool | None = None,
                    failed_logins: int | None = None, locked_until: str | None = ...) -> None:  # type: ignore[assignment]
        values: dict[str, object] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if disabled is not None:
            values["disabled"] = disabled
        if failed_logins is not None:
            values["failed_logins"] = failed_logins
        if locked_until is not ...:
            values["locked_until"] = locked_until
        if values:
            self.conn.execute(update(U).where(U.c.id == user_id).values(**values))

    def device_by_id(self, device_id: int) -> StoredDevice | None:
        row = self.conn.execute(select(D).where(D.c.id == device_id)).first()
        return _device(row) if row else None

    def device_by_keyid(self, keyid: str) -> StoredDevice | None:
        row = self.conn.execute(select(D).where(D.c.keyid == keyid)).first()
        return _device(row) if row else None

    def list_devices(self, *, user_id: int | None = None, party_id: str | None = None,
                     status: str | None = None) -> list[StoredDevice]:
        query = select(D).order_by(D.c.id)
        if user_id is not None:
            query = query.where(D.c.user_id == user_id)
        if party_id is not None:
            query = query.where(D.c.party_id == party_id)
        if status is not None:
            query = query.where(D.c.status == status)
        return [_device(r) for r in self.conn.execute(query)]

    def add_device(self, *, keyid: str, public_key: str, user_id: int, party_id: str, label: str,
                   requested_at: str) -> int:
        result = self.conn.execute(insert(D).values(keyid=keyid, public_key=public_key, user_id=user_id,
                                                    party_id=party_id, label=label, status="pending",
                                                    requested_at=requested_at))
        return int(result.inserted_primary_key[0])

    def set_device_status(self, device_id: int, *, status: str, decided_at: str, decided_by: str | None,
                          event_id: str | None = None) -> None:
        values: dict[str, object] = {"status": status, "decided_at": decided_at, "decided_by": decided_by}
        if event_id is not None:
            values["event_id"] = event_id
        self.conn.execute(update(D).where(D.c.id == device_id).values(**values))

    def entries_of_types(self, types: Iterable[str], *, start: int = 0, batch: int = 2000) -> Iterator[StoredEntry]:
        """Entries of the given statement types in leaf order (index ix_entries_type), keyset-paginated."""
        wanted = sorted(set(types))
        last = start - 1
        while wanted:
            rows = self.conn.execute(select(E).where(E.c.type.in_(wanted), E.c.leaf_index > last)
                                     .order_by(E.c.leaf_index).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = rows[-1].leaf_index


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives power loss too
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # pragma: no cover - driver hook
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqlStore:
    """The ledger's storage. ``write()`` is the single serialised append path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                self._reader = _sqlite_engine(url, immediate=False)
                self._writer = _sqlite_engine(url, immediate=True)
            else:
                self._reader = self._writer = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StorageError(f"cannot open database {self.safe_url}: {exc}") from exc

    @property
    def safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<database>"

    def _connect(self, engine: Engine) -> Connection:
        """A connection, retried once: a pooled connection that broke (the server restarted) is dropped by
        ``pool_pre_ping`` and replaced, and a fresh connect that fails once is tried again before the caller
        is told the database is unavailable. Only connecting is retried; a transaction that fails part-way
        is never replayed here (the caller sees a 503 and retries; appends are idempotent by event id)."""
        try:
            return engine.connect()
        except SQLAlchemyError as exc:
            if not _storage_fault(exc):
                raise
            return engine.connect()

    @contextmanager
    def read(self) -> Iterator[SqlTxn]:
        try:
            with self._connect(self._reader) as conn, conn.begin():
                yield SqlTxn(conn)
        except Exception as exc:
            if not _storage_fault(exc):
                raise
            raise storage_error(exc, self.safe_url) from exc

    @contextmanager
    def write(self) -> Iterator[SqlTxn]:
        try:
            with self._connect(self._writer) as conn, conn.begin():
                if not self.is_sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
                yield SqlTxn(conn)
        except Exception as exc:
            if not _storage_fault(exc):
                raise
            raise storage_error(exc, self.safe_url) from exc

    def close(self) -> None:
        self._reader.dispose()
        if self._writer is not self._reader:
            self._writer.dispose()


def migrate(store: SqlStore) -> None:
    """Bring the schema to the latest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with store._writer.connect() as conn, conn.begin():
            if not store.is_sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except Exception as exc:
        if not _storage_fault(exc):
            raise
        raise storage_error(exc, store.safe_url) from exc


# --- accounts and customs tables (read by the SqlTxn methods at the end of the class) ---------------------
from .base import StoredDevice, StoredUser  # noqa: E402
from .models import DeviceRequest as _DeviceRequest, User as _User  # noqa: E402

U = _User.__table__
D = _DeviceRequest.__table__


def _user(row) -> StoredUser:
    return StoredUser(id=row.id, username=row.username, password_hash=row.password_hash, party_id=row.party_id,
                      role=row.role, created_at=row.created_at, disabled=bool(row.disabled),
                      failed_logins=int(row.failed_logins or 0), locked_until=row.locked_until)


def _device(row) -> StoredDevice:
    return StoredDevice(id=row.id, keyid=row.keyid, public_key=row.public_key, user_id=row.user_id,
                        party_id=row.party_id, label=row.label, status=row.status, requested_at=row.requested_at,
                        decided_at=row.decided_at, decided_by=row.decided_by, event_id=row.event_id)
