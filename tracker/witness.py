"""A C2SP tlog-witness (c2sp.org/tlog-witness): cosigns a log's checkpoint only after checking the log's
signature and a consistency proof from the last checkpoint it cosigned for that log.

The check and the new state are one transaction in the witness's own database, committed before the
cosignature is made: two requests racing, a crash between them, or a restart can never make it sign two
checkpoints of one log that are not consistent. The HTTP server is a thin shell around
``Witness.add_checkpoint`` (see ``web/witness_app.py``); the protocol's wire format is parsed here.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Protocol, Sequence

from . import merkle
from .checkpoint import (NoteVerifier, b64decode_strict, b64encode, open_note_signed_by, parse_checkpoint_text,
                         parse_note)
from .cosignature import Cosigner, cosign
from .errors import TrackerError, VerificationError
from .keys import KeyPair

__all__ = [
    "WitnessRecord",
    "WitnessStateTxn",
    "WitnessState",
    "WitnessReply",
    "Witness",
    "AddCheckpointRequest",
    "parse_add_checkpoint",
    "format_add_checkpoint",
    "origin_hash",
    "SIZE_CONTENT_TYPE",
    "MAX_PROOF_LINES",
]

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 1 << 20
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of a log's origin: the path segment of monitoring URLs."""
    return hashlib.sha256(origin.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessRecord:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root_hash: bytes
    note: str  # the checkpoint with the log's signature and the witness's cosignature


class WitnessStateTxn(Protocol):
    def latest(self, origin: str) -> WitnessRecord | None: ...
    def put(self, record: WitnessRecord, *, at: str) -> None: ...
    def record_refusal(self, origin: str, *, status: int, reason: str, note: str, at: str) -> None: ...


class WitnessState(Protocol):
    def transaction(self) -> ContextManager[WitnessStateTxn]: ...
    def read(self) -> ContextManager[WitnessStateTxn]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessReply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str


class _BadRequest(TrackerError):
    code = "bad_request"


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """The ``add-checkpoint`` body: ``old N``, up to 63 base64 proof lines, an empty line, a checkpoint."""
    if len(body) > MAX_REQUEST_BYTES:
        raise _BadRequest("request body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRequest("request body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise _BadRequest("request has no empty line before the checkpoint")
    lines = head.split("\n")
    m = re.fullmatch(r"old (0|[1-9][0-9]{0,18})", lines[0])
    if not m:
        raise _BadRequest("first line must be `old <size>`")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise _BadRequest("more than 63 consistency proof lines")
    try:
        proof = tuple(b64decode_strict(line, "consistency proof line") for line in lines[1:])
    except VerificationError as exc:
        raise _BadRequest(exc.message) from exc
    if any(len(h) != merkle.HASH_SIZE for h in proof):
        raise _BadRequest("a consistency proof line is one 32-byte hash")
    return AddCheckpointRequest(old_size=int(m.group(1)), proof=proof, checkpoint=note)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint_note: str) -> bytes:
    lines = [f"old {old_size}", *(b64encode(h) for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint_note).encode()


class Witness:
    """One witness identity (name + key) for a configured set of logs."""

    def __init__(self, *, name: str, key: KeyPair, logs: Iterable[NoteVerifier], state: WitnessState,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.key = key
        self.cosigner = Cosigner.of(name, key.public_key)
        self.logs = {v.name: v for v in logs}
        self.state = state
        self.clock = clock

    def _now(self) -> tuple[int, str]:
        t = self.clock()
        return int(t), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def add_checkpoint(self, body: bytes) -> WitnessReply:
        try:
            req = parse_add_checkpoint(body)
        except _BadRequest as exc:
            return WitnessReply(status=400, body=exc.message + "\n")
        # Pick the key by the origin line, then verify before reading anything else of the body.
        origin = req.checkpoint.split("\n", 1)[0]
        log = self.logs.get(origin)
        if log is None:
            return WitnessReply(status=404, body=f"unknown log {origin!r}\n")
        try:
            text, signers = open_note_signed_by(req.checkpoint, [log])
        except VerificationError as exc:
            return WitnessReply(status=403, body=f"checkpoint signature: {exc.message}\n")
        try:
            cp = parse_checkpoint_text(text, origin=origin)
        except VerificationError as exc:
            return WitnessReply(status=400, body=f"checkpoint: {exc.message}\n")
        if req.old_size > cp.size:
            return WitnessReply(status=400, body="old size is larger than the checkpoint size\n")
        log_lines = [s.line for s in parse_note(req.checkpoint).signatures
                     if s.name == log.name and s.key_id == log.key_hash]
        timestamp, at = self._now()
        with self.state.transaction() as txn:
            latest = txn.latest(origin)
            refusal = self._check(req, cp.size, cp.root_hash, latest)
            if refusal is not None:
                if refusal.status == 422:  # evidence of a misbehaving log: keep it
                    txn.record_refusal(origin, status=refusal.status, reason=refusal.body.strip(),
                                       note=req.checkpoint, at=at)
                return refusal
            line = cosign(text, name=self.name, key=self.key, timestamp=timestamp)
            note = text + "\n" + "".join(f"{s}\n" for s in log_lines) + line + "\n"
            if not (latest and latest.size == cp.size):
                txn.put(WitnessRecord(origin=origin, size=cp.size, root_hash=cp.root_hash, note=note), at=at)
        return WitnessReply(status=200, body=line + "\n")

    @staticmethod
    def _check(req: AddCheckpointRequest, size: int, root: bytes, latest: WitnessRecord | None) -> WitnessReply | None:
        have = latest.size if latest else 0
        if req.old_size != have:
            return WitnessReply(status=409, body=f"{have}\n", content_type=SIZE_CONTENT_TYPE)
        if size == 0 and root != merkle.EMPTY_ROOT:
            return WitnessReply(status=422, body="a checkpoint of size 0 must have the empty tree's root\n")
        if req.old_size == 0:
            if req.proof:
                return WitnessReply(status=422, body="a consistency proof from size 0 must be empty\n")
            return None
        assert latest is not None
        if req.old_size == size:
            if root != latest.root_hash:
                return WitnessReply(status=422, body=f"a different root for size {size}: the log forked\n")
            if req.proof:
                return WitnessReply(status=422, body="a consistency proof between equal sizes must be empty\n")
            return None
        try:
            merkle.verify_consistency(req.old_size, size, latest.root_hash, root, req.proof)
        except VerificationError as exc:
            return WitnessReply(status=422, body=f"consistency proof from {req.old_size} to {size}: {exc.message}\n")
        return None

    def latest_checkpoint(self, origin_hex: str) -> WitnessReply:
        """``GET <monitoring prefix>/<origin hash>/checkpoint``."""
        origin = next((o for o in self.logs if origin_hash(o) == origin_hex), None)
        if origin is None:
            return WitnessReply(status=404, body="unknown log\n")
        with self.state.read() as txn:
            latest = txn.latest(origin)
        if latest is None:
            return WitnessReply(status=404, body="no checkpoint cosigned for this log yet\n")
        return WitnessReply(status=200, body=latest.note)
