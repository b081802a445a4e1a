"""C2SP signed notes and tlog checkpoints (SPEC §3).

Besides the known-answer vector, this file holds a second, independent implementation of
c2sp.org/signed-note and c2sp.org/tlog-checkpoint verification, written from the spec text (it does not
import tracker.checkpoint or tracker.keys; it talks to pynacl directly). Checkpoints made by the tracker
must verify with it and the other way round, and both must refuse the same tampered notes.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import T0, VECTORS, fixed_key
from tracker.checkpoint import (
    Checkpoint,
    open_note,
    open_note_signed_by,
    parse_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    vkey_string,
)
from tracker.errors import VerificationError
from tracker.keys import keypair_from_seed

VECTOR = json.loads((VECTORS / "signed-note.json").read_text())


# ==================================================================================================
# Reference implementation (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), independent of tracker/
# ==================================================================================================

class RefError(Exception):
    """The reference implementation's one failure."""


EM_DASH_SPACE = "\u2014 "
SIG_TYPE_ED25519 = b"\x01"


def ref_b64decode(text: str) -> bytes:
    """RFC 4648 §4 base64, strictly: the alphabet, padding only to a multiple of four characters, and zero
    pad bits (§3.5), i.e. exactly what base64-encoding the result gives back. Python's decoder alone
    accepts stray '=' after a complete group."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RefError(f"not base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise RefError(f"not canonical base64: {text!r}")
    return raw


def ref_check_key_name(name: str) -> None:
    # "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters."
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise RefError(f"bad key name {name!r}")


def ref_key_id(name: str, public_key: bytes) -> bytes:
    # key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]
    return hashlib.sha256(name.encode("utf-8") + b"\x0a" + SIG_TYPE_ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class RefVerifier:
    name: str
    key_id: bytes
    public_key: bytes


def ref_vkey(name: str, public_key: bytes) -> str:
    # Verifier key text: <name>+<hex key ID>+<base64(signature type || public key)>
    ref_check_key_name(name)
    return f"{name}+{ref_key_id(name, public_key).hex()}+{base64.b64encode(SIG_TYPE_ED25519 + public_key).decode()}"


def ref_parse_vkey(vkey: str) -> RefVerifier:
    try:
        name, hex_id, b64 = vkey.split("+", 2)
    except ValueError as exc:
        raise RefError("verifier key needs three '+'-separated parts") from exc
    ref_check_key_name(name)
    if len(hex_id) != 8:
        raise RefError("key ID must be 8 hex digits")
    try:
        key_id = bytes.fromhex(hex_id)
    except ValueError as exc:
        raise RefError("malformed verifier key") from exc
    data = ref_b64decode(b64)
    if len(data) != 33 or data[:1] != SIG_TYPE_ED25519:
        raise RefError("not an Ed25519 verifier key")
    if ref_key_id(name, data[1:]) != key_id:
        raise RefError("key ID does not match name and key")
    return RefVerifier(name=name, key_id=key_id, public_key=data[1:])


def ref_sign_note(text: str, *, name: str, seed: bytes) -> str:
    if not text.endswith("\n"):
        raise RefError("note text must end in a newline")
    signing_key = nacl.signing.SigningKey(seed)
    public_key = bytes(signing_key.verify_key)
    signature = signing_key.sign(text.encode("utf-8")).signature
    blob = base64.b64encode(ref_key_id(name, public_key) + signature).decode()
    return text + "\n" + EM_DASH_SPACE + name + " " + blob + "\n"


def ref_open_note(note: str | bytes, verifier: RefVerifier) -> str:
    """Returns the note text once a signature by ``verifier`` is verified; raises RefError otherwise."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RefError("a signed note must be valid UTF-8") from exc
    # "MUST NOT contain any ASCII control characters (those below U+0020) other than newline."
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise RefError("control character in note")
    # "...the text is separated from the signatures by the last empty line in the note."
    cut = note.rfind("\n\n")
    if cut < 0:
        raise RefError("no blank line before the signatures")
    text, block = note[: cut + 1], note[cut + 2:]
    # "...followed by one or more signature lines ...: em dash, space, key name, space, base64, newline."
    if not block or not block.endswith("\n"):
        raise RefError("signature lines must each end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > 100:
        raise RefError("too many signatures")
    verified = 0
    for line in lines:
        if not line.startswith(EM_DASH_SPACE):
            raise RefError(f"malformed signature line {line!r}")
        parts = line[len(EM_DASH_SPACE):].split(" ")
        if len(parts) != 2:
            raise RefError(f"malformed signature line {line!r}")
        name, b64 = parts
        ref_check_key_name(name)
        raw = ref_b64decode(b64)
        if len(raw) < 5:
            raise RefError("signature shorter than a key ID")
        # "Verifiers MUST ignore signatures from unknown keys, even if they share a name or ID (but not both)."
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        # "If the key name and ID match a known key, verifiers MUST verify the signature."
        # "If a signature from a known key fails to verify, clients SHOULD reject the whole note."
        try:
            nacl.signing.VerifyKey(verifier.public_key).verify(text.encode("utf-8"), raw[4:])
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise RefError("signature by the known key does not verify") from exc
        verified += 1
    # "If no signature from a known key verifies successfully, clients MUST reject the note."
    if not verified:
        raise RefError("no signature from a known key")
    return text


@dataclass(frozen=True)
class RefCheckpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]


