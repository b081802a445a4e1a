"""Private customs notes: kept off the public ledger, shown only to customs officers of the country whose customs
signed the `inspect` statement, and to the registry admin.

An `inspect` statement signs ``note_commitment`` = ``sha256:`` + hex(SHA-256(salt || UTF-8 note)) (tracker.notes).
The note reaches the ``private_notes`` table in one of two ways:

- with the signed-in customs session that records the decision (``POST /customs/inspect`` with ``note`` and
  ``salt`` beside the envelope: the dashboard computes the commitment in the browser);
- by anyone, without a session, who knows salt and note (``POST /api/v1/notes``): the preimage of a commitment
  already in the ledger is its own proof, so a handheld or a script that signed the statement can deliver it.

A note is stored once per event (a commitment opens to one note only). Statements signed before this scheme may
hold a plaintext ``note``: migration 0005 copied those into the table, and the web no longer shows them to anyone
else -- but their signed envelope bytes are public and cannot change (append-only), so such a note is not secret.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from tracker.errors import InvalidInput, NotFound, Rejected
from tracker.ledger import Ledger
from tracker.notes import MAX_NOTE_CHARS, opens
from tracker.statements import EVENT_ID

from .accounts import User
from .accounts.users import stamp
from .db import web_db

__all__ = ["store_note", "check_preimage", "may_read", "note_for", "notes_for", "redacted_statement"]


def _check_note(note: Any) -> str:
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE_CHARS or not note.isprintable():
        raise InvalidInput(f"note must be printable text of 1-{MAX_NOTE_CHARS} characters", code="invalid_note",
                           field="note")
    return note


def store_note(ledger: Ledger, *, event_id: Any, note: Any, salt: Any, now: datetime,
               source: str = "preimage") -> bool:
    """Keep ``note`` for the `inspect` event ``event_id`` if (salt, note) opens its signed commitment.
    True if stored now, False if the same note was already there. Raises InvalidInput (malformed), NotFound
    (no such event) or Rejected (not an inspect with a commitment, or the preimage does not match)."""
    if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        raise InvalidInput("event_id must look like sha256:<64 lowercase hex digits>", code="invalid_event_id",
                           field="event_id")
    note = _check_note(note)
    if not isinstance(salt, str):
        raise InvalidInput("salt must be the hex of 16 to 64 random bytes", code="invalid_salt", field="salt")
    _, statement = ledger.get_event(event_id)
    commitment = getattr(statement, "note_commitment", None)
    if statement.type != "inspect" or not commitment:
        raise Rejected(f"{event_id} is not an inspect statement with a note_commitment", code="no_commitment",
                       field="event_id")
    if not opens(commitment, salt.lower(), note):
        raise Rejected("salt and note do not match the statement's note_commitment", code="commitment_mismatch",
                       field="note")
    db = web_db(ledger.store)
    if db.put_note(event_id=event_id, actor=statement.actor, note=note, salt=salt.lower(), source=source,
                   stored_at=stamp(now)):
        return True
    return False


def check_preimage(envelope: Any, *, note: Any, salt: Any) -> None:
    """Refuse, before it is appended, an inspect envelope whose note_commitment (salt, note) does not open:
    the decision must not land in the ledger with a note that can never be attached to it."""
    from tracker.statements import parse_statement

    note = _check_note(note)
    statement = parse_statement(envelope.payload)
    commitment = statement.note_commitment
    if not commitment:
        raise InvalidInput("a note needs the statement to carry its note_commitment", code="no_commitment",
                           field="note_commitment")
    if not isinstance(salt, str) or not opens(commitment, salt.lower(), note):
        raise InvalidInput("salt and note do not match the statement's note_commitment", code="commitment_mismatch",
                           field="note")


def may_read(ledger: Ledger, user: User | None, actor: str) -> bool:
    """Customs officers of the acting customs party's country, and the registry admin."""
    if user is None or user.disabled:
        return False
    if user.role == "admin" and user.party_id == "admin":
        return True
    if user.role != "customs":
        return False
    try:
        return ledger.party(user.party_id).country == ledger.party(actor).country
    except NotFound:
        return False


def note_for(ledger: Ledger, user: User | None, event_id: str) -> str | None:
    """The note of ``event_id`` if ``user`` may read it and there is one."""
    if user is None:
        return None
    found = web_db(ledger.store).note(event_id)
    if found is None or not may_read(ledger, user, found.actor):
        return None
    return found.note


def notes_for(ledger: Ledger, user: User | None, events: Iterable[tuple[str, str]]) -> dict[str, str]:
    """event_id -> note for the (event_id, actor) pairs ``user`` may read."""
    readable = [eid for eid, actor in events if may_read(ledger, user, actor)]
    return web_db(ledger.store).notes_for(readable) if readable else {}


def redacted_statement(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored statement for display: a legacy plaintext ``note`` is left out (its envelope bytes stay public:
    they are what the signature and the Merkle leaf cover)."""
    if raw.get("type") == "inspect" and "note" in raw:
        raw = {k: v for k, v in raw.items() if k != "note"}
        raw["note_redacted"] = True
    return raw
