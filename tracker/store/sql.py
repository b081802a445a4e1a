"""SQL storage on SQLAlchemy Core (SQLite embedded, PostgreSQL at scale).

Appends are serialised: SQLite write transactions start with BEGIN IMMEDIATE (one writer at a time,
across processes); PostgreSQL write transactions take a transaction-scoped advisory lock first.
Either way the next leaf index is read *after* the lock, so two writers never share an index.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from ..errors import TrackerError
from ..merkle import NodeId
from .base import StoredCheckpoint, StoredEntry
from .models import metadata  # the table models register themselves here

__all__ = ["SqlStore", "migrate", "StorageError", "StorageFull"]

_ADVISORY_LOCK = 0x57415942  # "WAYB"
entries = metadata.tables["entries"]
nodes_table = metadata.tables["merkle_nodes"]
key_events = metadata.tables["key_events"]
parties = metadata.tables["parties"]
party_keys = metadata.tables["party_keys"]
party_prefixes = metadata.tables["party_prefixes"]
scan_counts = metadata.tables["scan_counts"]
checkpoints = metadata.tables["checkpoints"]
meta_table = metadata.tables["meta"]


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


def _entry(row: Any) -> StoredEntry:
    return StoredEntry(leaf_index=row.leaf_index, event_id=row.event_id, type=row.type, actor=row.actor,
                       time=row.time, leaf_data=bytes(row.leaf_data))


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note, created_at=row.created_at)


class SqlTxn:
    """Read and write operations inside one transaction."""

    def _cursor(self) -> Any:
        """A raw DB-API cursor on this transaction's connection (bulk statements skip the ORM's per-row work)."""
        raw = self.conn.connection.dbapi_connection
        if raw is None:
            raise StorageError("the database connection was closed mid-transaction")
        return raw.cursor()

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain DB-API on the transaction's own connection: the lookup path runs a handful of small queries,
        and SQLAlchemy's per-statement machinery cost as much as the queries themselves."""
        cur = self._cursor()
        try:
            cur.execute(sql, tuple(params))
            return [tuple(row) for row in cur.fetchall()]
        finally:
            cur.close()

    @property
    def _mark(self) -> str:
        mark = self.__dict__.get("_mark_cached")
        if mark is None:
            mark = self.__dict__["_mark_cached"] = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        return mark

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
            rows = self.conn.execute(select(nodes_table.c.idx, nodes_table.c.hash).where(nodes_table.c.level == level, nodes_table.c.idx >= lo, nodes_table.c.idx <= hi))
            out.update({(level, r.idx): bytes(r.hash) for r in rows})
        return out

    # The append path (admission, group commit) runs these for every request: plain DB-API, like the lookups.
    _ENTRY_COLUMNS = "leaf_index, event_id, type, actor, time, leaf_data"

    def entry_by_event_id(self, event_id: str) -> StoredEntry | None:
        found = self.entries_by_event_ids([event_id])
        return found.get(event_id)

    def entries_by_event_ids(self, event_ids: Iterable[str]) -> dict[str, StoredEntry]:
        ids = list(set(event_ids))
        out: dict[str, StoredEntry] = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            sql = f"SELECT {self._ENTRY_COLUMNS} FROM entries WHERE event_id IN ({self._marks(len(part))})"
            for li, eid, typ, actor, when, data in self._rows(sql, part):
                out[eid] = StoredEntry(leaf_index=li, event_id=eid, type=typ, actor=actor, time=when,
                                       leaf_data=bytes(data))
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
            rows = self.conn.execute(select(entries).where(entries.c.leaf_index > last).order_by(entries.c.leaf_index)
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
        rows = self.conn.execute(select(key_events.c.key, key_events.c.leaf_index).where(key_events.c.leaf_index >= lo, key_events.c.leaf_index <= hi))
        return {(r.key, r.leaf_index) for r in rows}

    def party_keyids(self) -> dict[str, str]:
        return {r.keyid: r.party_id for r in self.conn.execute(select(party_keys.c.keyid, party_keys.c.party_id))}

    def keys_exist(self, keys: Iterable[str]) -> set[str]:
        keys = list(set(keys))
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            sql = f"SELECT DISTINCT key FROM key_events WHERE key IN ({self._marks(len(part))})"
            found.update(k for (k,) in self._rows(sql, part))
        return found

    def party_record(self, party_id: str) -> str | None:
        rows = self._rows(f"SELECT record FROM parties WHERE id = {self._mark}", (party_id,))
        return rows[0][0] if rows else None

    def party_records_for(self, party_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(party_ids))
        if not ids:
            return {}
        sql = f"SELECT id, record FROM parties WHERE id IN ({self._marks(len(ids))})"
        return {pid: rec for pid, rec in self._rows(sql, ids)}

    def party_records(self) -> dict[str, str]:
        return {r.id: r.record for r in self.conn.execute(select(parties.c.id, parties.c.record).order_by(parties.c.id))}

    def party_for_keyid(self, keyid: str) -> str | None:
        rows = self._rows(f"SELECT party_id FROM party_keys WHERE keyid = {self._mark}", (keyid,))
        return rows[0][0] if rows else None

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self._rows("SELECT size, root_hash, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1")
        if not rows:
            return None
        size, root, note, created = rows[0]
        return StoredCheckpoint(size=size, root_hash=bytes(root), note=note, created_at=created)

    def recent_checkpoints(self, n: int) -> list[StoredCheckpoint]:
        """The ``n`` newest stored checkpoints, newest first."""
        rows = self._rows(f"SELECT size, root_hash, note, created_at FROM checkpoints ORDER BY size DESC LIMIT {int(n)}")
        return [StoredCheckpoint(size=size, root_hash=bytes(root), note=note, created_at=created)
                for size, root, note, created in rows]

    def iter_checkpoints(self, batch: int = 1000) -> Iterator[StoredCheckpoint]:
        """Every stored checkpoint in size order, keyset-paginated: constant memory however many there are."""
        last = -1
        while True:
            rows = self.conn.execute(select(checkpoints).where(checkpoints.c.size > last)
                                     .order_by(checkpoints.c.size).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _checkpoint(row)
            last = rows[-1].size

    def party_prefixes(self) -> set[tuple[str, str]]:
        return {(r.prefix, r.party_id) for r in self.conn.execute(select(party_prefixes))}

    def prefix_claims(self, prefixes: Iterable[str]) -> dict[str, list[str]]:
        """prefix -> the parties claiming it, for the candidate prefixes of one GTIN (an index search)."""
        wanted = sorted(set(prefixes))
        out: dict[str, list[str]] = {}
        if not wanted:
            return out
        sql = f"SELECT prefix, party_id FROM party_prefixes WHERE prefix IN ({self._marks(len(wanted))})"
        for prefix, pid in self._rows(sql, wanted):
            out.setdefault(prefix, []).append(pid)
        return out

    def scan_counts(self, key: str, *, since_day: str) -> list[tuple[str, str, int]]:
        """(day, network tag, count) of consumer scans of ``key`` on ``since_day`` or later."""
        sql = (f"SELECT day, network, count FROM scan_counts WHERE key = {self._mark} AND day >= {self._mark} "
               "ORDER BY day, network")
        return [(day, net, int(n)) for day, net, n in self._rows(sql, (key, since_day))]

    def meta(self) -> Mapping[str, str]:
        return {r.name: r.value for r in self.conn.execute(select(meta_table))}

    # writes
    def _bulk(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        # Plain DB-API executemany: bulk ingest is the hot path, and the ORM's per-row
        # parameter processing costs more than the inserts themselves.
        if not rows:
            return
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self._marks(len(columns))})"
        cur = self._cursor()
        try:
            cur.executemany(sql, list(rows))
        finally:
            cur.close()

    def add_entries(self, rows: Sequence[StoredEntry], *, ingested_at: str) -> None:
        self._bulk("entries", ("leaf_index", "event_id", "type", "actor", "time", "leaf_data", "ingested_at"),
                   [(r.leaf_index, r.event_id, r.type, r.actor, r.time, r.leaf_data, ingested_at) for r in rows])

    def add_nodes(self, rows: Sequence[tuple[int, int, bytes]]) -> None:
        self._bulk("merkle_nodes", ("level", "idx", "hash"), rows)

    def add_key_events(self, rows: Sequence[tuple[str, int]]) -> None:
        self._bulk("key_events", ("key", "leaf_index"), rows)

    def put_party(self, party_id: str, record_json: str, leaf_index: int, keyids: Sequence[str],
                  prefixes: Sequence[str] = ()) -> None:
        done = self.conn.execute(update(parties).where(parties.c.id == party_id)
                                 .values(record=record_json, leaf_index=leaf_index)).rowcount
        if not done:
            self.conn.execute(insert(parties).values(id=party_id, record=record_json, leaf_index=leaf_index))
        known = set(self.conn.execute(select(party_keys.c.keyid).where(party_keys.c.party_id == party_id)).scalars())
        new = [k for k in keyids if k not in known]
        if new:
            self.conn.execute(insert(party_keys), [{"keyid": k, "party_id": party_id} for k in new])
        # A registry update states the party's prefixes in full: what it no longer lists, it no longer owns.
        self.conn.execute(party_prefixes.delete().where(party_prefixes.c.party_id == party_id))
        if prefixes:
            self.conn.execute(insert(party_prefixes), [{"prefix": p, "party_id": party_id} for p in set(prefixes)])

    def add_scans(self, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Add (key, day, network tag, count) scan counts to what is stored (an upsert on both engines)."""
        if not rows:
            return
        mark = self._mark
        sql = (f"INSERT INTO scan_counts (key, day, network, count) VALUES ({mark}, {mark}, {mark}, {mark}) "
               "ON CONFLICT (key, day, network) DO UPDATE SET count = scan_counts.count + excluded.count")
        self.conn.exec_driver_sql(sql, list(rows))

    def prune_scans(self, *, before_day: str) -> int:
        return int(self.conn.execute(scan_counts.delete().where(scan_counts.c.day < before_day)).rowcount or 0)

    def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._bulk("checkpoints", ("size", "root_hash", "note", "created_at"),
                   [(cp.size, cp.root_hash, cp.note, cp.created_at)])

    def is_cosigned(self, size: int) -> bool:
        """Whether any witness cosigned the checkpoint of ``size`` (asked on every commit: plain DB-API)."""
        return bool(self._rows(f"SELECT 1 FROM cosignatures WHERE tree_size = {self._mark} LIMIT 1", (size,)))

    def delete_checkpoint(self, size: int) -> None:
        """Drop one checkpoint from the history (the ledger keeps one per interval plus the latest)."""
        cur = self._cursor()
        try:
            cur.execute(f"DELETE FROM checkpoints WHERE size = {self._mark}", (size,))
        finally:
            cur.close()

    def set_meta(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            if not self.conn.execute(update(meta_table).where(meta_table.c.name == name).values(value=value)).rowcount:
                self.conn.execute(insert(meta_table).values(name=name, value=value))


    # --- customs (tracker.customs) ---
    def entries_of_types(self, types: Iterable[str], *, start: int = 0, batch: int = 2000) -> Iterator[StoredEntry]:
        """Entries of the given statement types in leaf order (index ix_entries_type), keyset-paginated."""
        wanted = sorted(set(types))
        last = start - 1
        while wanted:
            rows = self.conn.execute(select(entries).where(entries.c.type.in_(wanted), entries.c.leaf_index > last)
                                     .order_by(entries.c.leaf_index).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = rows[-1].leaf_index


    # --- witness cosignatures (tracker.cosigning); tables cosignatures and witness_status_table at the end of the module ---
    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        row = self.conn.execute(select(checkpoints).where(checkpoints.c.size == size)).first()
        return _checkpoint(row) if row else None

    def checkpoint_sizes_at_least(self, size: int, limit: int) -> list[int]:
        """Sizes of stored checkpoints >= ``size``, largest first."""
        rows = self.conn.execute(select(checkpoints.c.size).where(checkpoints.c.size >= size).order_by(checkpoints.c.size.desc()).limit(limit))
        return [int(r) for r in rows.scalars()]

    def cosignatures_at(self, size: int) -> list[StoredCosignature]:
        rows = self.conn.execute(select(cosignatures).where(cosignatures.c.tree_size == size).order_by(cosignatures.c.cosigner, cosignatures.c.key_id))
        return [_cosignature(r) for r in rows]

    def cosigned_sizes(self, min_cosigners: int, limit: int = 50) -> list[int]:
        """Checkpoint sizes with at least ``min_cosigners`` stored cosignatures, largest first."""
        from sqlalchemy import func

        query = (select(cosignatures.c.tree_size).group_by(cosignatures.c.tree_size).having(func.count() >= min_cosigners)
                 .order_by(cosignatures.c.tree_size.desc()).limit(limit))
        return [int(r) for r in self.conn.execute(query).scalars()]

    def witness_statuses(self) -> list[StoredWitnessStatus]:
        return [_witness_status(r) for r in self.conn.execute(select(witness_status_table).order_by(witness_status_table.c.cosigner))]

    def add_cosignature(self, row: StoredCosignature) -> None:
        key = (cosignatures.c.cosigner == row.cosigner) & (cosignatures.c.key_id == row.key_id) & (cosignatures.c.tree_size == row.tree_size)
        if self.conn.execute(select(cosignatures.c.tree_size).where(key)).first() is None:
            self.conn.execute(insert(cosignatures).values(cosigner=row.cosigner, key_id=row.key_id, tree_size=row.tree_size,
                                                line=row.line, timestamp=row.timestamp, received_at=row.received_at))

    def put_witness_status(self, row: StoredWitnessStatus) -> None:
        values = dict(url=row.url, cosigned_size=row.cosigned_size, failures=row.failures, last_error=row.last_error,
                      alarm=row.alarm, updated_at=row.updated_at)
        if not self.conn.execute(update(witness_status_table).where(witness_status_table.c.cosigner == row.cosigner).values(**values)).rowcount:
            self.conn.execute(insert(witness_status_table).values(cosigner=row.cosigner, **values))


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - driver hook
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives power loss too
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:  # pragma: no cover - driver hook
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqlStore:
    """The ledger's storage. ``write()`` is the single serialised append path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        path = url.split("///", 1)[1] if self.is_sqlite and "///" in url else ""
        self._lock_path = f"{path}-writer.lock" if path and path != ":memory:" and "mode=memory" not in path else None
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
        """One consistent snapshot. SQLite's read transaction in WAL mode is one already; PostgreSQL's default
        READ COMMITTED would let each statement see later commits (an audit reading the tree size and the
        checkpoints at different moments reported honest ledgers as tampered), so reads run REPEATABLE READ."""
        try:
            with self._connect(self._reader) as conn, conn.begin():
                if not self.is_sqlite:
                    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield SqlTxn(conn)
        except Exception as exc:
            if not _storage_fault(exc):
                raise
            raise storage_error(exc, self.safe_url) from exc

    @contextmanager
    def _writers_queue(self) -> Iterator[None]:
        """SQLite files: writers (threads and processes) queue on an OS file lock before BEGIN IMMEDIATE. SQLite's
        own busy handler polls with sleeps of up to 100 ms, so under contention a waiting writer could sleep
        past many commits (seconds at p99); a blocked flock wakes as soon as the lock is free. BEGIN IMMEDIATE
        still serialises writers that do not take this lock."""
        if self._lock_path is None:
            yield
            return
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # no room or no right to make the lock file: BEGIN IMMEDIATE alone still serialises
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock, also when the process dies

    @contextmanager
    def write(self) -> Iterator[SqlTxn]:
        try:
            with self._writers_queue(), self._connect(self._writer) as conn, conn.begin():
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


# --- witness cosignature tables (read by the SqlTxn methods above) ------------------------------------------
from .base import StoredCosignature, StoredWitnessStatus  # noqa: E402

cosignatures = metadata.tables["cosignatures"]
witness_status_table = metadata.tables["witness_status"]


def _cosignature(row: Any) -> StoredCosignature:
    return StoredCosignature(cosigner=row.cosigner, key_id=row.key_id, tree_size=row.tree_size, line=row.line,
                             timestamp=row.timestamp, received_at=row.received_at)


def _witness_status(row: Any) -> StoredWitnessStatus:
    return StoredWitnessStatus(cosigner=row.cosigner, url=row.url, cosigned_size=row.cosigned_size,
                               failures=row.failures, last_error=row.last_error, alarm=row.alarm,
                               updated_at=row.updated_at)
