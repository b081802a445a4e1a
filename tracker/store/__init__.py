"""Storage for the ledger. The only package that imports SQLAlchemy / SQLModel."""
from __future__ import annotations

from pathlib import Path

from .base import ReadTxn, Store, StoredCheckpoint, StoredEntry, WriteTxn

__all__ = ["ReadTxn", "WriteTxn", "Store", "StoredEntry", "StoredCheckpoint", "open_store", "sqlite_file"]


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_store(url: str, *, create: bool = True) -> "Store":
    """Open (and, with ``create``, migrate) the database at ``url``."""
    from .sql import SqlStore, migrate

    store = SqlStore(url)
    if create:
        migrate(store)
    return store
