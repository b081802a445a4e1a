"""Brand owners by GS1 company prefix (derived from `party` statements, like party_keys), and consumer scan
counts (operational evidence kept off the ledger: per item and day, a keyed hash of the network, a count).

Revision ID: 0004
Revises: 0003
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "party_prefixes",
        sa.Column("prefix", sa.String(12), primary_key=True),
        sa.Column("party_id", sa.String(63), primary_key=True),
    )
    op.create_table(
        "scan_counts",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("network", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_scan_counts_day", "scan_counts", ["day"])
    # Existing registries: every prefix a stored party record claims.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, record FROM parties")).fetchall()
    claims = [{"prefix": p, "party_id": pid} for pid, record in rows
              for p in sorted(set(json.loads(record).get("gs1_prefixes") or []))]
    if claims:
        conn.execute(sa.text("INSERT INTO party_prefixes (prefix, party_id) VALUES (:prefix, :party_id)"), claims)


def downgrade() -> None:
    op.drop_index("ix_scan_counts_day", "scan_counts")
    op.drop_table("scan_counts")
    op.drop_table("party_prefixes")
