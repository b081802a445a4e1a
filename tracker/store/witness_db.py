"""A witness's own database: the latest cosigned checkpoint per log, and refused checkpoints kept as
evidence. Separate from any ledger (a witness is run by another organisation); SQLite by default.

``transaction()`` is one serialised read-check-write: SQLite ``BEGIN IMMEDIATE`` (synchronous=FULL, so a
committed state survives power loss), PostgreSQL a row lock taken up front.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text, create_engine, insert, \
    select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ..witness import WitnessRecord
from .sql import StorageError, _sqlite_engine

__all__ = ["WitnessDb", "open_witness_db"]

metadata = MetaData()
LOGS = Table(
    "witness_logs", metadata,
    Column("origin", String(255), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
)
REFUSALS = Table(
    "witness_refusals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", String(255), nullable=False, index=True),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("at", String(40), nullable=False),
)


class _Txn:
    def __init__(self, conn: Connection, *, lock: bool) -> None:
        self.conn = conn
        self.lock = lock

    def latest(self, origin: str) -> WitnessRecord | None:
        query = select(LOGS).where(LOGS.c.origin == origin)
        if self.lock and self.conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            return None
        return WitnessRecord(origin=row.origin, size=row.size, root_hash=bytes(row.root_hash), note=row.note)

    def put(self, record: WitnessRecord, *, at: str) -> None:
        values = dict(size=record.size, root_hash=record.root_hash, note=record.note, updated_at=at)
        if not self.conn.execute(update(LOGS).where(LOGS.c.origin == record.origin).values(**values)).rowcount:
            self.conn.execute(insert(LOGS).values(origin=record.origin, **values))

    def record_refusal(self, origin: str, *, status: int, reason: str, note: str, at: str) -> None:
        self.conn.execute(insert(REFUSALS).values(origin=origin, status=status, reason=reason, note=note, at=at))

    def refusals(self, origin: str | None = None) -> list[dict[str, object]]:
        query = select(REFUSALS).order_by(REFUSALS.c.id)
        if origin is not None:
            query = query.where(REFUSALS.c.origin == origin)
        return [dict(r._mapping) for r in self.conn.execute(query)]


class WitnessDb:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._reader = _sqlite_engine(url, immediate=False)
            self._writer = _sqlite_engine(url, immediate=True)
        else:
            self._reader = self._writer = create_engine(url, pool_pre_ping=True)
        try:
            with self._writer.connect() as conn, conn.begin():
                metadata.create_all(conn)
        except OperationalError as exc:
            raise StorageError(f"cannot open the witness database: {exc.orig}") from exc

    @contextmanager
    def transaction(self) -> Iterator[_Txn]:
        with self._writer.connect() as conn, conn.begin():
            if not self.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(1464421956)")  # "WITD": one writer
            yield _Txn(conn, lock=True)

    @contextmanager
    def read(self) -> Iterator[_Txn]:
        with self._reader.connect() as conn, conn.begin():
            yield _Txn(conn, lock=False)

    def close(self) -> None:
        self._reader.dispose()
        if self._writer is not self._reader:
            self._writer.dispose()


def open_witness_db(url: str) -> WitnessDb:
    return WitnessDb(url)
