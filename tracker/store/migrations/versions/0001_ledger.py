"""The ledger: entries, Merkle nodes, key index, party registry, checkpoints.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(71), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(63), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("leaf_data", sa.LargeBinary, nullable=False),
        sa.Column("ingested_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "key_events",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "parties",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "party_keys",
        sa.Column("keyid", sa.String(16), primary_key=True),
        sa.Column("party_id", sa.String(63), nullable=False),
    )
    op.create_index("ix_party_keys_party_id", "party_keys", ["party_id"])
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("meta", "checkpoints", "party_keys", "parties", "key_events", "merkle_nodes", "entries"):
        op.drop_table(table)
