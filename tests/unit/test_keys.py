"""Ed25519 keys, key ids (SPEC §1) and key files (SPEC §6)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest

from tracker.errors import KeyFileError, VerificationError
from tracker.keys import (
    KeyPair,
    generate_keypair,
    is_valid_signature,
    key_id,
    keypair_from_seed,
    public_key_from_b64,
    read_key_file,
    verify_signature,
    write_key_file,
)

# RFC 8032 §7.1 TEST 1: a fixed seed, its public key and the signature of the empty message.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUB = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_keypair_from_seed_matches_rfc8032() -> None:
    kp = keypair_from_seed(RFC8032_SEED)
    assert kp.public_key == RFC8032_PUB
    assert kp.sign(b"") == RFC8032_SIG
    verify_signature(RFC8032_PUB, b"", RFC8032_SIG)


def test_key_id_is_first_8_bytes_of_sha256_lower_hex() -> None:
    expected = hashlib.sha256(RFC8032_PUB).hexdigest()[:16]
    assert key_id(RFC8032_PUB) == expected
    kp = keypair_from_seed(RFC8032_SEED)
    assert kp.keyid == expected
    assert len(kp.keyid) == 16 and kp.keyid == kp.keyid.lower()
    assert all(c in "0123456789abcdef" for c in kp.keyid)
    assert kp.public_key_b64 == base64.b64encode(RFC8032_PUB).decode()


def test_key_id_differs_per_key() -> None:
    ids = {generate_keypair().keyid for _ in range(20)}
    assert len(ids) == 20


def test_bad_seed_is_a_key_file_error() -> None:
    for bad in (b"", b"\x00" * 31, b"\x00" * 33, "x" * 32):
        with pytest.raises(KeyFileError):
            keypair_from_seed(bad)  # type: ignore[arg-type]


def test_verify_signature_raises_on_tamper() -> None:
    kp = keypair_from_seed(RFC8032_SEED)
    sig = kp.sign(b"message")
    verify_signature(kp.public_key, b"message", sig)
    assert is_valid_signature(kp.public_key, b"message", sig)
    bad_sig = bytes([sig[0] ^ 1]) + sig[1:]
    for pub, msg, s in [(kp.public_key, b"messagE", sig), (kp.public_key, b"message", bad_sig),
                        (generate_keypair().public_key, b"message", sig), (kp.public_key, b"message", sig[:63])]:
        with pytest.raises(VerificationError):
            verify_signature(pub, msg, s)
        assert is_valid_signature(pub, msg, s) is False
    with pytest.raises(VerificationError):
        verify_signature(kp.public_key[:31], b"message", sig)


def test_public_key_from_b64() -> None:
    assert public_key_from_b64(base64.b64encode(RFC8032_PUB).decode()) == RFC8032_PUB
    for bad in ("not base64!", base64.b64encode(b"\x01" * 31).decode(), ""):
        with pytest.raises(VerificationError):
            public_key_from_b64(bad)


def test_private_key_never_in_repr() -> None:
    kp = keypair_from_seed(RFC8032_SEED)
    text = repr(kp) + str(kp)
    for spelling in (RFC8032_SEED.hex(), base64.b64encode(RFC8032_SEED).decode(), repr(RFC8032_SEED),
                     str(RFC8032_SEED), RFC8032_SEED.hex()[:16]):
        assert spelling not in text
    # but it does say which key it is
    assert "KeyPair" in text


# --- key files ------------------------------------------------------------------------------------

def test_key_file_plain_round_trip_and_format(tmp_path) -> None:
    kp = keypair_from_seed(RFC8032_SEED)
    path = write_key_file(tmp_path / "keys" / "dev.key", kp)
    assert path == tmp_path / "keys" / "dev.key"
    doc = json.loads(path.read_text())
    assert doc == {"keyid": kp.keyid, "public_key": base64.b64encode(RFC8032_PUB).decode(),
                   "private_key": base64.b64encode(RFC8032_SEED).decode()}
    back = read_key_file(path)
    assert back.seed == RFC8032_SEED and back.public_key == RFC8032_PUB
    assert back.sign(b"x") == kp.sign(b"x")


def test_key_file_mode_is_0600(tmp_path) -> None:
    old = os.umask(0)  # even with a permissive umask the file must not be readable by others
    try:
        plain = write_key_file(tmp_path / "plain.key", generate_keypair())
        sealed = write_key_file(tmp_path / "sealed.key", generate_keypair(), passphrase="pw")
    finally:
        os.umask(old)
    for p in (plain, sealed):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_key_file_refuses_to_overwrite(tmp_path) -> None:
    path = tmp_path / "dev.key"
    first = generate_keypair()
    write_key_file(path, first)
    before = path.read_bytes()
    with pytest.raises(KeyFileError) as exc:
        write_key_file(path, generate_keypair())
    assert "exists" in exc.value.message
    assert path.read_bytes() == before
    assert read_key_file(path).public_key == first.public_key
    # an explicit overwrite is possible, and keeps the mode
    second = generate_keypair()
    write_key_file(path, second, overwrite=True)
    assert read_key_file(path).public_key == second.public_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_overwrite_narrows_an_existing_wide_mode(tmp_path) -> None:
    path = tmp_path / "dev.key"
    path.write_text("{}")
    path.chmod(0o644)
    write_key_file(path, generate_keypair(), overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_is_never_readable_by_others_while_the_secret_is_written(tmp_path, monkeypatch) -> None:
    """write_key_file promises 0600 "created so, never widened then narrowed": the private key must not be
    written into a file others can read, even for a moment — also when overwriting a file that was 0644."""
    import tracker.keys as keys_module

    path = tmp_path / "dev.key"
    path.write_text("{}")
    path.chmod(0o644)
    modes: list[int] = []
    real_json = keys_module.json

    class WatchingJson:
        def __getattr__(self, name):
            return getattr(real_json, name)

        @staticmethod
        def dump(obj, fh, **kw):
            modes.append(stat.S_IMODE(os.fstat(fh.fileno()).st_mode))
            return real_json.dump(obj, fh, **kw)

    monkeypatch.setattr(keys_module, "json", WatchingJson())
    write_key_file(path, generate_keypair(), overwrite=True)
    write_key_file(tmp_path / "new.key", generate_keypair())
    assert len(modes) == 2
    assert modes == [0o600, 0o600], f"mode while the private key was being written: {[oct(m) for m in modes]}"


def test_passphrase_round_trip(tmp_path) -> None:
    kp = keypair_from_seed(RFC8032_SEED)
    path = write_key_file(tmp_path / "sealed.key", kp, passphrase="correct horse")
    raw = path.read_text()
    doc = json.loads(raw)
    assert "private_key" not in doc
    assert doc["keyid"] == kp.keyid and doc["public_key"] == kp.public_key_b64
    assert doc["encrypted_private_key"]
    assert base64.b64encode(RFC8032_SEED).decode() not in raw and RFC8032_SEED.hex() not in raw
    back = read_key_file(path, passphrase="correct horse")
    assert back.seed == RFC8032_SEED and back.public_key == RFC8032_PUB


def test_passphrase_wrong_or_missing(tmp_path) -> None:
    path = write_key_file(tmp_path / "sealed.key", generate_keypair(), passphrase="correct horse")
    with pytest.raises(KeyFileError) as exc:
        read_key_file(path, passphrase="wrong horse")
    assert "passphrase" in exc.value.message
    with pytest.raises(KeyFileError) as exc:
        read_key_file(path)
    assert "passphrase" in exc.value.message


def test_read_key_file_errors(tmp_path) -> None:
    with pytest.raises(KeyFileError):
        read_key_file(tmp_path / "missing.key")
    cases = {
        "notjson.key": "{",
        "list.key": "[]",
        "nokey.key": json.dumps({"keyid": "00", "public_key": "AA=="}),
        "badb64.key": json.dumps({"private_key": "***"}),
        "short.key": json.dumps({"private_key": base64.b64encode(b"\x01" * 16).decode()}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(KeyFileError):
            read_key_file(tmp_path / name)


def test_read_key_file_detects_mismatched_public_key(tmp_path) -> None:
    path = write_key_file(tmp_path / "dev.key", generate_keypair())
    doc = json.loads(path.read_text())
    doc["public_key"] = generate_keypair().public_key_b64
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError):
        read_key_file(path)


def test_keypair_is_frozen() -> None:
    kp = generate_keypair()
    assert isinstance(kp, KeyPair)
    with pytest.raises(Exception):
        kp.public_key = b"\x00" * 32  # type: ignore[misc]
