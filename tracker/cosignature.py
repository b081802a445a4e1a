"""Timestamped Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature, signature type 0x04).

A cosignature is a witness's (or mirror's) statement that, as of its timestamp, the checkpoint is the
largest consistent tree it has seen for the log. Clients count cosignatures to rule out a split view: a
log that shows two histories would need the same witnesses to sign both, and witnesses never do.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from .checkpoint import (Checkpoint, NoteSignature, Verifier, add_signature_lines, note_key_hash,
                         open_note_signed_by, parse_checkpoint_text, parse_note, split_vkey, vkey_string)
from .errors import VerificationError
from .keys import KeyPair, verify_signature

__all__ = [
    "COSIGNATURE_V1",
    "Cosigner",
    "CosignedCheckpoint",
    "cosigned_message",
    "cosign",
    "cosigner_vkey",
    "parse_cosigner_vkey",
    "cosignature_timestamp",
    "open_cosigned_checkpoint",
    "attach_cosignatures",
]

COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <t>\\n`` followed by the whole checkpoint body, extension lines included."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise VerificationError("a cosignature timestamp is between 0 and 2^63-1")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Cosigner:
    """A witness or mirror key (vkey type 0x04); implements checkpoint.Verifier for note signatures."""

    name: str
    key_hash: bytes
    public_key: bytes

    @classmethod
    def of(cls, name: str, public_key: bytes) -> "Cosigner":
        return cls(name=name, key_hash=note_key_hash(name, public_key, COSIGNATURE_V1), public_key=public_key)

    def verify(self, text: bytes, sig: bytes) -> None:
        if len(sig) != 8 + 64:
            raise VerificationError(f"a cosignature by {self.name} is a timestamp and a 64-byte signature")
        timestamp = struct.unpack(">Q", sig[:8])[0]
        verify_signature(self.public_key, cosigned_message(text.decode(), timestamp), sig[8:])

    @property
    def vkey(self) -> str:
        return vkey_string(self.name, self.public_key, COSIGNATURE_V1)


def cosigner_vkey(name: str, public_key: bytes) -> str:
    return vkey_string(name, public_key, COSIGNATURE_V1)


def parse_cosigner_vkey(vkey: str) -> Cosigner:
    name, kh, sig_type, public_key = split_vkey(vkey)
    if sig_type != COSIGNATURE_V1 or len(public_key) != 32:
        raise VerificationError("a cosigner key is an Ed25519 cosignature (type 0x04) verifier key")
    cosigner = Cosigner.of(name, public_key)
    if cosigner.key_hash != kh:
        raise VerificationError("verifier key hash does not match its name and key")
    return cosigner


def cosign(checkpoint_text: str, *, name: str, key: KeyPair, timestamp: int) -> str:
    """The signature line (without newline) of a cosignature on ``checkpoint_text``."""
    if timestamp <= 0:
        raise VerificationError("a witness cosignature carries a non-zero timestamp")
    sig = key.sign(cosigned_message(checkpoint_text, timestamp))
    kh = note_key_hash(name, key.public_key, COSIGNATURE_V1)
    return NoteSignature(name=name, key_id=kh, signature=struct.pack(">Q", timestamp) + sig).line


def cosignature_timestamp(line: str) -> int:
    (sig,) = parse_note(f"x\n\n{line.rstrip(chr(10))}\n").signatures
    if len(sig.signature) < 8:
        raise VerificationError("a cosignature starts with an 8-byte timestamp")
    return int(struct.unpack(">Q", sig.signature[:8])[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignedCheckpoint:
    checkpoint: Checkpoint
    text: str
    cosigners: tuple[str, ...]  # names of the cosigners whose signature verified, in note order
    timestamps: tuple[int, ...]


def open_cosigned_checkpoint(note: str | bytes, log: Verifier, cosigners: Sequence[Cosigner], *,
                             origin: str | None = None) -> CosignedCheckpoint:
    """Verify the log's signature, then every cosignature by a known cosigner (any that fails to verify
    refuses the note); return the checkpoint and who cosigned it."""
    text, found = open_note_signed_by(note, [log, *cosigners], require=False)
    if log not in found:
        raise VerificationError(f"checkpoint carries no valid signature by the log {log.name}")
    cp = parse_checkpoint_text(text, origin=origin)
    stamps: dict[str, int] = {}
    for sig in parse_note(note).signatures:
        for c in cosigners:
            if c in found and c.name == sig.name and c.key_hash == sig.key_id:
                stamps.setdefault(c.name, int(struct.unpack(">Q", sig.signature[:8])[0]))
    names = tuple(c.name for c in found if c is not log and c in cosigners)
    return CosignedCheckpoint(checkpoint=cp, text=text, cosigners=names, timestamps=tuple(stamps[n] for n in names))


def attach_cosignatures(note: str, lines: Sequence[str]) -> str:
    return add_signature_lines(note, lines)

