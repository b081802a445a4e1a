"""The full audit (SPEC §6 `verify`): re-verify everything the ledger holds against what was signed.

It reads one consistent snapshot (the store's read transaction), bounded by the latest checkpoint it starts
from, and streams: entries in chunks, checkpoints alongside them in size order, so memory stays flat however
many entries and checkpoints the ledger holds. Checks, each failing with an IntegrityError that names the
first bad entry or checkpoint:
  1 every stored checkpoint's signature (verified in bulk, on every core), and its row against its signed note;
  2 every entry is stored, in order, with no gap, up to the latest checkpoint and no further;
  3 every envelope's signer under the registry as it stood at that entry (tracker.verification);
  4 the item index (key_events) is exactly what the signed entries name;
  5 every stored Merkle node matches the tree the entries build, and every checkpoint's root matches it;
  6 consistency proofs served from the stored nodes between successive checkpoints;
  7 the stored registry (parties, keys, prefixes) is exactly the replayed `party` statements.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import AbstractSet, Any, Callable, Iterator, Sequence

from . import merkle
from .admission import bulk_verified, bulk_verified_later, keyring, raise_signer_failure
from .checkpoint import NoteVerifier, note_signatures, parse_checkpoint_text
from .dsse import PAYLOAD_TYPE, Envelope, Signature, event_id_of
from .errors import IntegrityError, InvalidStatement, Rejected, TrackerError, VerificationError
from .keys import SignatureJob, verify_many
from .parties import PartyRecord, party_from_record
from .statements import SIGNER_ROLES, Statement, index_keys, parse_statement
from .store.base import ReadTxn, StoredCheckpoint, StoredEntry
from .timefmt import parse_time

__all__ = ["AuditReport", "audit", "check_copied_entries"]

CHUNK = 2000
CONSISTENCY_WINDOW = 256
CHECKPOINT_BATCH = 1024  # stored checkpoints whose signatures are verified at once

_Parsed = tuple[Envelope, Statement, dict[str, Any], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    entries: int
    checkpoints: int
    root_hash: bytes
    parties: int


class _Checkpoints:
    """The stored checkpoints in size order, verified as they are read; consistency between successive ones is
    checked in windows, so only a window is ever held in memory."""

    def __init__(self, txn: ReadTxn, verifier: NoteVerifier, origin: str, top: int) -> None:
        self.txn, self.verifier, self.origin, self.top = txn, verifier, origin, top
        self._rows: Iterator[StoredCheckpoint] = txn.iter_checkpoints()
        self._verified: Iterator[StoredCheckpoint] = iter(())
        self.count = 0
        self._previous: StoredCheckpoint | None = None
        self._pairs: list[tuple[StoredCheckpoint, StoredCheckpoint]] = []
        self.pending: StoredCheckpoint | None = self._next()

    def _batch(self) -> Iterator[StoredCheckpoint]:
        """The next stored checkpoints (up to CHECKPOINT_BATCH, none past the snapshot's latest), their signatures
        verified together on every core; raises naming the first that fails."""
        rows: list[StoredCheckpoint] = []
        for cp in self._rows:
            if cp.size > self.top:
                self._rows = iter(())
                break  # later than the snapshot's checkpoint: not this audit's business
            rows.append(cp)
            if len(rows) >= CHECKPOINT_BATCH:
                break
        opened: list[tuple[StoredCheckpoint, str, list[bytes]] | IntegrityError] = []
        jobs: list[SignatureJob] = []
        for cp in rows:
            try:
                text, sigs = note_signatures(cp.note, self.verifier)
            except VerificationError as exc:
                opened.append(IntegrityError(f"stored checkpoint at size {cp.size} does not verify: {exc}"))
                continue
            opened.append((cp, text, sigs))
            jobs.extend((self.verifier.public_key, text.encode(), sig) for sig in sigs)
        results = iter(verify_many(jobs))
        out: list[StoredCheckpoint] = []
        for item in opened:
            if isinstance(item, IntegrityError):
                raise item
            cp, text, sigs = item
            if not all([next(results) for _ in sigs]):
                raise IntegrityError(f"stored checkpoint at size {cp.size} does not verify: signature does not "
                                     "verify")
            try:
                parsed = parse_checkpoint_text(text, origin=self.origin)
            except VerificationError as exc:
                raise IntegrityError(f"stored checkpoint at size {cp.size} does not verify: {exc}") from exc
            if parsed.size != cp.size or parsed.root_hash != cp.root_hash:
                raise IntegrityError(f"stored checkpoint row {cp.size} disagrees with its signed note")
            out.append(cp)
        return iter(out)

    def _next(self) -> StoredCheckpoint | None:
        cp = next(self._verified, None)
        if cp is None:
            self._verified = self._batch()
            cp = next(self._verified, None)
            if cp is None:
                return None
        self.count += 1
        if self._previous is not None and self._previous.size > 0:
            self._pairs.append((self._previous, cp))
            if len(self._pairs) >= CONSISTENCY_WINDOW:
                self.check_consistency()
        self._previous = cp
        return cp

    def reached(self, size: int, root: Callable[[], bytes]) -> None:
        """The entries have built the tree of ``size``: every checkpoint of that size must have its root."""
        while self.pending is not None and self.pending.size <= size:
            if self.pending.size == size and root() != self.pending.root_hash:
                raise IntegrityError(f"root after entry {size - 1} does not match the signed checkpoint at size "
                                     f"{size}")
            if self.pending.size < size and self.pending.size != 0:
                raise IntegrityError(f"checkpoint {self.pending.size} was passed without being checked")
            self.pending = self._next()

    def check_consistency(self) -> None:
        pairs, self._pairs = self._pairs, []
        plans = [merkle.consistency_ranges(a.size, b.size) if a.size != b.size else [] for a, b in pairs]
        nodes = self.txn.nodes([n for plan in plans for lo, hi in plan for n in merkle.range_nodes(lo, hi)])
        for (a, b), plan in zip(pairs, plans):
            try:
                proof = [merkle.range_hash(lo, hi, nodes) for lo, hi in plan]
                merkle.verify_consistency(a.size, b.size, a.root_hash, b.root_hash, proof)
            except (VerificationError, KeyError) as exc:
                raise IntegrityError(f"checkpoints {a.size} and {b.size} are not consistent: {exc}") from exc


def audit(txn: ReadTxn, *, verifier: NoteVerifier, origin: str,
          progress: Callable[[int, int], None] | None = None) -> AuditReport:
    """Audit the snapshot ``txn`` reads. Raises IntegrityError naming the first thing that does not hold."""
    latest = txn.latest_checkpoint()
    top = latest.size if latest is not None else 0
    stored_size = txn.tree_size()
    if stored_size < top:
        raise IntegrityError(f"checkpoint {top} covers entries that are missing: the ledger holds {stored_size} "
                             f"(entry {stored_size} was deleted)")
    if stored_size > top:
        raise IntegrityError(f"entries {top}..{stored_size - 1} are not covered by any signed checkpoint: rows were "
                             "appended outside the ledger")
    checkpoints = _Checkpoints(txn, verifier, origin, top)
    registry: dict[str, PartyRecord] = {}
    keys = keyring(txn.party_records().values())
    frontier = merkle.CompactRange()
    chunk: list[tuple[StoredEntry, _Parsed | IntegrityError]] = []
    expected = 0
    # One chunk's signatures verify on the verification threads while the next chunk is read and parsed here.
    pending: list[tuple[list[tuple[StoredEntry, _Parsed | IntegrityError]], Callable[[], AbstractSet[SignatureJob]]]] = []

    def start() -> None:
        if chunk:
            batch = list(chunk)
            chunk.clear()
            pending.append((batch, bulk_verified_later(
                (p[0] for _, p in batch if not isinstance(p, IntegrityError)), keys)))

    def finish() -> None:
        batch, verified_later = pending.pop(0)
        verified = verified_later()
        want_index: set[tuple[str, int]] = set()
        for entry, parsed in batch:
            want_index.update((k, entry.leaf_index) for k in _audit_entry(entry, parsed, registry, verified))
        lo, hi = batch[0][0].leaf_index, batch[-1][0].leaf_index
        stored_index = txn.key_events_between(lo, hi)
        if stored_index != want_index:
            bad = min(i for _, i in stored_index ^ want_index)
            raise IntegrityError(f"entry {bad}: the item index (key_events) disagrees with the signed entry -- "
                                 "rows were added or removed, hiding or inventing events for lookups")
        stored = txn.nodes_between([(level, lo >> level, hi >> level) for level in range((hi + 1).bit_length())])
        for entry, _ in batch:
            for level, idx, h in frontier.append(merkle.leaf_hash(entry.leaf_data)):
                if stored.get((level, idx)) != h:
                    raise IntegrityError(f"entry {entry.leaf_index} ({entry.event_id}): stored Merkle node "
                                         f"({level},{idx}) does not match the entry -- the row was edited or reordered")
            checkpoints.reached(frontier.size, frontier.root)
        if progress:
            progress(len(batch), top)

    def flush() -> None:
        start()
        while pending:
            finish()

    for entry in txn.iter_entries():
        if entry.leaf_index >= top:
            break
        if entry.leaf_index != expected:
            flush()  # anything wrong before the gap is named first
            raise IntegrityError(f"entry {expected} is missing (the next stored entry is {entry.leaf_index})")
        chunk.append((entry, _parse(entry)))
        expected += 1
        if len(chunk) >= CHUNK:
            start()
            if len(pending) > 1:
                finish()
    flush()
    if expected != top:
        raise IntegrityError(f"entry {expected} is missing: the checkpoint covers {top} entries")
    checkpoints.reached(top, frontier.root)
    checkpoints.check_consistency()
    _audit_registry(txn, registry)
    return AuditReport(entries=expected, checkpoints=checkpoints.count, root_hash=frontier.root(),
                       parties=len(registry))


def _parse(entry: StoredEntry) -> _Parsed | IntegrityError:
    """Only what a forger or an editor could change is re-read here; field validation was the door's job, and
    the Merkle checks cover every byte of the row."""
    where = f"entry {entry.leaf_index} ({entry.event_id})"
    try:
        doc = json.loads(entry.leaf_data)
        payload = base64.b64decode(doc["payload"], validate=True)
        env = Envelope(payload_type=doc["payloadType"], payload=payload, signatures=tuple(
            Signature(keyid=s["keyid"], sig=base64.b64decode(s["sig"], validate=True)) for s in doc["signatures"]))
        if env.payload_type != PAYLOAD_TYPE or not env.signatures:
            raise InvalidStatement("not a waybill envelope")
        body = json.loads(payload)
        if body.get("type") == "party":
            st = parse_statement(payload)
        else:
            st = Statement(type=body["type"], actor=body["actor"], time=parse_time(body["time"]), location={},
                           prev={}, raw=body)
        if st.type not in SIGNER_ROLES:
            raise InvalidStatement(f"unknown type {st.type!r}")
    except (TrackerError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return IntegrityError(f"{where} is not a well-formed statement: {exc}")
    return env, st, body, payload


def _audit_entry(entry: StoredEntry, parsed: _Parsed | IntegrityError, registry: dict[str, PartyRecord],
                 verified: AbstractSet[SignatureJob]) -> tuple[str, ...]:
    """Signer checks for one stored entry under the registry as it stood at that entry; returns its index keys."""
    if isinstance(parsed, IntegrityError):
        raise parsed
    env, st, body, payload = parsed
    where = f"entry {entry.leaf_index} ({entry.event_id})"
    if (event_id_of(payload) != entry.event_id or st.type != entry.type or st.actor != entry.actor
            or body.get("time") != entry.time):
        raise IntegrityError(f"{where}: the row's columns disagree with its signed payload")
    party = st.party if (entry.leaf_index == 0 and st.type == "party") else registry.get(st.actor)
    try:
        raise_signer_failure(st, env, party, now=None, verified=verified)
    except Rejected as exc:
        raise IntegrityError(f"{where}: {exc.code}: {exc}") from exc
    if st.type == "party":
        assert st.party is not None
        registry[st.party.id] = st.party
    return index_keys(body)


def _audit_registry(txn: ReadTxn, registry: dict[str, PartyRecord]) -> None:
    """The stored registry (what admission and lookups read) must be exactly the replayed `party` statements."""
    stored = txn.party_records()
    for pid in sorted(set(stored) | set(registry)):
        have = party_from_record(stored[pid]) if pid in stored else None
        if have != registry.get(pid):
            raise IntegrityError(f"party {pid}: the stored registry disagrees with the signed party statements")
    if txn.party_keyids() != {k.keyid: p.id for p in registry.values() for k in p.keys}:
        raise IntegrityError("the stored key-to-party table disagrees with the signed party statements")
    if txn.party_prefixes() != {(prefix, p.id) for p in registry.values() for prefix in p.gs1_prefixes}:
        raise IntegrityError("the stored prefix-to-brand-owner table disagrees with the signed party statements")


def check_copied_entries(first_index: int, leaves: Sequence[bytes], registry: dict[str, PartyRecord]
                         ) -> list[tuple[StoredEntry, tuple[str, ...], str | None]]:
    """For mirrors (tracker.mirror): the audit's own checks over entries copied from another ledger, in order
    from ``first_index``, under ``registry`` as it stood before them (updated in place). Returns each entry's row,
    the index keys it gets, and for a `party` statement the registry record to store. Raises IntegrityError naming
    the first entry that is not a well-formed, validly signed statement."""
    rows: list[StoredEntry] = []
    parsed: list[_Parsed | IntegrityError] = []
    for i, data in enumerate(leaves):
        probe = StoredEntry(leaf_index=first_index + i, event_id="", type="", actor="", time="", leaf_data=data)
        one = _parse(probe)
        if isinstance(one, IntegrityError):
            raise one
        parsed.append(one)
        env, st, body, payload = one
        rows.append(StoredEntry(leaf_index=first_index + i, event_id=event_id_of(payload), type=st.type,
                                actor=st.actor, time=str(body.get("time")), leaf_data=data))
    keys = {k.keyid: k.public_key for p in registry.values() for k in p.keys}
    verified = bulk_verified((one[0] for one in parsed if not isinstance(one, IntegrityError)), keys)
    out: list[tuple[StoredEntry, tuple[str, ...], str | None]] = []
    for row, one in zip(rows, parsed):
        touched = _audit_entry(row, one, registry, verified)
        body = one[2] if not isinstance(one, IntegrityError) else {}
        record = json.dumps(body["party"], sort_keys=True) if row.type == "party" else None
        out.append((row, touched, record))
    return out