def ref_verify_checkpoint(note: str, verifier: RefVerifier, *, origin: str | None = None) -> RefCheckpoint:
    text = ref_open_note(note, verifier)  # verify first; only then read the body
    lines = text[:-1].split("\n")
    # "a sequence of at least three non-empty lines"; extension lines "MUST be non-empty"
    if len(lines) < 3 or any(not line for line in lines):
        raise RefError("checkpoint body needs at least three non-empty lines")
    cp_origin, size_line, root_line, *ext = lines
    if origin is not None and cp_origin != origin:
        raise RefError("wrong origin")
    # "ASCII decimal ... with no leading zeroes (unless the tree is empty ...)"
    if not size_line or any(c not in "0123456789" for c in size_line) or (size_line != "0" and size_line[0] == "0"):
        raise RefError("bad tree size")
    root = ref_b64decode(root_line)
    if len(root) != 32:
        raise RefError("an RFC 6962 SHA-256 root is 32 bytes")
    return RefCheckpoint(origin=cp_origin, size=int(size_line), root=root, extensions=tuple(ext))


def ref_checkpoint_body(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    return "\n".join([origin, str(size), base64.b64encode(root).decode(), *extensions]) + "\n"


# ==================================================================================================
# Known-answer vector
# ==================================================================================================

VKEY_SEED = base64.b64decode(VECTOR["ed25519_seed_b64"])


def test_vector_is_self_consistent() -> None:
    # The Go private key string carries the same seed: PRIVATE+KEY+name+hash+base64(0x01 || seed).
    private, key, name, hex_id, b64 = VECTOR["private_key_go_format"].split("+", 4)
    assert (private, key, hex_id) == ("PRIVATE", "KEY", "c74f20a3")
    assert name == VECTOR["name"] and base64.b64decode(b64) == b"\x01" + VKEY_SEED
    assert VECTOR["signed_note"] == VECTOR["note_text"] + "\n" + VECTOR["signature_line"] + "\n"


def test_vector_vkey_string() -> None:
    kp = keypair_from_seed(VKEY_SEED)
    assert vkey_string(VECTOR["name"], kp.public_key) == VECTOR["vkey"]
    assert ref_vkey(VECTOR["name"], kp.public_key) == VECTOR["vkey"]
    parsed = parse_vkey(VECTOR["vkey"])
    assert parsed.name == "PeterNeumann" and parsed.public_key == kp.public_key
    assert parsed.key_hash == bytes.fromhex("c74f20a3")


def test_vector_signature_line_byte_for_byte() -> None:
    kp = keypair_from_seed(VKEY_SEED)
    note = sign_note(VECTOR["note_text"], name=VECTOR["name"], key=kp)
    assert note.encode() == VECTOR["signed_note"].encode()
    assert note.split("\n\n", 1)[1] == VECTOR["signature_line"] + "\n"
    assert ref_sign_note(VECTOR["note_text"], name=VECTOR["name"], seed=VKEY_SEED) == VECTOR["signed_note"]


def test_vector_note_verifies() -> None:
    assert open_note(VECTOR["signed_note"], parse_vkey(VECTOR["vkey"])) == VECTOR["note_text"]
    assert ref_open_note(VECTOR["signed_note"], ref_parse_vkey(VECTOR["vkey"])) == VECTOR["note_text"]
    assert ref_open_note(VECTOR["signed_note"].encode(), ref_parse_vkey(VECTOR["vkey"])) == VECTOR["note_text"]


def test_vector_note_refused_under_another_key() -> None:
    other = vkey_string(VECTOR["name"], fixed_key("not-peter").public_key)
    with pytest.raises(VerificationError):
        open_note(VECTOR["signed_note"], parse_vkey(other))
    with pytest.raises(RefError):
        ref_open_note(VECTOR["signed_note"], ref_parse_vkey(other))


# ==================================================================================================
# Cross-checks between the two implementations
# ==================================================================================================

LOG = fixed_key("ledger")
ORIGIN = "waybill.test/ledger"
VKEY = vkey_string(ORIGIN, LOG.public_key)
ROOT = hashlib.sha256(b"some root").digest()


def tracker_note(size: int = 5, root: bytes = ROOT, extensions: tuple[str, ...] = (), origin: str = ORIGIN,
                 key=LOG) -> str:
    return sign_checkpoint(Checkpoint(origin=origin, size=size, root_hash=root, extensions=extensions),
                           name=origin, key=key)


def test_vkey_strings_agree() -> None:
    assert VKEY == ref_vkey(ORIGIN, LOG.public_key)
    assert ref_parse_vkey(VKEY).public_key == LOG.public_key
    assert parse_vkey(ref_vkey(ORIGIN, LOG.public_key)).public_key == LOG.public_key


def test_tracker_checkpoint_verifies_with_reference() -> None:
    note = tracker_note(size=5, extensions=("ext one", "ext-two"))
    cp = ref_verify_checkpoint(note, ref_parse_vkey(VKEY), origin=ORIGIN)
    assert cp == RefCheckpoint(origin=ORIGIN, size=5, root=ROOT, extensions=("ext one", "ext-two"))


def test_reference_checkpoint_verifies_with_tracker() -> None:
    note = ref_sign_note(ref_checkpoint_body(ORIGIN, 12345, ROOT), name=ORIGIN, seed=LOG.seed)
    cp = verify_checkpoint(note, parse_vkey(VKEY), origin=ORIGIN)
    assert cp == Checkpoint(origin=ORIGIN, size=12345, root_hash=ROOT)


def test_empty_tree_checkpoint() -> None:
    empty = hashlib.sha256(b"").digest()
    note = tracker_note(size=0, root=empty)
    assert note.split("\n")[1] == "0"
    assert ref_verify_checkpoint(note, ref_parse_vkey(VKEY)).size == 0
    assert verify_checkpoint(note, parse_vkey(VKEY)).size == 0


ORIGINS = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789./-_:~ABCZéü日本"), min_size=1,
                  max_size=40)
