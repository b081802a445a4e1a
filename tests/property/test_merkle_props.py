"""Property tests for tracker.merkle with a naive RFC 6962 §2.1 reference tree as the oracle.

The oracle is the RFC's recursion written out literally (MTH, PATH, PROOF/SUBPROOF); the tracker builds
roots with a CompactRange and proofs with inclusion_ranges/consistency_ranges + range_hash over the nodes
the CompactRange emitted, as the ledger does over its stored nodes.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tracker import merkle
from tracker.errors import VerificationError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the oracle: RFC 6962 §2.1, literally --------------------------------------------------------

def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = tuple(leaves)
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.leaves[start]).digest()
        k = _k(n)
        return hashlib.sha256(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end)).digest()

    def root(self, size: int) -> bytes:
        return self.mth(0, size)

    def leaf(self, m: int) -> bytes:
        return self.mth(m, m + 1)

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]) with m relative to start."""
        n = end - start
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return self.path(m, start, start + k) + [self.mth(start + k, end)]
        return self.path(m - k, start + k, end) + [self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _k(n)
        if m <= k:
            return self.subproof(m, start, start + k, b) + [self.mth(start + k, end)]
        return self.subproof(m - k, start + k, end, False) + [self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)


def test_oracle_knows_the_rfc_example_shape() -> None:
    # RFC 6962 §2.1.3's seven-leaf example: PATH(0) = [b, h, l], PROOF(3) = [c, d, g, l], PROOF(4) = [l],
    # PROOF(6) = [i, j, k]. Checks the oracle itself before it judges anything.
    t = ReferenceTree([bytes([i]) for i in range(7)])
    assert t.path(0, 0, 7) == [t.mth(1, 2), t.mth(2, 4), t.mth(4, 7)]
    assert t.proof(3, 7) == [t.mth(2, 3), t.mth(3, 4), t.mth(0, 2), t.mth(4, 7)]
    assert t.proof(4, 7) == [t.mth(4, 7)]
    assert t.proof(6, 7) == [t.mth(4, 6), t.mth(6, 7), t.mth(0, 4)]  # the RFC's [i, j, k]


# --- the tracker's side --------------------------------------------------------------------------

class Built:
    """Leaves appended to a CompactRange; the roots after each append; every node it emitted."""

    def __init__(self, leaves: list[bytes]) -> None:
        cr = merkle.CompactRange()
        self.roots = [cr.root()]
        self.nodes: dict[merkle.NodeId, bytes] = {}
        for data in leaves:
            for level, idx, h in cr.append(merkle.leaf_hash(data)):
                assert (level, idx) not in self.nodes, "a node was emitted twice"
                self.nodes[(level, idx)] = h
            self.roots.append(cr.root())

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return [merkle.range_hash(a, b, self.nodes) for a, b in merkle.inclusion_ranges(index, size)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        return [] if m == n else [merkle.range_hash(a, b, self.nodes)
                                  for a, b in merkle.consistency_ranges(m, n)]


LEAVES = st.lists(st.binary(max_size=6), max_size=24)
NONEMPTY = st.lists(st.binary(max_size=6), min_size=1, max_size=24)
DISTINCT = st.lists(st.binary(max_size=6), min_size=2, max_size=24, unique=True)


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@SETTINGS
@given(LEAVES)
def test_compact_range_roots_match_oracle_at_every_size(leaves: list[bytes]) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    assert len(built.roots) == len(leaves) + 1
    for size, root in enumerate(built.roots):
        assert root == ref.root(size)
        if size:
            assert merkle.range_hash(0, size, built.nodes) == ref.root(size)


@SETTINGS
@given(LEAVES)
def test_stored_nodes_are_exactly_the_perfect_subtrees(leaves: list[bytes]) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    expected = {(level, i): ref.mth(i << level, (i + 1) << level)
                for level in range(len(leaves).bit_length()) for i in range(len(leaves) >> level)}
    assert built.nodes == expected


@SETTINGS
@given(NONEMPTY)
def test_every_inclusion_proof_verifies_against_every_later_root(leaves: list[bytes]) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    for size in range(1, len(leaves) + 1):
        for index in range(size):
            proof = built.inclusion(index, size)
            assert proof == ref.path(index, 0, size)
            leaf = merkle.leaf_hash(leaves[index])
            assert merkle.verify_inclusion(leaf, index, size, proof, ref.root(size)) is None


@SETTINGS
@given(NONEMPTY)
def test_every_consistency_proof_verifies(leaves: list[bytes]) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    for n in range(1, len(leaves) + 1):
        for m in range(1, n + 1):
            proof = built.consistency(m, n)
            assert proof == ref.proof(m, n)
            assert merkle.verify_consistency(m, n, ref.root(m), ref.root(n), proof) is None


@SETTINGS
@given(NONEMPTY, st.data())
def test_inclusion_bit_flips_are_caught(leaves: list[bytes], data: st.DataObject) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = built.inclusion(index, size)
    leaf, root = merkle.leaf_hash(leaves[index]), ref.root(size)
    merkle.verify_inclusion(leaf, index, size, proof, root)
    targets = ["leaf", "root"] + [f"proof{i}" for i in range(len(proof))]
    target = data.draw(st.sampled_from(targets), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == "leaf":
        leaf = _flip(leaf, bit)
    elif target == "root":
        root = _flip(root, bit)
    else:
        i = int(target[5:])
        proof = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1:]
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@SETTINGS
@given(NONEMPTY, st.data())
def test_consistency_bit_flips_are_caught(leaves: list[bytes], data: st.DataObject) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    n = data.draw(st.integers(1, len(leaves)), label="n")
    m = data.draw(st.integers(1, n), label="m")
    proof = built.consistency(m, n)
    root1, root2 = ref.root(m), ref.root(n)
    merkle.verify_consistency(m, n, root1, root2, proof)
    target = data.draw(st.sampled_from(["root1", "root2"] + [f"proof{i}" for i in range(len(proof))]),
                       label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == "root1":
        root1 = _flip(root1, bit)
    elif target == "root2":
        root2 = _flip(root2, bit)
    else:
        i = int(target[5:])
        proof = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1:]
    with pytest.raises(VerificationError):
        merkle.verify_consistency(m, n, root1, root2, proof)


@SETTINGS
@given(DISTINCT, st.data())
def test_inclusion_with_wrong_index_raises(leaves: list[bytes], data: st.DataObject) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    size = data.draw(st.integers(2, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    other = data.draw(st.integers(-2, size + 2).filter(lambda j: j != index), label="other")
    proof = built.inclusion(index, size)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), other, size, proof, ref.root(size))


@SETTINGS
@given(DISTINCT, st.data())
def test_inclusion_with_wrong_size_raises(leaves: list[bytes], data: st.DataObject) -> None:
    """A proof for the tree of one size does not show the leaf in the tree of another size."""
    ref, built = ReferenceTree(leaves), Built(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    other = data.draw(st.integers(0, len(leaves)).filter(lambda s: s != size), label="other")
    proof = built.inclusion(index, size)
    # The other tree's own root: the proof must not lead there. (Checked against the *same* root, a
    # proof may legitimately fit several sizes — e.g. leaf 0 of 7 and of 8 take the same path steps.)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, other, proof, ref.root(other))


@SETTINGS
@given(DISTINCT, st.data())
def test_consistency_with_wrong_sizes_raises(leaves: list[bytes], data: st.DataObject) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    n = data.draw(st.integers(2, len(leaves)), label="n")
    m = data.draw(st.integers(1, n - 1), label="m")
    proof = built.consistency(m, n)
    m2 = data.draw(st.integers(0, n + 1).filter(lambda x: x != m), label="m2")
    n2 = data.draw(st.integers(max(m, 1), len(leaves)).filter(lambda x: x != n) if len(leaves) > m else st.just(n),
                   label="n2")
    root_m2 = ref.root(min(m2, len(leaves)))
    with pytest.raises(VerificationError):
        merkle.verify_consistency(m2, n, root_m2, ref.root(n), proof)
    if n2 != n:
        with pytest.raises(VerificationError):
            merkle.verify_consistency(m, n2, ref.root(m), ref.root(n2), proof)


@SETTINGS
@given(NONEMPTY, st.data())
def test_swapped_or_truncated_proofs_are_caught(leaves: list[bytes], data: st.DataObject) -> None:
    ref, built = ReferenceTree(leaves), Built(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = built.inclusion(index, size)
    leaf, root = merkle.leaf_hash(leaves[index]), ref.root(size)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, index, size, proof + [root], root)
    if proof:
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
    if len(proof) >= 2:
        i = data.draw(st.integers(0, len(proof) - 2), label="swap")
        swapped = proof[:i] + [proof[i + 1], proof[i]] + proof[i + 2:]
        assume(swapped != proof)
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(leaf, index, size, swapped, root)
