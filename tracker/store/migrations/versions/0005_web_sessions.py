"""Web side: server-side sign-in sessions, and private customs notes kept off the ledger.

``web_sessions`` holds a hash of each sign-in session id: sign-out, a password change and disabling or
re-enabling a user delete rows, which ends those sessions at once. ``private_notes`` holds the text (and salt)
behind an `inspect` statement's ``note_commitment``, readable only by customs of that country and the admin.

Existing ledgers may hold `inspect` statements signed with a plaintext ``note``: the signed bytes cannot change
(append-only), but the note is copied here so the web shows it only to authorised readers from now on.
The users' password hashes stay as they are: web.accounts reads the old scheme and rehashes at next sign-in.

Revision ID: 0005_web_sessions
Revises: 0004
"""
import base64
import json

import sqlalchemy as sa
from alembic import op

revision = "0005_web_sessions"
down_revision = "0004"
branch_labels = None
depends_on = None


def _legacy_notes(conn: sa.engine.Connection) -> list[dict]:
    entries = sa.table("entries", sa.column("leaf_index", sa.BigInteger), sa.column("event_id", sa.String),
                       sa.column("type", sa.String), sa.column("actor", sa.String),
                       sa.column("ingested_at", sa.String), sa.column("leaf_data", sa.LargeBinary))
    out: list[dict] = []
    last = -1
    while True:
        rows = conn.execute(sa.select(entries.c.leaf_index, entries.c.event_id, entries.c.actor,
                                      entries.c.ingested_at, entries.c.leaf_data)
                            .where(entries.c.type == "inspect", entries.c.leaf_index > last)
                            .order_by(entries.c.leaf_index).limit(2000)).all()
        if not rows:
            return out
        for leaf_index, event_id, actor, ingested_at, leaf_data in rows:
            last = leaf_index
            try:
                statement = json.loads(base64.b64decode(json.loads(bytes(leaf_data))["payload"]))
            except (ValueError, KeyError, TypeError):
                continue  # unreadable rows are the audit's business, not this migration's
            note = statement.get("note") if isinstance(statement, dict) else None
            if isinstance(note, str) and note:
                out.append({"event_id": event_id, "actor": actor, "note": note, "salt": None, "source": "legacy",
                            "stored_at": ingested_at})


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    notes = op.create_table(
        "private_notes",
        sa.Column("event_id", sa.String(71), primary_key=True),
        sa.Column("actor", sa.String(63), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("salt", sa.String(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("stored_at", sa.String(40), nullable=False),
    )
    rows = _legacy_notes(op.get_bind())
    if rows:
        op.bulk_insert(notes, rows)


def downgrade() -> None:
    op.drop_table("private_notes")
    op.drop_index("ix_web_sessions_user_id", "web_sessions")
    op.drop_table("web_sessions")
