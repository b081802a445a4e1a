"""C2SP signed notes and tlog checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint is *verified first, then parsed*: ``verify_checkpoint`` checks the note signature
before reading any field of the body.

Strictness follows the spec and Go's ``golang.org/x/mod/sumdb/note``: the whole note is UTF-8 with no
ASCII control character but newline; the text may hold empty lines (the signatures follow the *last*
one); every signature line must be well formed whoever made it, and only well-formed lines of unknown
keys are ignored; base64 is RFC 4648 §4 in its one canonical form, so no two encodings of a key,
signature or root are both accepted.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from .errors import VerificationError
from .keys import KeyPair, verify_signature
from .merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "NoteVerifier",
    "NoteSignature",
    "ParsedNote",
    "Verifier",
    "ED25519",
    "MAX_SIGNATURES",
    "b64decode_strict",
    "b64encode",
    "is_valid_key_name",
    "note_key_hash",
    "vkey_string",
    "split_vkey",
    "parse_vkey",
    "sign_note",
    "parse_note",
    "open_note",
    "open_note_signed_by",
    "note_signatures",
    "add_signature_lines",
    "sign_checkpoint",
    "parse_checkpoint_text",
    "verify_checkpoint",
]

ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash + space
MAX_SIGNATURES = 100  # the spec asks for at least 16
MAX_NOTE_CHARS = 1 << 20
MAX_TREE_SIZE = (1 << 63) - 1
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile(r"[0-9a-f]{8}")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str, what: str = "value") -> bytes:
    """RFC 4648 §4 base64 in canonical form only: the standard alphabet, '=' only to complete the last
    group of four, zero pad bits. (Python's decoder, even with ``validate``, takes a stray '=' after a
    complete group and non-zero pad bits; Go's standard decoder refuses the former.)"""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise VerificationError(f"{what} is not base64") from exc
    if b64encode(raw) != text:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space (U+00A0, U+2003, ... included) and no '+'; no control character either,
    since no note may hold one."""
    return (bool(name) and "+" not in name and not any(c.isspace() for c in name)
            and not _CONTROL.search(name) and _is_utf8(name))


def _check_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise VerificationError(f"key name {name!r} must be non-empty, with no '+', spaces or control characters")


def note_key_hash(name: str, public_key: bytes, sig_type: int = ED25519) -> bytes:
    """The 4-byte key ID: SHA-256(name ‖ "\\n" ‖ signature type ‖ public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def vkey_string(name: str, public_key: bytes, sig_type: int = ED25519) -> str:
    """``name+hex(key ID)+base64(type ‖ public key)``: the verifier key SPEC §3 publishes."""
    _check_name(name)
    kh = note_key_hash(name, public_key, sig_type)
    return f"{name}+{kh.hex()}+{b64encode(bytes([sig_type]) + public_key)}"


class Verifier(Protocol):
    """What a note signature is checked with: a name and key ID to match lines, and the check itself."""

    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> bytes: ...
    def verify(self, text: bytes, sig: bytes) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteVerifier:
    """An Ed25519 (type 0x01) note key: a log's key."""

    name: str
    key_hash: bytes
    public_key: bytes

    def verify(self, text: bytes, sig: bytes) -> None:
        if len(sig) != 64:
            raise VerificationError("an Ed25519 note signature is 64 bytes")
        verify_signature(self.public_key, text, sig)

    @property
    def vkey(self) -> str:
        return vkey_string(self.name, self.public_key)


def split_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """(name, key ID, signature type, key material) of a vkey, checked for form only."""
    if not isinstance(vkey, str):
        raise VerificationError("a verifier key is a string")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise VerificationError("a verifier key is name+keyhash+base64key")
    name, hexhash, b64 = parts
    _check_name(name)
    if not _HEX8.fullmatch(hexhash):
        raise VerificationError("a verifier key's hash is 8 lowercase hex digits")
    raw = b64decode_strict(b64, "verifier key")
    if len(raw) < 2:
        raise VerificationError("verifier key has no key material")
    return name, bytes.fromhex(hexhash), raw[0], raw[1:]


def parse_vkey(vkey: str) -> NoteVerifier:
    name, kh, sig_type, public_key = split_vkey(vkey)
    if sig_type != ED25519 or len(public_key) != 32:
        raise VerificationError("verifier key is not an Ed25519 (type 0x01) key")
    if note_key_hash(name, public_key) != kh:
        raise VerificationError("verifier key hash does not match its name and key")
    return NoteVerifier(name=name, key_hash=kh, public_key=public_key)


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise VerificationError("note text must end with a newline")
    if _CONTROL.search(text) or not _is_utf8(text):
        raise VerificationError("note text must be UTF-8 without control characters other than newline")


def sign_note(text: str, *, name: str, key: KeyPair) -> str:
    _check_name(name)
    _check_text(text)
    sig = key.sign(text.encode())
    return f"{text}\n{SIG_PREFIX}{name} {b64encode(note_key_hash(name, key.public_key) + sig)}\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # what follows the key ID

    @property
    def line(self) -> str:
        """The signature line without its newline."""
        return f"{SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedNote:
    """A note split into text and well-formed signature lines; nothing verified yet."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: str | bytes) -> ParsedNote:
    """Split a signed note, refusing anything malformed in any line. Verifies no signature."""
    if isinstance(note, (bytes, bytearray)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("a signed note must be valid UTF-8") from exc
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        raise VerificationError("a signed note is a string of at most 1 MiB")
    if _CONTROL.search(note) or not _is_utf8(note):
        raise VerificationError("a signed note must be UTF-8 without control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("signed note has no signature block")
    text, block = note[: split + 1], note[split + 2:]
    if not block.endswith("\n"):
        raise VerificationError("a note's signature lines must each end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError("too many signatures on the note")
    sigs = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise VerificationError("malformed signature line: it must start with an em dash and a space")
        fields = line[len(SIG_PREFIX):].split(" ")
        if len(fields) != 2:
            raise VerificationError("malformed signature line: it is a key name and a signature")
        name, blob = fields
        if not is_valid_key_name(name):
            raise VerificationError(f"malformed signature line: bad key name {name!r}")
        raw = b64decode_strict(blob, f"signature by {name}")
        if len(raw) < 5:
            raise VerificationError(f"signature by {name} is shorter than a key ID and one byte")
        sigs.append(NoteSignature(name=name, key_id=raw[:4], signature=raw[4:]))
    return ParsedNote(text=text, signatures=tuple(sigs))


def open_note_signed_by(note: str | bytes, verifiers: Sequence[Verifier], *,
                        require: bool = True) -> tuple[str, list[Verifier]]:
    """(text, the verifiers whose signature is on the note and verifies), in line order, each once.

    A line matching a verifier's name *and* key ID must verify, else the whole note is refused; lines of
    other keys are ignored. With ``require``, a note none of ``verifiers`` signed is refused."""
    parsed = parse_note(note)
    message = parsed.text.encode()
    found: list[Verifier] = []
    for sig in parsed.signatures:
        for v in verifiers:
            if v.name == sig.name and v.key_hash == sig.key_id:
                v.verify(message, sig.signature)
                if v not in found:
                    found.append(v)
    if require and not found:
        names = ", ".join(v.name for v in verifiers) or "a known key"
        raise VerificationError(f"note carries no valid signature by {names}")
    return parsed.text, found


def open_note(note: str | bytes, verifier: Verifier) -> str:
    """Return the note's text after checking a signature by ``verifier``; raises VerificationError."""
    return open_note_signed_by(note, [verifier])[0]


def note_signatures(note: str | bytes, verifier: NoteVerifier) -> tuple[str, list[bytes]]:
    """The note's text and ``verifier``'s signatures on it, every check done but the signatures themselves, so
    an audit can verify thousands of notes at once (then every signature returned must verify). Raises
    VerificationError on a malformed note or one ``verifier`` did not sign."""
    parsed = parse_note(note)
    sigs = [s.signature for s in parsed.signatures if s.name == verifier.name and s.key_id == verifier.key_hash]
    if any(len(sig) != 64 for sig in sigs):
        raise VerificationError("an Ed25519 note signature is 64 bytes")
    if not sigs:
        raise VerificationError(f"note carries no signature by {verifier.name}")
    return parsed.text, sigs


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """``note`` with more signature lines appended (each once); the result is checked as a whole."""
    have = set(note.split("\n"))
    extra = [line.rstrip("\n") for line in lines]
    out = note + "".join(f"{line}\n" for line in dict.fromkeys(extra) if line not in have)
    parse_note(out)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, line in (("origin", self.origin), *(("extension line", e) for e in self.extensions)):
            if not isinstance(line, str) or not line or "\n" in line or _CONTROL.search(line) or not _is_utf8(line):
                raise VerificationError(f"checkpoint {what} must be one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise VerificationError("checkpoint size must be between 0 and 2^63-1")
        if len(self.root_hash) != HASH_SIZE:
            raise VerificationError("checkpoint root hash must be 32 bytes")

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"


def sign_checkpoint(cp: Checkpoint, *, name: str, key: KeyPair) -> str:
    return sign_note(cp.body(), name=name, key=key)


def parse_checkpoint_text(text: str, *, origin: str | None = None) -> Checkpoint:
    """The fields of a checkpoint body. Only call this on text whose signature was verified."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 3 or any(not line for line in lines):
        raise VerificationError("a checkpoint is at least three non-empty lines: origin, size, root hash")
    cp_origin, size_s, root_s, *ext = lines
    if origin is not None and cp_origin != origin:
        raise VerificationError(f"checkpoint is for log {cp_origin!r}, not {origin!r}")
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_s) or int(size_s) > MAX_TREE_SIZE:
        raise VerificationError("checkpoint size must be a decimal number without leading zeros")
    root = b64decode_strict(root_s, "checkpoint root hash")
    return Checkpoint(origin=cp_origin, size=int(size_s), root_hash=root, extensions=tuple(ext))


def verify_checkpoint(note: str | bytes, verifier: Verifier, *, origin: str | None = None) -> Checkpoint:
    return parse_checkpoint_text(open_note(note, verifier), origin=origin)
