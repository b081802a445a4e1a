"""Storage for the ledger. The only package that imports SQLAlchemy / SQLModel."""
from __future__ import annotations

from .base import ReadTxn, Store, StoredCheckpoint, StoredEntry, WriteTxn

__all__ = ["ReadTxn", "WriteTxn", "Store", "StoredEntry", "StoredCheckpoint", "open_store"]


def open_store(url: str, *, create: bool = True) -> "Store":
    """Open (and, with ``create``, migrate) the database at ``url``."""
    from .sql import SqlStore, migrate

    store = SqlStore(url)
    if create:
        migrate(store)
    return store
