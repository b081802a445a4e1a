"""The ledger's side of witnessing: what to send each configured witness, what its answer means, and the
cosigned checkpoints that come of it.

Writes never wait for witnesses: a background submitter (``web/cosigning.py``) asks this module for the next
``add-checkpoint`` request per witness after new checkpoints, sends it, and hands the answer back. A witness
that refuses a checkpoint as inconsistent (422), or has cosigned a larger tree than this ledger holds (409
with a bigger size), raises an alarm that stays until an operator looks: it means someone showed the witness
a different history of this log. The alarm shows in the logs, ``tracker verify`` and the admin page.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, cast

from .checkpoint import open_note_signed_by, parse_note, verify_checkpoint
from .cosignature import cosignature_timestamp
from .errors import TrackerError, VerificationError
from .ledger import Ledger
from .policy import Policy, PolicyCheck, PolicyWitness, check_checkpoint, parse_policy
from .store.base import CosignWriteTxn, StoredCheckpoint, StoredCosignature, StoredWitnessStatus
from .witness import SIZE_CONTENT_TYPE, format_add_checkpoint

__all__ = ["POLICY_FILE", "load_policy", "Submission", "next_submission", "handle_reply", "record_failure",
           "cosigned_note", "policy_checkpoint", "witness_alarms", "witness_status", "witness_statuses",
           "backoff_seconds"]

POLICY_FILE = "witness-policy.txt"
log = logging.getLogger("waybill.witnessing")


def load_policy(home: Path | None = None, env: Mapping[str, str] | None = None) -> Policy | None:
    """``WAYBILL_POLICY`` (a file) or ``WAYBILL_HOME/witness-policy.txt``; None when neither exists."""
    env = os.environ if env is None else env
    path = Path(env["WAYBILL_POLICY"]) if env.get("WAYBILL_POLICY") else (home / POLICY_FILE if home else None)
    if path is None or not path.is_file():
        return None
    return parse_policy(path.read_bytes())


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    witness: PolicyWitness
    old_size: int
    size: int
    note: str
    body: bytes


def _c(txn: Any) -> CosignWriteTxn:
    """The store's transactions carry the cosignature methods (tracker/store/sql.py)."""
    return cast(CosignWriteTxn, txn)


def witness_status(ledger: Ledger, name: str) -> StoredWitnessStatus | None:
    with ledger.store.read() as txn:
        return next((s for s in _c(txn).witness_statuses() if s.cosigner == name), None)


def _put_status(ledger: Ledger, w: PolicyWitness, **changes: object) -> StoredWitnessStatus:
    old = witness_status(ledger, w.cosigner.name)
    values: dict[str, object] = dict(cosigner=w.cosigner.name, url=w.url or "", cosigned_size=0, failures=0,
                                     last_error=None, alarm=None)
    if old is not None:
        values.update(cosigned_size=old.cosigned_size, failures=old.failures, last_error=old.last_error,
                      alarm=old.alarm)
    values.update(changes, updated_at=_stamp())
    row = StoredWitnessStatus(**values)  # type: ignore[arg-type]
    with ledger.store.write() as txn:
        _c(txn).put_witness_status(row)
    return row


def next_submission(ledger: Ledger, w: PolicyWitness) -> Submission | None:
    """The ``add-checkpoint`` request that brings witness ``w`` to the latest checkpoint, or None when it
    has already cosigned it (or raised an alarm: a refusing witness is not pestered)."""
    st = witness_status(ledger, w.cosigner.name)
    with ledger.store.read() as txn:
        latest = txn.latest_checkpoint()
    if latest is None or (st is not None and st.alarm):
        return None
    known = st.cosigned_size if st else 0
    if known > latest.size:
        return None
    if st is not None and known == latest.size and _has_cosignature(ledger, w, latest.size):
        return None
    proof = ledger.consistency_proof(known, latest.size) if 0 < known < latest.size else []
    return Submission(witness=w, old_size=known, size=latest.size, note=latest.note,
                      body=format_add_checkpoint(known, proof, latest.note))


def _has_cosignature(ledger: Ledger, w: PolicyWitness, size: int) -> bool:
    with ledger.store.read() as txn:
        return any(c.cosigner == w.cosigner.name for c in _c(txn).cosignatures_at(size))