EXTENSIONS = st.lists(st.text(alphabet=st.sampled_from("abcXYZ019 ./=+—"), min_size=1, max_size=20)
                      .filter(lambda s: s.strip() == s and s), max_size=3)


@settings(max_examples=60, deadline=None)
@given(origin=ORIGINS, size=st.integers(min_value=0, max_value=2**63 - 1),
       root=st.binary(min_size=32, max_size=32), extensions=EXTENSIONS, seed=st.binary(min_size=32, max_size=32))
def test_cross_verification(origin: str, size: int, root: bytes, extensions: list[str], seed: bytes) -> None:
    key = keypair_from_seed(seed)
    vkey = vkey_string(origin, key.public_key)
    assert vkey == ref_vkey(origin, key.public_key)
    mine = tracker_note(size=size, root=root, extensions=tuple(extensions), origin=origin, key=key)
    theirs = ref_sign_note(ref_checkpoint_body(origin, size, root, tuple(extensions)), name=origin, seed=seed)
    assert mine == theirs  # Ed25519 is deterministic: the same checkpoint is the same bytes
    assert ref_verify_checkpoint(mine, ref_parse_vkey(vkey), origin=origin) == \
        RefCheckpoint(origin=origin, size=size, root=root, extensions=tuple(extensions))
    assert verify_checkpoint(theirs, parse_vkey(vkey), origin=origin) == \
        Checkpoint(origin=origin, size=size, root_hash=root, extensions=tuple(extensions))


