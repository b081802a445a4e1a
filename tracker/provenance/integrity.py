"""Step 1 of a judgement: the ledger vouches for this path. The latest checkpoint carries the ledger's signature,
no leaf below its size has been erased, and every event of the path is included in its Merkle tree (one
multi-leaf proof for the whole path; leaves proven under an earlier checkpoint carry over through a consistency
proof, so a long journey is not re-proven leaf by leaf on every lookup)."""
from __future__ import annotations

import time
from typing import Callable, Sequence

from .. import merkle
from ..checkpoint import Checkpoint, NoteVerifier, verify_checkpoint
from ..dsse import Envelope
from ..errors import TrackerError
from ..store.base import ReadTxn
from .path import LookupCaches, PathEvent
from .reasons import Reason

__all__ = ["check_integrity", "COMPLETENESS_TTL", "COMPLETENESS_TTL_MAX"]

# A ledger-wide count is the one check here whose cost grows with the ledger. A full count is trusted for
# COMPLETENESS_TTL seconds, or 200 times what it took (at most COMPLETENESS_TTL_MAX), so it stays under 0.5% of
# a busy process's time; until then only leaves appended since are counted. A mismatch is never remembered and
# shows on every lookup.
COMPLETENESS_TTL = 1.0
COMPLETENESS_TTL_MAX = 60.0


def _log_complete(txn: ReadTxn, caches: LookupCaches, size: int, clock: Callable[[], float]) -> bool:
    """Every leaf below the checkpoint's size is still stored. A leaf deleted from the middle of the log (with
    its index rows) leaves an item's history looking whole; only a count against the signed size shows it."""
    now = clock()
    seen = caches.complete
    if seen is not None and now - seen[1] < seen[2] and size >= seen[0]:
        counted, at, ttl = seen
        if size > counted:
            if txn.entry_count(below=size, start=counted) != size - counted:
                return False
            caches.complete = (size, at, ttl)
        return True
    started = time.perf_counter()
    if txn.entry_count(below=size) != size:
        return False
    ttl = min(COMPLETENESS_TTL_MAX, max(COMPLETENESS_TTL, 200 * (time.perf_counter() - started)))
    caches.complete = (size, now, ttl)
    return True


def check_integrity(txn: ReadTxn, *, verifier: NoteVerifier, origin: str, path: Sequence[PathEvent],
                    missing: Sequence[int], caches: LookupCaches, clock: Callable[[], float],
                    reasons: list[Reason]) -> tuple[Checkpoint | None, str | None, dict[str, Envelope]]:
    """(verified checkpoint, its note, the envelopes of path events proven included). Problems become
    ``ledger_integrity_failure`` reasons."""
    envelopes: dict[str, Envelope] = {}
    stored = txn.latest_checkpoint()
    if stored is None:
        reasons.append(Reason(code="ledger_integrity_failure", message="The ledger has no signed checkpoint."))
        return None, None, envelopes
    try:
        cp = verify_checkpoint(stored.note, verifier, origin=origin)
    except TrackerError:
        reasons.append(Reason(code="ledger_integrity_failure",
                              message="The ledger's latest checkpoint does not carry a valid ledger signature."))
        return None, stored.note, envelopes
    for i in missing:
        reasons.append(Reason(code="ledger_integrity_failure",
                              message=f"Ledger entry {i} of this item's history has been deleted."))
    if txn.tree_size() < cp.size or not _log_complete(txn, caches, cp.size, clock):
        reasons.append(Reason(code="ledger_integrity_failure",
                              message=f"The ledger holds fewer entries than its signed checkpoint ({cp.size}): "
                                      "records have been deleted, so this history may be incomplete."))
    leaves: dict[int, bytes] = {}  # leaf index -> leaf hash, for path events whose record matches its signature
    parsed: dict[int, Envelope] = {}
    for ev in path:
        if ev.leaf_index >= cp.size:
            reasons.append(Reason(code="ledger_integrity_failure", event_id=ev.event_id,
                                  message="This event is not covered by any signed checkpoint: it was written "
                                          "into the database outside the ledger."))
            continue
        env = ev.envelope if ev.envelope is not None else caches.parsed(ev.entry)[0]
        if env is None:
            reasons.append(Reason(code="ledger_integrity_failure", event_id=ev.event_id, message=_NOT_IN_ROOT))
            continue
        signed_id, leaf = caches.identity(ev.entry.leaf_data, env)
        if signed_id != ev.event_id or ev.statement is None:
            reasons.append(Reason(code="ledger_integrity_failure", event_id=ev.event_id,
                                  message="This event's stored record does not match what was signed."))
        else:
            leaves[ev.leaf_index] = leaf
            parsed[ev.leaf_index] = env
    failed = _check_included(txn, caches, cp, leaves)
    for ev in path:
        if ev.leaf_index in failed:
            reasons.append(Reason(code="ledger_integrity_failure", message=_NOT_IN_ROOT, event_id=ev.event_id))
        elif ev.leaf_index in parsed:
            envelopes[ev.event_id] = parsed[ev.leaf_index]
    return cp, stored.note, envelopes


