"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.

Pure functions, no storage. Storage keeps every *perfect* subtree hash addressed as ``(level, index)``
(covering leaves ``[index << level, (index + 1) << level)``); every hash a proof needs is a range hash
``MTH(D[start:end])`` that decomposes into O(log n) such nodes, so proofs cost O(log n) reads and an
append costs O(log n) work via the compact range (the frontier of perfect subtrees).
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left
from typing import Callable, Iterable, Mapping, Sequence

from .errors import VerificationError

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "leaf_hash",
    "node_hash",
    "NodeId",
    "CompactRange",
    "frontier_nodes",
    "range_nodes",
    "range_hash",
    "fold_nodes",
    "inclusion_ranges",
    "consistency_ranges",
    "verify_inclusion",
    "verify_consistency",
    "root_from_inclusion",
    "multi_inclusion_ranges",
    "root_from_leaves",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
NodeId = tuple[int, int]  # (level, index)

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """Largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def frontier_nodes(size: int) -> list[NodeId]:
    """The perfect subtrees a tree of ``size`` leaves decomposes into, left (largest) to right."""
    out: list[NodeId] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


class CompactRange:
    """The right edge of the tree: enough to append a leaf and compute the root in O(log n).

    ``append`` returns every perfect node that the new leaf completes, for the store to keep.
    """

    __slots__ = ("size", "_hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError("a compact range needs one hash per set bit of its size")
        self.size = size
        self._hashes = list(hashes)  # aligned with frontier_nodes(size)

    @classmethod
    def from_store(cls, size: int, get: Callable[[list[NodeId]], Mapping[NodeId, bytes]]) -> "CompactRange":
        ids = frontier_nodes(size)
        found = get(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise VerificationError(f"the stored tree lacks node {missing[0]} of the frontier at size {size}")
        return cls(size, [found[i] for i in ids])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        made = [(0, index, leaf)]
        h, level, idx = leaf, 0, index
        while idx & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            idx >>= 1
            made.append((level, idx, h))
        self._hashes.append(h)
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        h = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            h = node_hash(left, h)
        return h


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect nodes that ``MTH(D[start:end])`` is built from, for ranges arising in RFC 6962 proofs."""
    out: list[NodeId] = []
    while end > start:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            out.append((level, start >> level))
            break
        k = _split(size)
        out.append(((k.bit_length() - 1), start // k))
        start += k
    return out


def range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """``MTH(D[start:end])`` from perfect node hashes (which must include ``range_nodes(start, end)``)."""
    return fold_nodes(range_nodes(start, end), nodes)


def fold_nodes(ids: Sequence[NodeId], nodes: Mapping[NodeId, bytes]) -> bytes:
    """The hash of a range from its ``range_nodes`` decomposition (for callers that already have it)."""
    parts = [nodes[n] for n in ids]
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 6962 §2.1.1 PATH(index, D[0:size]) as the leaf ranges whose hashes form the proof, bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """RFC 6962 §2.1.2 PROOF(size1, D[0:size2]) as leaf ranges, in proof order."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, size2, size1, True
    while True:
        if m == end - start:
            if not complete:
                out.append((start, end))
            break
        k = _split(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            complete = False
    out.reverse()
    return out


def _check_hashes(hashes: Iterable[bytes], what: str) -> None:
    for h in hashes:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise VerificationError(f"{what}: every hash must be {HASH_SIZE} bytes")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` implies for ``leaf`` at ``index``; raises on misuse."""
    _check_hashes([leaf, *proof], "inclusion proof")
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raises VerificationError unless ``proof`` shows ``leaf`` at ``index`` in the tree with ``root``."""
    _check_hashes([root], "inclusion proof root")
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise VerificationError(f"inclusion proof for leaf {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2. Raises VerificationError unless the tree of ``size1`` is a prefix of ``size2``."""
    _check_hashes(proof, "consistency proof")
    if size1 <= 0:
        raise VerificationError("a consistency proof from an empty tree proves nothing")
    if size1 > size2:
        raise VerificationError(f"size {size1} is larger than {size2}: the log cannot shrink")
    if size1 == size2:
        if proof:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        # Equal sizes compare the roots as given (the transparency-dev vectors expect this).
        if root1 != root2:
            raise VerificationError(f"two different roots for size {size1}")
        return
    _check_hashes([root1, root2], "consistency proof roots")
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to the root of size {size2}")


def multi_inclusion_ranges(indexes: Sequence[int], size: int) -> list[tuple[int, int]]:
    """For many leaves at once (sorted, distinct ``indexes`` in a tree of ``size``): the leaf ranges holding none
    of them whose hashes, with the leaves' own hashes, rebuild the root. Shared parts of the single proofs are
    counted once, so k leaves cost O(k log(n/k)) hashes, not k log n."""
    out: list[tuple[int, int]] = []

    def walk(lo: int, hi: int, a: int, b: int) -> None:
        if a == b:
            out.append((lo, hi))
            return
        if hi - lo == 1:
            return
        mid = lo + _split(hi - lo)
        cut = bisect_left(indexes, mid, a, b)
        walk(lo, mid, a, cut)
        walk(mid, hi, cut, b)

    if indexes and not (0 <= indexes[0] and indexes[-1] < size):
        raise ValueError(f"leaves {indexes[0]}..{indexes[-1]} are not all in a tree of size {size}")
    walk(0, size, 0, len(indexes))
    return out


def root_from_leaves(size: int, leaves: Mapping[int, bytes], ranges: Mapping[tuple[int, int], bytes]) -> bytes:
    """The root of the tree of ``size`` from leaf hashes by index and the hashes of the
    ``multi_inclusion_ranges`` of those indexes. Equal to ``root`` only if every leaf is in that tree."""
    indexes = sorted(leaves)

    def walk(lo: int, hi: int, a: int, b: int) -> bytes:
        if a == b:
            return ranges[(lo, hi)]
        if hi - lo == 1:
            return leaves[lo]
        mid = lo + _split(hi - lo)
        cut = bisect_left(indexes, mid, a, b)
        return node_hash(walk(lo, mid, a, cut), walk(mid, hi, cut, b))

    if size == 0:
        return EMPTY_ROOT
    return walk(0, size, 0, len(indexes))
