"""Staff accounts and browser device enrolments; entries indexed by type for the customs dashboard.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("party_id", sa.String(63), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.String(40), nullable=True),
    )
    op.create_index("ix_users_party_id", "users", ["party_id"])
    op.create_table(
        "device_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("keyid", sa.String(16), nullable=False, unique=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("party_id", sa.String(63), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.String(40), nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("event_id", sa.String(71), nullable=True),
    )
    op.create_index("ix_device_requests_user_id", "device_requests", ["user_id"])
    op.create_index("ix_device_requests_party_id", "device_requests", ["party_id"])
    op.create_index("ix_device_requests_status", "device_requests", ["status"])
    op.create_index("ix_entries_type", "entries", ["type"])


def downgrade() -> None:
    op.drop_index("ix_entries_type", "entries")
    op.drop_table("device_requests")
    op.drop_table("users")
