"""Index key_events by leaf, so the audit can check the item index chunk by chunk against the log.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_key_events_leaf_index", "key_events", ["leaf_index"])


def downgrade() -> None:
    op.drop_index("ix_key_events_leaf_index", "key_events")
