"""Inclusion and consistency proofs served from storage (SPEC §3), checked against a naive RFC 6962 tree
built from the envelopes the test signed itself, and against the signed checkpoints the ledger stored."""
from __future__ import annotations

import pytest

from tests.store.helpers import build_ledger
from tracker import merkle
from tracker.errors import InvalidInput, NotFound, VerificationError

SIZE = 41  # genesis + 40
# Commit sizes chosen so the stored checkpoints include powers of two and their neighbours.
CHUNKS = (1, 2, 1, 3, 3, 5, 1, 6, 8, 1, 1, 7, 1)


# --- the oracle: RFC 6962 §2.1 written out recursively ----------------------------------------------

def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = _k(len(leaves))
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def built(ledger, admin_key):
    b = build_ledger(ledger, admin_key, size=SIZE, chunks=CHUNKS)
    return ledger, b


def signed_roots(ledger) -> dict[int, bytes]:
    """tree size -> root, read only from checkpoints whose signature verified."""
    with ledger.store.read() as txn:
        notes = [cp.note for cp in txn.iter_checkpoints()]
    roots = {}
    for note in notes:
        cp = ledger.verified_checkpoint(note)
        roots[cp.size] = cp.root_hash
    return roots


# --- tests --------------------------------------------------------------------------------------

def test_every_stored_checkpoint_is_signed_and_matches_the_reference_tree(built):
    ledger, b = built
    leaves = b.leaf_data
    assert len(leaves) == SIZE == ledger.size()
    roots = signed_roots(ledger)
    assert sorted(roots) == b.commit_sizes  # one checkpoint per commit
    assert {1, 2, 4, 8, 16, 32}.issubset(roots)
    for size, root in roots.items():
        assert root == mth(leaves[:size]), f"checkpoint at size {size}"
    latest = ledger.verified_checkpoint()
    assert (latest.size, latest.root_hash) == (SIZE, mth(leaves))


def test_inclusion_proof_for_every_entry_verifies_against_the_latest_checkpoint(built):
    ledger, b = built
    leaves = b.leaf_data
    cp = ledger.verified_checkpoint()
    event_ids = [ledger.get_event(e.event_id)[0].event_id for e in b.envelopes]
    for index, data in enumerate(leaves):
        if index == 0:
            got_index, got_size, proof = ledger.inclusion_proof(leaf_index=0)
        else:
            got_index, got_size, proof = ledger.inclusion_proof(event_id=event_ids[index - 1])
        assert (got_index, got_size) == (index, cp.size)
        assert proof == path(index, leaves), f"leaf {index}"
        merkle.verify_inclusion(merkle.leaf_hash(data), index, cp.size, proof, cp.root_hash)
        # The proof is for this leaf only: a neighbour's data does not verify with it.
        other = leaves[(index + 1) % len(leaves)]
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(merkle.leaf_hash(other), index, cp.size, proof, cp.root_hash)


def test_inclusion_proofs_verify_at_every_older_checkpoint(built):
    ledger, b = built
    leaves = b.leaf_data
    roots = signed_roots(ledger)
    for size, root in sorted(roots.items()):
        for index in range(size):
            if index:
                got_index, got_size, proof = ledger.inclusion_proof(event_id=b.envelopes[index - 1].event_id,
                                                                    tree_size=size)
            else:
                got_index, got_size, proof = ledger.inclusion_proof(leaf_index=0, tree_size=size)
            assert (got_index, got_size) == (index, size)
            assert proof == path(index, leaves[:size]), f"leaf {index} in tree {size}"
            merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)


def test_consistency_proofs_between_every_pair_of_checkpoints_verify(built):
    ledger, b = built
    leaves = b.leaf_data
    roots = signed_roots(ledger)
    sizes = sorted(roots)
    for i, first in enumerate(sizes):
        for second in sizes[i:]:
            proof = ledger.consistency_proof(first, second)
            assert proof == subproof(first, leaves[:second], True), f"{first} -> {second}"
            merkle.verify_consistency(first, second, roots[first], roots[second], proof)
            if first < second:
                # A proof is bound to both roots.
                with pytest.raises(VerificationError):
                    merkle.verify_consistency(first, second, roots[first], roots[sizes[0]], proof)


def test_proofs_for_sizes_between_checkpoints_match_the_reference_tree(built):
    """Any size up to the latest checkpoint is a prefix of the log: its proofs match the reference tree."""
    ledger, b = built
    leaves = b.leaf_data
    roots = signed_roots(ledger)
    between = next(s for s in range(2, SIZE) if s not in roots)
    _i, _s, proof = ledger.inclusion_proof(leaf_index=between - 1, tree_size=between)
    assert proof == path(between - 1, leaves[:between])
    assert ledger.consistency_proof(between, SIZE) == subproof(between, leaves, True)


BAD_SIZES = {
    "inclusion-size-0": lambda led, n: led.inclusion_proof(leaf_index=0, tree_size=0),
    "inclusion-negative-size": lambda led, n: led.inclusion_proof(leaf_index=0, tree_size=-3),
    "inclusion-beyond-latest": lambda led, n: led.inclusion_proof(leaf_index=0, tree_size=n + 1),
    "leaf-not-in-tree": lambda led, n: led.inclusion_proof(leaf_index=n - 1, tree_size=n - 5),
    "leaf-beyond-latest": lambda led, n: led.inclusion_proof(leaf_index=n),
    "negative-leaf": lambda led, n: led.inclusion_proof(leaf_index=-1),
    "consistency-from-0": lambda led, n: led.consistency_proof(0, n),
    "consistency-negative": lambda led, n: led.consistency_proof(-1, n),
    "consistency-shrinks": lambda led, n: led.consistency_proof(10, 5),
    "consistency-beyond-latest": lambda led, n: led.consistency_proof(5, n + 1),
    "consistency-both-beyond": lambda led, n: led.consistency_proof(n + 1, n + 2),
}


def test_bad_tree_sizes_raise_invalid_input(built):
    ledger, _b = built
    wrong = []
    for name, call in BAD_SIZES.items():
        try:
            call(ledger, SIZE)
        except InvalidInput:
            continue
        except Exception as exc:  # noqa: BLE001 - report which case misbehaved, and how
            wrong.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{name}: answered instead of raising InvalidInput")
    assert not wrong, wrong
    # The edges themselves are fine.
    assert ledger.inclusion_proof(leaf_index=SIZE - 1, tree_size=SIZE)[1] == SIZE
    assert ledger.consistency_proof(1, SIZE)
    assert ledger.consistency_proof(SIZE, SIZE) == []


def test_an_event_newer_than_the_tree_size_asked_for_is_not_in_that_tree(built):
    ledger, b = built
    last = b.envelopes[-1].event_id
    with pytest.raises(InvalidInput) as info:
        ledger.inclusion_proof(event_id=last, tree_size=SIZE - 1)
    assert info.value.code == "not_in_tree"


def test_an_unknown_event_has_no_proof(built):
    ledger, _b = built
    with pytest.raises(NotFound):
        ledger.inclusion_proof(event_id="sha256:" + "0" * 64)