def test_ledger_checkpoint_verifies_with_reference(sqlite_url: str) -> None:
    from tracker.ledger import Ledger
    from tracker.store import open_store

    store = open_store(sqlite_url)
    try:
        ledger = Ledger.create(store, origin=ORIGIN, ledger_key=LOG, admin_key=fixed_key("admin"), now=T0)
        note = ledger.checkpoint()
        assert ledger.vkey == ref_vkey(ORIGIN, LOG.public_key)
        cp = ref_verify_checkpoint(note, ref_parse_vkey(ledger.vkey), origin=ORIGIN)
        assert cp.size == ledger.size() == 1
        with store.read() as txn:
            (entry,) = list(txn.iter_entries())
        assert cp.root == hashlib.sha256(b"\x00" + entry.leaf_data).digest()
    finally:
        store.close()


# ==================================================================================================
# Tamper tests, run against both implementations
# ==================================================================================================

def _tracker_verify(note: str, vkey: str) -> None:
    verify_checkpoint(note, parse_vkey(vkey), origin=ORIGIN)


def _ref_verify(note: str, vkey: str) -> None:
    ref_verify_checkpoint(note, ref_parse_vkey(vkey), origin=ORIGIN)


IMPLS = [pytest.param(_tracker_verify, VerificationError, id="tracker"),
         pytest.param(_ref_verify, RefError, id="reference")]


def _flip_sig_byte(note: str, index: int) -> str:
    text, line = note[:-1].rsplit("\n", 1)
    prefix, blob = line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[index] ^= 0x01
    return f"{text}\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


def _other_signer_line(name: str = "witness.example/w1", seed_name: str = "witness") -> str:
    note = tracker_note(origin=name, key=fixed_key(seed_name)) if name != ORIGIN else \
        sign_note(ref_checkpoint_body(ORIGIN, 5, ROOT), name=ORIGIN, key=fixed_key(seed_name))
    return note.rsplit("\n", 2)[-2] + "\n"


GOOD = tracker_note()
BODY = ref_checkpoint_body(ORIGIN, 5, ROOT)
assert GOOD.startswith(BODY + "\n\u2014 ")

TAMPERED: dict[str, str] = {
    "size changed": GOOD.replace("\n5\n", "\n6\n", 1),
    "root byte changed": GOOD.replace(base64.b64encode(ROOT).decode(),
                                      base64.b64encode(bytes([ROOT[0] ^ 1]) + ROOT[1:]).decode()),
    "origin changed": GOOD.replace("waybill.test/ledger\n5", "waybill.test/ledgeR\n5", 1),
    "extension line added": GOOD.replace(BODY, BODY + "extra\n", 1),
    "signature bit flipped": _flip_sig_byte(GOOD, 4 + 10),
    "last signature bit flipped": _flip_sig_byte(GOOD, 4 + 63),
    "key id bit flipped": _flip_sig_byte(GOOD, 0),
    "wrong key name": GOOD.replace(f"\u2014 {ORIGIN} ", "\u2014 waybill.test/other ", 1),
    "extra blank line before signatures": GOOD.replace("\n\n", "\n\n\n", 1),
    "extra blank line at end": GOOD + "\n",
    "missing trailing newline": GOOD[:-1],
    "no signatures": BODY + "\n",
    "no blank line": BODY + GOOD.split("\n\n", 1)[1],
    "CRLF": GOOD.replace("\n", "\r\n"),
    "signed by another key": tracker_note(key=fixed_key("impostor")),
    "same name, other key only": BODY + "\n" + _other_signer_line(ORIGIN, "impostor"),
    "hyphen instead of em dash": GOOD.replace("\u2014 ", "-- ", 1),
    "two spaces in signature line": GOOD.replace(f"{ORIGIN} ", f"{ORIGIN}  ", 1),
    "signature truncated": _flip_sig_byte(GOOD, 4).rsplit(" ", 1)[0] + " AAAA\n",
    "good signature then a bad one by the same key": GOOD + _flip_sig_byte(GOOD, 30).rsplit("\n", 2)[-2] + "\n",
    "body not a checkpoint (two lines)": sign_note(f"{ORIGIN}\n5\n", name=ORIGIN, key=LOG),
    "size with leading zero": sign_note(BODY.replace("\n5\n", "\n05\n"), name=ORIGIN, key=LOG),
    "size negative": sign_note(BODY.replace("\n5\n", "\n-5\n"), name=ORIGIN, key=LOG),
    "root not base64": sign_note(f"{ORIGIN}\n5\nnot*base64\n", name=ORIGIN, key=LOG),
    "root 31 bytes": sign_note(ref_checkpoint_body(ORIGIN, 5, ROOT[:31]), name=ORIGIN, key=LOG),
    "other origin, correctly signed": sign_checkpoint(Checkpoint(origin="waybill.test/other", size=5, root_hash=ROOT),
                                                      name=ORIGIN, key=LOG),
}


