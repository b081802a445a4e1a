"""Private notes behind public statements. An `inspect` statement carries only ``note_commitment``:
``"sha256:" + hex(SHA-256(salt || UTF-8 note))`` with a fresh random salt of at least 16 bytes. Everything in a
signed statement is public for ever in a transparency log; the commitment binds the officer to the note without
publishing it, and the salt stops anyone confirming a guess ("documents incomplete"?) against the commitment.
The note and salt are kept off the ledger (the web side's ``private_notes`` table); whoever holds both can prove
which note was signed.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re

__all__ = ["commit_note", "opens", "MIN_SALT_BYTES", "MAX_NOTE_CHARS", "COMMITMENT"]

MIN_SALT_BYTES = 16
MAX_NOTE_CHARS = 500
COMMITMENT = re.compile(r"^sha256:[0-9a-f]{64}$")
_SALT_HEX = re.compile(r"^(?:[0-9a-f]{2}){16,64}$")


def _digest(salt: bytes, note: str) -> str:
    return "sha256:" + hashlib.sha256(salt + note.encode("utf-8")).hexdigest()


def commit_note(note: str, *, salt: bytes | None = None) -> tuple[str, str]:
    """(commitment, salt as lowercase hex) for ``note``; a fresh 16-byte salt unless one is given."""
    salt = os.urandom(MIN_SALT_BYTES) if salt is None else salt
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"a salt needs at least {MIN_SALT_BYTES} bytes")
    return _digest(salt, note), salt.hex()


def opens(commitment: str, salt_hex: str, note: str) -> bool:
    """Whether (salt, note) is the preimage of ``commitment``. Never raises on malformed input."""
    if not isinstance(commitment, str) or not isinstance(salt_hex, str) or not isinstance(note, str):
        return False
    if not COMMITMENT.match(commitment) or not _SALT_HEX.match(salt_hex):
        return False
    try:
        expected = _digest(bytes.fromhex(salt_hex), note)
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected, commitment)
