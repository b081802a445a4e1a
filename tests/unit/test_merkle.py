"""RFC 6962 / RFC 9162 Merkle trees: the transparency-dev proof vectors (196 cases), known roots over the
eight fixed leaves, and the proofs the tracker builds from stored nodes compared with the vectors."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import VECTORS
from tracker import merkle
from tracker.errors import VerificationError

RFC6962 = VECTORS / "rfc6962"
INCLUSION = sorted((RFC6962 / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((RFC6962 / "consistency").rglob("*.json"))
ROOTS = json.loads((RFC6962 / "roots.json").read_text())
LEAVES = [bytes.fromhex(h) for h in ROOTS["leaf_data_hex"]]
ROOT_BY_SIZE = [bytes.fromhex(h) for h in ROOTS["root_by_size_hex"]]


def _id(path: Path) -> str:
    return str(path.relative_to(RFC6962))


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in (value or [])]


def test_vector_counts() -> None:
    assert len(INCLUSION) + len(CONSISTENCY) == 196
    assert len(INCLUSION) == 98 and len(CONSISTENCY) == 98


# --- the 196 vectors -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case["proof"]), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(*args)
    else:
        assert merkle.verify_inclusion(*args) is None
        assert merkle.root_from_inclusion(*args[:4]) == args[4]


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            merkle.verify_consistency(*args)
    else:
        assert merkle.verify_consistency(*args) is None


# --- proofs the tracker builds, against the vectors' happy paths ---------------------------------

def _nodes_of(leaves: list[bytes]) -> dict[merkle.NodeId, bytes]:
    cr = merkle.CompactRange()
    nodes: dict[merkle.NodeId, bytes] = {}
    for data in leaves:
        for level, idx, h in cr.append(merkle.leaf_hash(data)):
            nodes[(level, idx)] = h
    return nodes


NODES8 = _nodes_of(LEAVES)


def _happy(paths: list[Path], size_key: str, root_key: str) -> list[Path]:
    out = []
    for p in paths:
        case = json.loads(p.read_text())
        size = case[size_key]
        if not case["wantErr"] and case["proof"] and 0 < size <= 8 and _b64(case[root_key]) == ROOT_BY_SIZE[size]:
            out.append(p)
    return out


@pytest.mark.parametrize("path", _happy(INCLUSION, "treeSize", "root"), ids=_id)
def test_generated_inclusion_proof_matches_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    ranges = merkle.inclusion_ranges(case["leafIdx"], case["treeSize"])
    proof = [merkle.range_hash(a, b, NODES8) for a, b in ranges]
    assert proof == _proof(case["proof"])
    assert merkle.leaf_hash(LEAVES[case["leafIdx"]]) == _b64(case["leafHash"])


@pytest.mark.parametrize("path", _happy(CONSISTENCY, "size2", "root2"), ids=_id)
def test_generated_consistency_proof_matches_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    ranges = merkle.consistency_ranges(case["size1"], case["size2"])
    proof = [merkle.range_hash(a, b, NODES8) for a, b in ranges]
    assert proof == _proof(case["proof"])


def test_happy_path_generation_is_covered() -> None:
    # the comparison above must not silently run over nothing
    assert len(_happy(INCLUSION, "treeSize", "root")) >= 4
    assert len(_happy(CONSISTENCY, "size2", "root2")) >= 4


# --- roots.json ----------------------------------------------------------------------------------

def test_empty_root() -> None:
    assert merkle.EMPTY_ROOT == ROOT_BY_SIZE[0] == hashlib.sha256(b"").digest()
    assert merkle.CompactRange().root() == ROOT_BY_SIZE[0]


def test_leaf_and_node_hash_domain_separation() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == ROOT_BY_SIZE[1]
    left, right = merkle.leaf_hash(LEAVES[0]), merkle.leaf_hash(LEAVES[1])
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest() == ROOT_BY_SIZE[2]


@pytest.mark.parametrize("size", range(0, 9))
def test_roots_via_compact_range(size: int) -> None:
    cr = merkle.CompactRange()
    for data in LEAVES[:size]:
        cr.append(merkle.leaf_hash(data))
    assert cr.size == size
    assert cr.root() == ROOT_BY_SIZE[size]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_via_range_hash_over_stored_nodes(size: int) -> None:
    nodes = _nodes_of(LEAVES[:size])
    # only perfect subtrees are stored
    for (level, idx) in nodes:
        assert (idx + 1) << level <= size
    assert merkle.range_hash(0, size, nodes) == ROOT_BY_SIZE[size]
    # and the full 8-leaf node set answers every earlier size too
    assert merkle.range_hash(0, size, NODES8) == ROOT_BY_SIZE[size]


@pytest.mark.parametrize("size", range(0, 9))
def test_compact_range_resumes_from_stored_frontier(size: int) -> None:
    def get(ids):
        return {i: NODES8[i] for i in ids if i in NODES8}

    cr = merkle.CompactRange.from_store(size, get)
    assert cr.root() == ROOT_BY_SIZE[size]
    for data in LEAVES[size:]:
        cr.append(merkle.leaf_hash(data))
    assert cr.root() == ROOT_BY_SIZE[8]


def test_compact_range_from_store_with_missing_node() -> None:
    with pytest.raises(VerificationError):
        merkle.CompactRange.from_store(5, lambda ids: {})


def test_compact_range_needs_one_hash_per_set_bit() -> None:
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [ROOT_BY_SIZE[1]])


def test_append_reports_completed_nodes() -> None:
    cr = merkle.CompactRange()
    made = [cr.append(merkle.leaf_hash(d)) for d in LEAVES]
    assert [[(lv, ix) for lv, ix, _ in m] for m in made] == [
        [(0, 0)], [(0, 1), (1, 0)], [(0, 2)], [(0, 3), (1, 1), (2, 0)],
        [(0, 4)], [(0, 5), (1, 2)], [(0, 6)], [(0, 7), (1, 3), (2, 1), (3, 0)],
    ]
    assert made[-1][-1][2] == ROOT_BY_SIZE[8]


def test_frontier_nodes() -> None:
    assert merkle.frontier_nodes(0) == []
    assert merkle.frontier_nodes(1) == [(0, 0)]
    assert merkle.frontier_nodes(6) == [(2, 0), (1, 2)]
    assert merkle.frontier_nodes(7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.frontier_nodes(8) == [(3, 0)]


def test_ranges_reject_misuse() -> None:
    for index, size in ((0, 0), (3, 3), (-1, 4)):
        with pytest.raises(ValueError):
            merkle.inclusion_ranges(index, size)
    for a, b in ((0, 3), (4, 3), (-1, 2)):
        with pytest.raises(ValueError):
            merkle.consistency_ranges(a, b)


def test_verifiers_reject_wrong_hash_sizes() -> None:
    leaf = merkle.leaf_hash(LEAVES[0])
    proof = [merkle.range_hash(a, b, NODES8) for a, b in merkle.inclusion_ranges(0, 8)]
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf[:31], 0, 8, proof, ROOT_BY_SIZE[8])
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, 0, 8, proof[:-1] + [proof[-1] + b"\x00"], ROOT_BY_SIZE[8])
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(leaf, 0, 8, proof, ROOT_BY_SIZE[8] + b"\x00")
    cproof = [merkle.range_hash(a, b, NODES8) for a, b in merkle.consistency_ranges(3, 8)]
    merkle.verify_consistency(3, 8, ROOT_BY_SIZE[3], ROOT_BY_SIZE[8], cproof)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(3, 8, ROOT_BY_SIZE[3][:31], ROOT_BY_SIZE[8], cproof)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(3, 8, ROOT_BY_SIZE[3], ROOT_BY_SIZE[8], cproof + [b"short"])