@pytest.mark.parametrize("verify, error", IMPLS)
def test_untampered_note_verifies(verify: Callable[[str, str], None], error: type) -> None:
    verify(GOOD, VKEY)


@pytest.mark.parametrize("verify, error", IMPLS)
@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_note_is_refused(case: str, verify: Callable[[str, str], None], error: type) -> None:
    note = TAMPERED[case]
    assert note != GOOD
    with pytest.raises(error):
        verify(note, VKEY)


@pytest.mark.parametrize("verify, error", IMPLS)
def test_unknown_signer_lines_are_ignored(verify: Callable[[str, str], None], error: type) -> None:
    witness = _other_signer_line()
    same_name_other_key = _other_signer_line(ORIGIN, "rotated-out")
    verify(GOOD + witness, VKEY)
    verify(BODY + "\n" + witness + GOOD.split("\n\n", 1)[1], VKEY)
    verify(GOOD + same_name_other_key + witness, VKEY)
    # an unknown signer's line with a signature of any length is still not ours to judge
    verify(GOOD + "\u2014 other.example/log " + base64.b64encode(b"\x01\x02\x03\x04" + b"\x00" * 10).decode() + "\n",
           VKEY)


@pytest.mark.parametrize("verify, error", IMPLS)
def test_tracker_and_reference_agree_on_which_key(verify: Callable[[str, str], None], error: type) -> None:
    other = vkey_string(ORIGIN, fixed_key("impostor").public_key)
    with pytest.raises(error):
        verify(GOOD, other)


# --- verify first, then parse --------------------------------------------------------------------

MALFORMED_BODY_BAD_SIG = sign_note(f"{ORIGIN}\nnot-a-size\n", name=ORIGIN, key=fixed_key("impostor"))


def test_tracker_verifies_before_parsing() -> None:
    # The body is not a checkpoint and the signature is not the log's: the refusal must be about the
    # signature — the verifier never got as far as reading the body.
    with pytest.raises(VerificationError) as exc:
        verify_checkpoint(MALFORMED_BODY_BAD_SIG, parse_vkey(VKEY), origin=ORIGIN)
    assert "signature" in exc.value.message
    assert "size" not in exc.value.message and "origin" not in exc.value.message


def test_tracker_never_reads_fields_of_an_unverified_note() -> None:
    calls: list[str] = []

    class SpyVerifier(type(parse_vkey(VKEY))):  # a NoteVerifier that records when it is consulted
        def verify(self, text: bytes, sig: bytes) -> None:
            calls.append("verify")
            raise VerificationError("spy says no")

    spy = SpyVerifier(name=ORIGIN, key_hash=parse_vkey(VKEY).key_hash, public_key=LOG.public_key)
    note = sign_checkpoint(Checkpoint(origin="someone.else/log", size=1, root_hash=ROOT), name=ORIGIN, key=LOG)
    with pytest.raises(VerificationError) as exc:
        verify_checkpoint(note, spy, origin=ORIGIN)  # wrong origin *and* refused signature
    assert calls == ["verify"]
    assert "spy says no" in exc.value.message


