"""Table models. ``table=True`` models skip validation: the core validates before anything gets here."""
from __future__ import annotations


from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

__all__ = ["Entry", "MerkleNode", "KeyEvent", "Party", "PartyKey", "PartyPrefix", "ScanCount", "CheckpointRow",
           "Meta", "metadata"]


class Entry(SQLModel, table=True):
    """One accepted envelope. ``leaf_data`` is exactly the bytes the leaf hash covers."""

    __tablename__ = "entries"
    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(sa_column=Column(String(71), nullable=False, unique=True))
    type: str = Field(sa_column=Column(String(16), nullable=False))
    actor: str = Field(sa_column=Column(String(63), nullable=False))
    time: str = Field(sa_column=Column(String(40), nullable=False))
    leaf_data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ingested_at: str = Field(sa_column=Column(String(40), nullable=False))


class MerkleNode(SQLModel, table=True):
    """Every perfect subtree hash, addressed (level, index): what O(log n) proofs read."""

    __tablename__ = "merkle_nodes"
    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class KeyEvent(SQLModel, table=True):
    """Index from an item or container key to the leaves that name it: lookups read a path, not the log."""

    __tablename__ = "key_events"
    key: str = Field(sa_column=Column(String(80), primary_key=True))
    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))


class Party(SQLModel, table=True):
    """Current registry state, derived from `party` statements (the ledger holds the history)."""

    __tablename__ = "parties"
    id: str = Field(sa_column=Column(String(63), primary_key=True))
    record: str = Field(sa_column=Column(Text, nullable=False))
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class PartyKey(SQLModel, table=True):
    __tablename__ = "party_keys"
    keyid: str = Field(sa_column=Column(String(16), primary_key=True))
    party_id: str = Field(sa_column=Column(String(63), nullable=False, index=True))


class PartyPrefix(SQLModel, table=True):
    """Which registered party claims which GS1 company prefix: a brand owner is found by an index search."""

    __tablename__ = "party_prefixes"
    prefix: str = Field(sa_column=Column(String(12), primary_key=True))
    party_id: str = Field(sa_column=Column(String(63), primary_key=True))


class ScanCount(SQLModel, table=True):
    """Consumer scans of one item on one day from one network (a keyed hash, never an address): evidence of a
    copied label, kept 90 days. Not ledger data."""

    __tablename__ = "scan_counts"
    key: str = Field(sa_column=Column(String(80), primary_key=True))
    day: str = Field(sa_column=Column(String(10), primary_key=True, index=True))
    network: str = Field(sa_column=Column(String(32), primary_key=True))
    count: int = Field(sa_column=Column(Integer, nullable=False))


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "checkpoints"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class Meta(SQLModel, table=True):
    __tablename__ = "meta"
    name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))


metadata = SQLModel.metadata


# --- customs (migration 0003; the users and device_requests tables it also creates belong to web/db.py) -----
from sqlalchemy import Index  # noqa: E402

# The customs dashboard reads ship/receive/inspect entries by type.
Index("ix_entries_type", metadata.tables["entries"].c.type)


# --- witness cosignatures (migration 0006_cosignatures) ------------------------------------------------


class CosignatureRow(SQLModel, table=True):
    """A verified cosignature line by a witness (or mirror) on the checkpoint of ``tree_size``."""

    __tablename__ = "cosignatures"
    cosigner: str = Field(sa_column=Column(String(255), primary_key=True))
    key_id: str = Field(sa_column=Column(String(8), primary_key=True))
    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))
    line: str = Field(sa_column=Column(Text, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: str = Field(sa_column=Column(String(40), nullable=False))


class WitnessStatusRow(SQLModel, table=True):
    """What the ledger knows of each configured witness: the size it last cosigned, failures, any alarm."""

    __tablename__ = "witness_status"
    cosigner: str = Field(sa_column=Column(String(255), primary_key=True))
    url: str = Field(sa_column=Column(Text, nullable=False))
    cosigned_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    failures: int = Field(sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    alarm: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: str = Field(sa_column=Column(String(40), nullable=False))


__all__ += ["CosignatureRow", "WitnessStatusRow"]