def handle_reply(ledger: Ledger, sub: Submission, status: int, body: str, content_type: str = "") -> str:
    """Act on a witness's answer; returns a one-word outcome (cosigned, behind, alarm)."""
    w = sub.witness
    if status == 200:
        lines = "".join(f"{line}\n" for line in body.split("\n") if line)
        try:
            text = parse_note(sub.note).text
            mine = [sig for sig in parse_note(text + "\n" + lines).signatures
                    if sig.name == w.cosigner.name and sig.key_id == w.cosigner.key_hash]
            if not mine:
                raise VerificationError("no cosignature by this witness's key in the answer")
            open_note_signed_by(sub.note + lines, [w.cosigner])
        except VerificationError as exc:
            record_failure(ledger, w, f"unusable cosignature: {exc.message}")
            log.warning("witness %s answered with a cosignature that does not verify: %s", w.name, exc.message)
            return "bad_cosignature"
        with ledger.store.write() as txn:
            if _c(txn).checkpoint_at(sub.size) is None:
                # Pruned from the history while the witness was answering: a cosigned checkpoint is kept, so the
                # note we submitted (signed by this ledger) goes back in beside its cosignature.
                cp = verify_checkpoint(sub.note, ledger.note_verifier, origin=ledger.origin)
                txn.add_checkpoint(StoredCheckpoint(size=cp.size, root_hash=cp.root_hash, note=sub.note,
                                                    created_at=_stamp()))
            _c(txn).add_cosignature(StoredCosignature(
                cosigner=mine[0].name, key_id=mine[0].key_id.hex(), tree_size=sub.size, line=mine[0].line,
                timestamp=cosignature_timestamp(mine[0].line), received_at=_stamp()))
        _put_status(ledger, w, cosigned_size=sub.size, failures=0, last_error=None)
        return "cosigned"
    if status == 409 and content_type.split(";")[0].strip() == SIZE_CONTENT_TYPE and body.strip().isdigit():
        theirs = int(body.strip())
        if theirs > sub.size:
            return _alarm(ledger, w, f"witness {w.name} ({w.cosigner.name}) has cosigned size {theirs}, larger than this ledger's "
                                     f"{sub.size}: it was shown another history of this log, or this ledger "
                                     "was rolled back")
        _put_status(ledger, w, cosigned_size=theirs, failures=0, last_error=None)
        return "behind"
    if status == 422:
        return _alarm(ledger, w, f"witness {w.name} ({w.cosigner.name}) refused checkpoint {sub.size} as inconsistent with what it "
                                 f"cosigned before (size {sub.old_size}): {body.strip()[:300]}")
    if status in (403, 404):
        return _alarm(ledger, w, f"witness {w.name} ({w.cosigner.name}) does not accept this log ({status}): {body.strip()[:300]}")
    record_failure(ledger, w, f"HTTP {status}: {body.strip()[:200]}")
    return "failed"


def _alarm(ledger: Ledger, w: PolicyWitness, message: str) -> str:
    log.error("WITNESS ALARM: %s", message)
    _put_status(ledger, w, alarm=message, last_error=message)
    return "alarm"


def record_failure(ledger: Ledger, w: PolicyWitness, error: str) -> int:
    """A witness that could not be reached; returns the failure count for back-off."""
    st = witness_status(ledger, w.cosigner.name)
    failures = (st.failures if st else 0) + 1
    _put_status(ledger, w, failures=failures, last_error=error)
    return failures


def backoff_seconds(failures: int) -> float:
    return 0.0 if failures <= 0 else min(60.0, 0.25 * 2 ** min(failures, 10))


def cosigned_note(ledger: Ledger, size: int | None = None) -> str:
    """A checkpoint note (the latest, or the one of ``size``) with every cosignature stored for it."""
    with ledger.store.read() as txn:
        cp = txn.latest_checkpoint() if size is None else _c(txn).checkpoint_at(size)
        if cp is None:
            raise TrackerError(f"no checkpoint of size {size}", code="no_checkpoint")
        lines = [c.line for c in _c(txn).cosignatures_at(cp.size)]
    return cp.note + "".join(f"{line}\n" for line in lines)


def policy_checkpoint(ledger: Ledger, policy: Policy | None, *, at_least: int = 0) -> tuple[str, PolicyCheck | None]:
    """The largest checkpoint covering ``at_least`` entries that meets ``policy``'s quorum, with its check;
    failing that, the latest checkpoint and its (unmet) check."""
    latest = cosigned_note(ledger)
    if policy is None:
        return latest, None
    with ledger.store.read() as txn:
        sizes = [s for s in _c(txn).cosigned_sizes(1) if s >= at_least]
    for size in sizes:
        try:  # a size whose checkpoint row is gone (an older ledger pruned it) is skipped, not a 500
            note = cosigned_note(ledger, size)
            check = check_checkpoint(note, policy, origin=ledger.origin, log=ledger.note_verifier)
        except TrackerError:
            continue
        if check.quorum_met:
            return note, check
    return latest, check_checkpoint(latest, policy, origin=ledger.origin, log=ledger.note_verifier)


def witness_statuses(ledger: Ledger) -> list[StoredWitnessStatus]:
    with ledger.store.read() as txn:
        return _c(txn).witness_statuses()


def witness_alarms(ledger: Ledger) -> list[str]:
    with ledger.store.read() as txn:
        return [s.alarm for s in _c(txn).witness_statuses() if s.alarm]