def test_reference_verifies_before_parsing() -> None:
    with pytest.raises(RefError) as exc:
        ref_verify_checkpoint(MALFORMED_BODY_BAD_SIG, ref_parse_vkey(VKEY), origin=ORIGIN)
    assert "signature" in str(exc.value)


def test_correctly_signed_but_malformed_body_fails_in_parsing() -> None:
    note = sign_note(f"{ORIGIN}\nnot-a-size\n", name=ORIGIN, key=LOG)
    assert open_note(note, parse_vkey(VKEY)) == f"{ORIGIN}\nnot-a-size\n"
    with pytest.raises(VerificationError) as exc:
        verify_checkpoint(note, parse_vkey(VKEY))
    assert "signature" not in exc.value.message
    with pytest.raises(RefError):
        ref_verify_checkpoint(note, ref_parse_vkey(VKEY))


# --- vkeys and construction ----------------------------------------------------------------------

@pytest.mark.parametrize("vkey", [
    "",
    "name+c74f20a3",
    VECTOR["vkey"].replace("c74f20a3", "c74f20a4"),          # hash does not match
    VECTOR["vkey"].replace("PeterNeumann", "PeterNeumanm"),  # name does not match the hash
    VECTOR["vkey"].replace("+ARpc", "+AhRpc"),               # not base64 of 33 bytes
    VECTOR["vkey"].replace("+ARpc", "+Apc"),
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    VECTOR["vkey"].replace("c74f20a3", "c74f20"),
    # type byte 0x02 instead of 0x01
    "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]).decode(),
])
def test_bad_vkeys_refused_by_both(vkey: str) -> None:
    with pytest.raises(VerificationError):
        parse_vkey(vkey)
    with pytest.raises(RefError):
        ref_parse_vkey(vkey)


def test_checkpoint_round_trip_and_validation() -> None:
    cp = Checkpoint(origin=ORIGIN, size=7, root_hash=ROOT, extensions=("x",))
    assert cp.body() == f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\nx\n"
    assert verify_checkpoint(sign_checkpoint(cp, name=ORIGIN, key=LOG), parse_vkey(VKEY)) == cp
    for bad in (dict(origin="", size=1, root_hash=ROOT), dict(origin="a\nb", size=1, root_hash=ROOT),
                dict(origin=ORIGIN, size=-1, root_hash=ROOT), dict(origin=ORIGIN, size=1, root_hash=ROOT[:31])):
        with pytest.raises(VerificationError):
            Checkpoint(**bad)


def test_sign_note_refuses_bad_text_and_names() -> None:
    for text in ("no newline", "tab\there\n", "esc\x1b\n", "cr\r\n", ""):
        with pytest.raises(VerificationError):
            sign_note(text, name=ORIGIN, key=LOG)
    for name in ("", "a b", "a+b"):
        with pytest.raises(VerificationError):
            sign_note("x\n", name=name, key=LOG)


# ==================================================================================================
# C2SP conformance findings (each was a bug: the tracker accepted or refused the opposite of the spec)
# ==================================================================================================

C2SP = json.loads((VECTORS / "c2sp-signed-note.json").read_text())


def test_c2sp_spec_example_note_verifies() -> None:
    assert open_note(C2SP["example_note"], parse_vkey(C2SP["example_vkey"])) == C2SP["example_text"]
    assert ref_open_note(C2SP["example_note"], ref_parse_vkey(C2SP["example_vkey"])) == C2SP["example_text"]


def test_c2sp_spec_note_with_empty_lines_splits_at_the_last_one() -> None:
    # "The note text MAY contain empty lines; the text is separated from the signatures by the last empty line."
    parsed = parse_note(C2SP["quasimodo_note"])
    assert parsed.text == C2SP["quasimodo_text"]
    assert "\n\n" in parsed.text
    (sig,) = parsed.signatures
    assert sig.name == "quasimodo.example/salvatore"
    assert f"\u2014 {sig.name} " + base64.b64encode(sig.key_id + sig.signature).decode() == \
        C2SP["quasimodo_signature_line"]


