"""Step 1 of a judgement: the ledger vouches for this path. The latest checkpoint carries the ledger's signature,
no leaf below its size has been erased, and every event of the path is included in its Merkle tree."""
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
    proofs: dict[int, list[list[merkle.NodeId]]] = {}  # leaf -> the perfect nodes of each proof hash
    for ev in path:
        if ev.leaf_index >= cp.size:
            reasons.append(Reason(code="ledger_integrity_failure", event_id=ev.event_id,
                                  message="This event is not covered by any signed checkpoint: it was written "
                                          "into the database outside the ledger."))
            continue
        proofs[ev.leaf_index] = [merkle.range_nodes(a, b) for a, b in merkle.inclusion_ranges(ev.leaf_index, cp.size)]
    nodes = txn.nodes([n for parts in proofs.values() for ids in parts for n in ids])
    for ev in path:
        if ev.leaf_index not in proofs:
            continue
        problem = None
        try:
            env = caches.parsed(ev.entry)[0]
            if env is None:
                raise KeyError("unreadable envelope")
            if env.event_id != ev.event_id or ev.statement is None:
                problem = "This event's stored record does not match what was signed."
            else:
                proof = [merkle.fold_nodes(ids, nodes) for ids in proofs[ev.leaf_index]]
                merkle.verify_inclusion(merkle.leaf_hash(ev.entry.leaf_data), ev.leaf_index, cp.size, proof,
                                        cp.root_hash)
                envelopes[ev.event_id] = env
        except (TrackerError, KeyError):
            problem = problem or ("This event does not match the ledger's signed Merkle root: the record was "
                                  "edited, replaced or reordered.")
        if problem:
            reasons.append(Reason(code="ledger_integrity_failure", message=problem, event_id=ev.event_id))
    return cp, stored.note, envelopes
