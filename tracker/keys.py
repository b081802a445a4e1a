"""Ed25519 keys, signatures and key files. The only module that imports pynacl: every other module
works with raw bytes, and pynacl's exceptions are translated here into the core's error tree.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from .errors import KeyFileError, VerificationError

__all__ = [
    "KeyPair",
    "Verifier",
    "key_id",
    "generate_keypair",
    "keypair_from_seed",
    "verifier_for",
    "verify_signature",
    "verify_many",
    "verify_many_later",
    "verify_threads",
    "SignatureJob",
    "is_valid_signature",
    "write_key_file",
    "read_key_file",
    "public_key_from_b64",
]


def key_id(public_key: bytes) -> str:
    """SPEC §1: lowercase hex of the first 8 bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPair:
    """A device or ledger key. ``seed`` is the 32-byte Ed25519 private seed; repr never shows it."""

    seed: bytes = field(repr=False)
    public_key: bytes
    _signer: nacl.signing.SigningKey = field(repr=False, compare=False)

    @property
    def keyid(self) -> str:
        return key_id(self.public_key)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message).signature


def keypair_from_seed(seed: bytes) -> KeyPair:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise KeyFileError("an Ed25519 private key is a 32-byte seed")
    signer = nacl.signing.SigningKey(seed)
    return KeyPair(seed=seed, public_key=bytes(signer.verify_key), _signer=signer)


def generate_keypair() -> KeyPair:
    return keypair_from_seed(nacl.utils.random(32))


class Verifier:
    """A parsed public key, kept so hot loops (ledger audit, ingest) do not re-parse it per signature."""

    __slots__ = ("public_key", "keyid", "_key")

    def __init__(self, public_key: bytes) -> None:
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise VerificationError("an Ed25519 public key is 32 bytes")
        self.public_key = public_key
        self.keyid = key_id(public_key)
        try:
            self._key = nacl.signing.VerifyKey(public_key)
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise VerificationError("not a valid Ed25519 public key") from exc

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raises VerificationError unless ``signature`` is this key's signature over ``message``."""
        if len(signature) != 64:
            raise VerificationError("an Ed25519 signature is 64 bytes")
        try:
            self._key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise VerificationError("signature does not verify") from exc

    def is_valid(self, message: bytes, signature: bytes) -> bool:
        try:
            self.verify(message, signature)
        except VerificationError:
            return False
        return True


_VERIFIERS: dict[bytes, Verifier] = {}


def verifier_for(public_key: bytes) -> Verifier:
    """A cached Verifier: the same few hundred party keys sign millions of statements."""
    v = _VERIFIERS.get(public_key)
    if v is None:
        if len(_VERIFIERS) > 100_000:
            _VERIFIERS.clear()
        v = _VERIFIERS[public_key] = Verifier(public_key)
    return v


SignatureJob = tuple[bytes, bytes, bytes]  # (public key, message, signature)
PARALLEL_MIN = 64  # below this many signatures, handing work to threads costs more than it saves
_pool: tuple[int, ThreadPoolExecutor] | None = None


def verify_threads() -> int:
    """Threads for bulk verification: the cores this process may use (at most 8), or WAYBILL_VERIFY_THREADS."""
    configured = os.environ.get("WAYBILL_VERIFY_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool
    # A pool made before a fork (gunicorn preloading the app) has no threads in the child: make a new one.
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=threads, thread_name_prefix="waybill-verify"))
    return _pool[1]


def _valid_all(jobs: Sequence[SignatureJob]) -> list[bool]:
    out = []
    for public_key, message, signature in jobs:
        try:
            out.append(verifier_for(public_key).is_valid(message, signature))
        except VerificationError:  # not a usable public key
            out.append(False)
    return out


