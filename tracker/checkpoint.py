"""C2SP signed notes and tlog checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint is *verified first, then parsed*: ``verify_checkpoint`` checks the note signature
before reading any field of the body.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from .errors import VerificationError
from .keys import KeyPair, verify_signature
from .merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "NoteVerifier",
    "note_key_hash",
    "vkey_string",
    "parse_vkey",
    "sign_note",
    "open_note",
    "sign_checkpoint",
    "verify_checkpoint",
]

_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # em dash + space
_MAX_SIGNATURES = 100


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise VerificationError(f"key name {name!r} must be non-empty, printable, with no '+' or spaces")


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key hash: SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


def vkey_string(name: str, public_key: bytes) -> str:
    """``name+hexkeyhash+base64(0x01 ‖ pubkey)``: the verifier key SPEC §3 publishes."""
    _check_name(name)
    kh = note_key_hash(name, public_key)
    return f"{name}+{kh.hex()}+{base64.b64encode(bytes([_ED25519]) + public_key).decode()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteVerifier:
    name: str
    key_hash: bytes
    public_key: bytes

    def verify(self, text: bytes, sig: bytes) -> None:
        verify_signature(self.public_key, text, sig)


def parse_vkey(vkey: str) -> NoteVerifier:
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise VerificationError("a verifier key is name+keyhash+base64key")
    name, hexhash, b64 = parts
    _check_name(name)
    try:
        kh = bytes.fromhex(hexhash)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise VerificationError("verifier key has a malformed hash or key") from exc
    if len(hexhash) != 8 or len(raw) != 33 or raw[0] != _ED25519:
        raise VerificationError("verifier key is not an Ed25519 (type 0x01) key")
    public_key = raw[1:]
    if note_key_hash(name, public_key) != kh:
        raise VerificationError("verifier key hash does not match its name and key")
    return NoteVerifier(name=name, key_hash=kh, public_key=public_key)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise VerificationError("note text must end with a newline")
    if "\n\n" in text:
        raise VerificationError("note text must not contain a blank line")
    if any((not c.isprintable() and c != "\n") for c in text):
        raise VerificationError("note text must be printable UTF-8")


def sign_note(text: str, *, name: str, key: KeyPair) -> str:
    _check_name(name)
    _check_text(text)
    sig = key.sign(text.encode())
    blob = base64.b64encode(note_key_hash(name, key.public_key) + sig).decode()
    return f"{text}\n{_SIG_PREFIX}{name} {blob}\n"


def open_note(note: str, verifier: NoteVerifier) -> str:
    """Return the note's text after checking a signature by ``verifier``; raises VerificationError."""
    if not isinstance(note, str) or len(note) > 1 << 20:
        raise VerificationError("a signed note is a string of at most 1 MiB")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("signed note has no signature block")
    text, sig_block = note[: split + 1], note[split + 2:]
    _check_text(text)
    if not sig_block.endswith("\n"):
        raise VerificationError("signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise VerificationError("too many signatures on the note")
    verified = False
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise VerificationError("malformed signature line")
        try:
            name, blob = line[len(_SIG_PREFIX):].split(" ")
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise VerificationError("malformed signature line") from exc
        if len(raw) < 5:
            raise VerificationError("signature too short")
        if name != verifier.name or raw[:4] != verifier.key_hash:
            continue  # another witness's signature: not ours to judge
        if len(raw) != 4 + 64:
            raise VerificationError("Ed25519 note signature must be 64 bytes")
        verifier.verify(text.encode(), raw[4:])
        verified = True
    if not verified:
        raise VerificationError(f"note carries no valid signature by {verifier.name}")
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise VerificationError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise VerificationError("checkpoint size cannot be negative")
        if len(self.root_hash) != HASH_SIZE:
            raise VerificationError("checkpoint root hash must be 32 bytes")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "\n".join(lines) + "\n"


def sign_checkpoint(cp: Checkpoint, *, name: str, key: KeyPair) -> str:
    return sign_note(cp.body(), name=name, key=key)


def verify_checkpoint(note: str, verifier: NoteVerifier, *, origin: str | None = None) -> Checkpoint:
    text = open_note(note, verifier)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError("checkpoint needs origin, size and root lines")
    cp_origin, size_s, root_s, *ext = lines
    if origin is not None and cp_origin != origin:
        raise VerificationError(f"checkpoint is for log {cp_origin!r}, not {origin!r}")
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")) or not size_s.isascii():
        raise VerificationError("checkpoint size must be a decimal number without leading zeros")
    try:
        root = base64.b64decode(root_s, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise VerificationError("checkpoint root is not base64") from exc
    return Checkpoint(origin=cp_origin, size=int(size_s), root_hash=root, extensions=tuple(ext))
