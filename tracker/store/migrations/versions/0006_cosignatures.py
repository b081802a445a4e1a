"""Witness cosignatures collected for the ledger's checkpoints, and each witness's status (alarms).

Revision ID: 0006_cosignatures
Revises: 0005_web_sessions
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_cosignatures"
down_revision = "0005_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cosignatures",
        sa.Column("cosigner", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.String(8), primary_key=True),
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_cosignatures_tree_size", "cosignatures", ["tree_size"])
    op.create_table(
        "witness_status",
        sa.Column("cosigner", sa.String(255), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("cosigned_size", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("alarm", sa.Text, nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("witness_status")
    op.drop_index("ix_cosignatures_tree_size", "cosignatures")
    op.drop_table("cosignatures")
