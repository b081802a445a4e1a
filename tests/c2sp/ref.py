"""Independent reference code for the C2SP tests, written from the specs and RFC 6962 (it imports nothing
from tracker/): Merkle tree hashes and proofs straight from the RFC's recursive definitions, the tlog-tiles
layout, and timestamped Ed25519 cosignatures on pynacl directly."""
from __future__ import annotations

import base64
import hashlib
import struct

import nacl.signing


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over already-hashed leaves."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return node(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    n = len(hashes)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def _subproof(m: int, hashes: list[bytes], b: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if b else [mth(hashes)]
    k = _k(n)
    if m <= k:
        return _subproof(m, hashes[:k], b) + [mth(hashes[k:])]
    return _subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def consistency(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(m, D[n])."""
    return _subproof(m, hashes, True) if 0 < m < len(hashes) else []


# --- tlog-tiles layout ---------------------------------------------------------------------------

def tile_path(level: int | str, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` with N in 3-digit groups, all but the last prefixed 'x'."""
    groups = []
    n = index
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    encoded = "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])
    return f"tile/{level}/{encoded}" + (f".p/{width}" if width is not None else "")


def tile_hashes(level: int, index: int, hashes: list[bytes], width: int) -> bytes:
    """The tile (level, index) of width ``width`` over leaf hashes ``hashes`` (spec formula)."""
    span = 256 ** level
    out = b""
    for i in range(width):
        start = (index * 256 + i) * span
        out += mth(hashes[start:start + span])
    return out


def tiles_for_size(size: int) -> list[tuple[int, int, int | None]]:
    """Every (level, index, partial width or None) tile a tree of ``size`` is served as."""
    out = []
    level = 0
    while True:
        count = size // 256 ** level  # hashes at this tile level
        if count == 0:
            break
        full, rest = divmod(count, 256)
        out += [(level, n, None) for n in range(full)]
        if rest:
            out.append((level, full, rest))
        level += 1
    return out


def entry_bundle(entries: list[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(e)) + e for e in entries)


# --- cosignatures --------------------------------------------------------------------------------

def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def cosignature_line(body: str, *, name: str, seed: bytes, timestamp: int) -> str:
    sk = nacl.signing.SigningKey(seed)
    msg = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
    sig = struct.pack(">Q", timestamp) + sk.sign(msg).signature
    return f"\u2014 {name} " + base64.b64encode(key_id(name, 4, bytes(sk.verify_key)) + sig).decode()


def verify_cosignature_line(body: str, line: str, *, name: str, public_key: bytes) -> int:
    """Returns the timestamp; raises on any mismatch."""
    prefix, blob = line.rsplit(" ", 1)
    assert prefix == f"\u2014 {name}", prefix
    raw = base64.b64decode(blob, validate=True)
    assert base64.b64encode(raw).decode() == blob
    assert raw[:4] == key_id(name, 4, public_key)
    (ts,) = struct.unpack(">Q", raw[4:12])
    nacl.signing.VerifyKey(public_key).verify(f"cosignature/v1\ntime {ts}\n{body}".encode(), raw[12:])
    return ts


def vkey(name: str, sig_type: int, public_key: bytes) -> str:
    return f"{name}+{key_id(name, sig_type, public_key).hex()}+" + \
        base64.b64encode(bytes([sig_type]) + public_key).decode()