def verify_many(jobs: Sequence[SignatureJob]) -> list[bool]:
    """Whether each (public key, message, signature) verifies, spread over several cores: libsodium runs
    without the GIL (cffi releases it around the call), so bulk ingest and audits need not be bound by one
    core's Ed25519 rate."""
    threads = verify_threads()
    if len(jobs) < PARALLEL_MIN or threads < 2:
        return _valid_all(jobs)
    step = -(-len(jobs) // threads)
    chunks = [jobs[i:i + step] for i in range(0, len(jobs), step)]
    pool = _executor(threads)
    futures = [pool.submit(_valid_all, chunk) for chunk in chunks[1:]]
    out = _valid_all(chunks[0])  # this thread takes a share too
    for future in futures:
        out.extend(future.result())
    return out


def verify_many_later(jobs: Sequence[SignatureJob]) -> Callable[[], list[bool]]:
    """Start verifying ``jobs`` on the verification threads and return how to collect the results, so the
    caller can do its own (GIL-bound) work meanwhile: the audit parses the next chunk while this one verifies."""
    threads = verify_threads()
    if len(jobs) < PARALLEL_MIN or threads < 2:
        return lambda: _valid_all(jobs)
    step = -(-len(jobs) // threads)
    pool = _executor(threads)
    futures = [pool.submit(_valid_all, jobs[i:i + step]) for i in range(0, len(jobs), step)]
    return lambda: [ok for future in futures for ok in future.result()]


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    verifier_for(public_key).verify(message, signature)


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        verify_signature(public_key, message, signature)
    except VerificationError:
        return False
    return True


def public_key_from_b64(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise VerificationError("public key is not base64") from exc
    if len(raw) != 32:
        raise VerificationError("an Ed25519 public key is 32 bytes")
    return raw


# --- key files (SPEC §6) ---------------------------------------------------------------------------

_KDF_OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_KDF_MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def write_key_file(path: str | os.PathLike[str], keypair: KeyPair, *, passphrase: str | None = None,
                   overwrite: bool = False) -> Path:
    """Write a SPEC §6 key file with mode 0600 (created so, never widened then narrowed)."""
    path = Path(path)
    doc: dict[str, object] = {"keyid": keypair.keyid, "public_key": keypair.public_key_b64}
    if passphrase:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box_key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                                           opslimit=_KDF_OPS, memlimit=_KDF_MEM)
        sealed = nacl.secret.SecretBox(box_key).encrypt(keypair.seed)
        doc["encrypted_private_key"] = base64.b64encode(bytes(sealed)).decode()
        doc["kdf"] = {"name": "argon2id", "salt": base64.b64encode(salt).decode(),
                      "opslimit": _KDF_OPS, "memlimit": _KDF_MEM}
        doc["cipher"] = "xsalsa20poly1305"
    else:
        doc["private_key"] = base64.b64encode(keypair.seed).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from exc
    os.fchmod(fd, 0o600)  # an overwritten file keeps its old mode: narrow it before the secret goes in
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    os.chmod(path, 0o600)
    return path


def read_key_file(path: str | os.PathLike[str], *, passphrase: str | None = None) -> KeyPair:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is not readable JSON") from exc
    if not isinstance(doc, dict):
        raise KeyFileError(f"key file {path} is not a JSON object")
    try:
        if "private_key" in doc:
            seed = base64.b64decode(doc["private_key"], validate=True)
        elif "encrypted_private_key" in doc:
            if not passphrase:
                raise KeyFileError(f"key file {path} is passphrase-protected: give the passphrase "
                                   "(--passphrase-file or WAYBILL_KEY_PASSPHRASE)")
            kdf = doc["kdf"]
            box_key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(),
                                               base64.b64decode(kdf["salt"]), opslimit=int(kdf["opslimit"]),
                                               memlimit=int(kdf["memlimit"]))
            try:
                seed = nacl.secret.SecretBox(box_key).decrypt(base64.b64decode(doc["encrypted_private_key"]))
            except nacl.exceptions.CryptoError as exc:
                raise KeyFileError(f"wrong passphrase for key file {path}") from exc
        else:
            raise KeyFileError(f"key file {path} holds no private key")
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is malformed: {exc}") from exc
    pair = keypair_from_seed(seed)
    if doc.get("public_key") and doc["public_key"] != pair.public_key_b64:
        raise KeyFileError(f"key file {path}: public_key does not match the private key")
    return pair