TEXT_WITH_EMPTY_LINES = "first paragraph\n\nsecond paragraph\n\n\nthird\n"


@pytest.mark.parametrize("text", [TEXT_WITH_EMPTY_LINES, "\n", "a\n\n", "\n\nb\n"])
def test_note_text_with_empty_lines_verifies(text: str) -> None:
    theirs = ref_sign_note(text, name=ORIGIN, seed=LOG.seed)
    assert open_note(theirs, parse_vkey(VKEY)) == text
    mine = sign_note(text, name=ORIGIN, key=LOG)
    assert mine == theirs
    assert ref_open_note(mine, ref_parse_vkey(VKEY)) == text


def test_note_text_may_hold_non_ascii_spaces_and_symbols() -> None:
    # Only ASCII control characters other than newline are forbidden in a note.
    text = "caf\u00e9\u00a0au lait \u2003 \u200b \u2028 end\x7f\n"
    note = ref_sign_note(text, name=ORIGIN, seed=LOG.seed)
    assert open_note(note, parse_vkey(VKEY)) == text
    assert sign_note(text, name=ORIGIN, key=LOG) == note


def _witness_line(name: str, blob: str) -> str:
    return f"\u2014 {name} {blob}\n"


_W_BLOB = base64.b64encode(b"\x01\x02\x03\x04" + b"\x07" * 64).decode()

MALFORMED_OTHER_SIGNER: dict[str, str] = {
    "'+' in another signer's name": _witness_line("witness.example+w1", _W_BLOB),
    "U+00A0 in another signer's name": _witness_line("witness.example\u00a0w1", _W_BLOB),
    "U+2003 in another signer's name": _witness_line("witness.example\u2003w1", _W_BLOB),
    "ESC in another signer's name": _witness_line("witness\x1b[31m.example", _W_BLOB),
    "tab in another signer's name": _witness_line("witness\t.example", _W_BLOB),
    "empty name": _witness_line("", _W_BLOB),
    "stray '=' after another signer's signature": _witness_line("witness.example/w1", _W_BLOB + "="),
    # "AQIDBAU=" encodes 5 bytes; "AQIDBAV=" sets one of the two pad bits (decodes to the same bytes)
    "non-zero pad bits in another signer's signature": _witness_line("witness.example/w1", "AQIDBAV="),
    "another signer's signature shorter than a key id": _witness_line(
        "witness.example/w1", base64.b64encode(b"\x01\x02\x03\x04").decode()),
    "another signer's signature empty": _witness_line("witness.example/w1", ""),
    "another signer's signature not base64": _witness_line("witness.example/w1", "not*base64"),
    "three fields": _witness_line("witness.example/w1", _W_BLOB + " extra"),
    "NUL in the signature block": _witness_line("witness.example/w1", _W_BLOB).replace("/w1", "/w\x001"),
}


def test_malformed_other_signer_fixtures_are_what_they_say() -> None:
    blob = MALFORMED_OTHER_SIGNER["non-zero pad bits in another signer's signature"].split(" ")[-1].strip()
    assert blob.endswith("=") and base64.b64encode(base64.b64decode(blob)).decode() != blob


@pytest.mark.parametrize("verify, error", IMPLS)
@pytest.mark.parametrize("case", sorted(MALFORMED_OTHER_SIGNER))
def test_malformed_signature_line_of_another_signer_refuses_the_note(case: str, verify: Callable[[str, str], None],
                                                                       error: type) -> None:
    # Go's note.Open and the spec: every line must be well formed, whoever signed it; only *well-formed*
    # lines of unknown keys are ignored. A note our log signed is still refused if any line is malformed.
    line = MALFORMED_OTHER_SIGNER[case]
    for note in (GOOD + line, BODY + "\n" + line + GOOD.split("\n\n", 1)[1]):
        with pytest.raises(error):
            verify(note, VKEY)
    with pytest.raises(VerificationError):
        parse_note(GOOD + line)