_NOT_IN_ROOT = ("This event does not match the ledger's signed Merkle root: the record was edited, replaced or "
                "reordered.")
MAX_PROVEN = 500_000  # leaves remembered as included (about 100 bytes each)


def _check_included(txn: ReadTxn, caches: LookupCaches, cp: Checkpoint, leaves: dict[int, bytes]) -> set[int]:
    """The leaf indexes of ``leaves`` NOT included in the tree ``cp`` signs. Leaves proven before, under a
    checkpoint that ``cp`` is proven consistent with, count as included (a leaf in a tree is in every tree
    that extends it); the rest are checked together in one multi-leaf proof, shared nodes fetched and hashed
    once. Only if that fails is each leaf proven alone, to name the ones that are not there."""
    proven = _proven_under(txn, caches, cp)
    todo = {i: h for i, h in leaves.items() if proven.get(i) != h}
    if not todo:
        return set()
    indexes = sorted(todo)
    ranges = merkle.multi_inclusion_ranges(indexes, cp.size)
    parts = {r: merkle.range_nodes(*r) for r in ranges}
    nodes = txn.nodes([n for ids in parts.values() for n in ids])
    try:
        hashes = {r: merkle.fold_nodes(ids, nodes) for r, ids in parts.items()}
        whole = merkle.root_from_leaves(cp.size, todo, hashes) == cp.root_hash
    except KeyError:
        whole = False
    if whole:
        _remember(caches, cp, todo)
        return set()
    failed: set[int] = set()
    singles = {i: [merkle.range_nodes(a, b) for a, b in merkle.inclusion_ranges(i, cp.size)] for i in indexes}
    nodes = txn.nodes([n for proof in singles.values() for ids in proof for n in ids])
    for i in indexes:
        try:
            proof = [merkle.fold_nodes(ids, nodes) for ids in singles[i]]
            merkle.verify_inclusion(todo[i], i, cp.size, proof, cp.root_hash)
        except (TrackerError, KeyError):
            failed.add(i)
    _remember(caches, cp, {i: h for i, h in todo.items() if i not in failed})
    return failed


def _proven_under(txn: ReadTxn, caches: LookupCaches, cp: Checkpoint) -> dict[int, bytes]:
    """Leaves known to be in the tree ``cp`` signs: those proven under an earlier signed checkpoint, carried
    forward by one verified consistency proof (O(log n) stored nodes) when the ledger has grown."""
    anchor = caches.included
    if anchor is None:
        return {}
    size, root, proven = anchor
    if size == cp.size:
        return proven if root == cp.root_hash else {}
    if size > cp.size:
        return {}  # an older snapshot than the cache's: prove afresh
    try:
        plan = merkle.consistency_ranges(size, cp.size)
        nodes = txn.nodes([n for a, b in plan for n in merkle.range_nodes(a, b)])
        merkle.verify_consistency(size, cp.size, root, cp.root_hash, [merkle.range_hash(a, b, nodes) for a, b in plan])
    except (TrackerError, KeyError, ValueError):
        caches.included = None
        return {}
    caches.included = (cp.size, cp.root_hash, proven)
    return proven


def _remember(caches: LookupCaches, cp: Checkpoint, leaves: dict[int, bytes]) -> None:
    anchor = caches.included
    if anchor is None or anchor[0] != cp.size or anchor[1] != cp.root_hash:
        if anchor is not None and anchor[0] > cp.size:
            return
        anchor = caches.included = (cp.size, cp.root_hash, {})
    if len(anchor[2]) + len(leaves) > MAX_PROVEN:
        anchor[2].clear()
    anchor[2].update(leaves)