@pytest.mark.parametrize("verify, error", IMPLS)
def test_control_character_in_note_text_is_refused(verify: Callable[[str, str], None], error: type) -> None:
    note = ref_sign_note(ref_checkpoint_body(ORIGIN, 5, ROOT, ("ext \x1b[2J",)), name=ORIGIN, seed=LOG.seed)
    with pytest.raises(error):
        verify(note, VKEY)


@pytest.mark.parametrize("vkey", [
    VECTOR["vkey"] + "=",
    VECTOR["vkey"] + "==",
    C2SP["example_vkey"] + "=",
])
def test_vkey_base64_is_strict(vkey: str) -> None:
    assert base64.b64decode(vkey.split("+")[2], validate=True)  # Python's lenient decoder takes it
    with pytest.raises(VerificationError):
        parse_vkey(vkey)
    with pytest.raises(RefError):
        ref_parse_vkey(vkey)


def _with_sig_blob(note: str, change: Callable[[str], str]) -> str:
    text, line = note[:-1].rsplit("\n", 1)
    prefix, blob = line.rsplit(" ", 1)
    return f"{text}\n{prefix} {change(blob)}\n"


@pytest.mark.parametrize("verify, error", IMPLS)
@pytest.mark.parametrize("change", [lambda b: b + "=", lambda b: b[:-1] + "==", lambda b: b.rstrip("=") ],
                         ids=["stray '='", "extra padding", "padding stripped"])
def test_log_signature_base64_is_strict(change: Callable[[str], str], verify: Callable[[str, str], None],
                                        error: type) -> None:
    note = _with_sig_blob(GOOD, change)
    assert note != GOOD
    with pytest.raises(error):
        verify(note, VKEY)


@pytest.mark.parametrize("verify, error", IMPLS)
def test_checkpoint_root_base64_is_strict(verify: Callable[[str, str], None], error: type) -> None:
    root_line = base64.b64encode(ROOT).decode()
    note = sign_note(f"{ORIGIN}\n5\n{root_line}=\n", name=ORIGIN, key=LOG)
    with pytest.raises(error):
        verify(note, VKEY)


@pytest.mark.parametrize("verify, error", IMPLS)
@pytest.mark.parametrize("body", [
    f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\n",
    f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\next\n\nmore\n",
    f"{ORIGIN}\n5\n\n{base64.b64encode(ROOT).decode()}\n",
    f"\n{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n",
], ids=["empty extension line", "empty line between extensions", "empty line before root", "empty origin"])
def test_checkpoint_lines_must_be_non_empty(body: str, verify: Callable[[str, str], None], error: type) -> None:
    # Now that a note's text may hold empty lines, the checkpoint parser must refuse them itself.
    note = ref_sign_note(body, name=ORIGIN, seed=LOG.seed)
    assert open_note(note, parse_vkey(VKEY)) == body
    with pytest.raises(error):
        verify(note, VKEY)


def test_checkpoint_extension_lines_are_kept_and_signed() -> None:
    note = ref_sign_note(ref_checkpoint_body(ORIGIN, 5, ROOT, ("opaque one", "two\u00a0+/=")), name=ORIGIN,
                         seed=LOG.seed)
    cp = verify_checkpoint(note, parse_vkey(VKEY), origin=ORIGIN)
    assert cp.extensions == ("opaque one", "two\u00a0+/=")
    assert cp.body() == open_note(note, parse_vkey(VKEY))


def test_open_note_with_several_verifiers_returns_each_verified_signer() -> None:
    witness = fixed_key("witness")
    both = GOOD + sign_note(BODY, name="witness.example/w1", key=witness).rsplit("\n", 2)[-2] + "\n"
    w_vkey = parse_vkey(vkey_string("witness.example/w1", witness.public_key))
    text, signers = open_note_signed_by(both, [parse_vkey(VKEY), w_vkey])
    assert text == BODY and [v.name for v in signers] == [ORIGIN, "witness.example/w1"]
    text, signers = open_note_signed_by(GOOD, [parse_vkey(VKEY), w_vkey])
    assert [v.name for v in signers] == [ORIGIN]
