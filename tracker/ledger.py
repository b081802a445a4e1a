"""The append-only ledger: admission of signed statements (tracker.admission), the RFC 6962 log over them,
signed checkpoints, proofs, and the full audit (tracker.audit) (SPEC §2, §3).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import AbstractSet, Any, Callable, Mapping, Sequence

from . import merkle
from .admission import (CLOCK_SKEW, Admission, VerifiedLater, bulk_verified, bulk_verified_later,
                        party_record_json, raise_signer_failure,
                        statement_of_entry)
from .audit import AuditReport, audit, check_copied_entries
from .checkpoint import Checkpoint, NoteVerifier, parse_vkey, sign_checkpoint, verify_checkpoint, vkey_string
from .dsse import Envelope, parse_envelope, sign_envelope
from .errors import (IntegrityError, InvalidInput, InvalidStatement, NotFound, Rejected, TrackerError,
                     VerificationError)
from .group_commit import GroupCommitter, GroupSettings, group_settings
from .keys import PARALLEL_MIN, KeyPair, SignatureJob
from .parties import PartyRecord, party_from_record
from .statements import Statement, format_time, index_keys, parse_statement, statement_bytes
from .timefmt import parse_time
from .store.base import ReadTxn, Store, StoredCheckpoint, StoredEntry, WriteTxn

__all__ = ["Ledger", "AppendResult", "AuditReport", "CLOCK_SKEW", "MAX_BATCH", "MAX_ENTRY_BYTES", "party_from_record",
           "statement_of_entry"]

MAX_BATCH = 1000
# C2SP tlog-tiles entry bundles carry each entry behind a 16-bit length: a larger entry could never be served to a
# mirror or a monitor, so the door refuses it and asks for several statements instead.
MAX_ENTRY_BYTES = 0xFFFF
CHECKPOINT_INTERVAL = 1.0  # seconds: the checkpoint history keeps one per interval, plus the latest


def checkpoint_interval(env: Mapping[str, str] | None = None) -> float:
    """WAYBILL_CHECKPOINT_INTERVAL seconds (default 1; 0 keeps every commit's checkpoint in the history)."""
    value = (os.environ if env is None else env).get("WAYBILL_CHECKPOINT_INTERVAL", "").strip()
    try:
        return max(0.0, float(value)) if value else CHECKPOINT_INTERVAL
    except ValueError:
        return CHECKPOINT_INTERVAL


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    event_id: str
    leaf_index: int
    created: bool


_Parsed = tuple[Envelope, Statement] | TrackerError
PIPELINE_CHUNK = 128  # envelopes parsed before their signatures are handed to the verification threads


@dataclass(frozen=True, slots=True, kw_only=True)
class _Batch:
    """One caller's envelopes, parsed and signature-checked in the caller's own thread (outside every lock)."""

    parsed: Sequence[_Parsed]
    now: datetime
    verified: AbstractSet[SignatureJob]
    admit: bool
    all_or_nothing: bool = False


class Ledger:
    """An append-only log over a Store. Writers need ``signing_key`` (the ledger's own key).

    ``group``: group commit for concurrent appends on this handle (tracker.group_commit; default from
    WAYBILL_GROUP_COMMIT / WAYBILL_GROUP_COMMIT_MS). ``checkpoint_interval``: every commit signs and stores the
    latest checkpoint, but the stored history keeps one checkpoint per this many seconds (plus the latest), so
    storage and audit follow the ledger's size rather than its number of commits."""

    def __init__(self, store: Store, *, signing_key: KeyPair | None = None, group: GroupSettings | None = None,
                 checkpoint_interval: float | None = None) -> None:
        with store.read() as txn:
            meta = txn.meta()
        if "origin" not in meta:
            raise NotFound("the ledger is not initialised: run `tracker init`", code="not_initialised")
        self._setup(store, signing_key, meta["origin"], meta["vkey"], group, checkpoint_interval)
        if signing_key is not None and signing_key.public_key != self.note_verifier.public_key:
            raise VerificationError("the ledger key given does not match the ledger's verifier key")

    def _setup(self, store: Store, signing_key: KeyPair | None, origin: str, vkey: str,
               group: GroupSettings | None, interval: float | None) -> None:
        self.store = store
        self.signing_key = signing_key
        self.origin = origin
        self.vkey = vkey
        self.note_verifier: NoteVerifier = parse_vkey(vkey)
        self.checkpoint_interval = checkpoint_interval() if interval is None else max(0.0, interval)
        settings = group or group_settings()
        self.group: GroupCommitter | None = GroupCommitter(self._write_group, settings) if settings.enabled else None
        self._keys: dict[str, bytes] = {}  # key id -> public key, for checking signatures before the lock
        self._records: dict[str, PartyRecord] = {}  # stored registry record -> parsed (records are values)
        self.lookup_caches: Any = None  # tracker.provenance.lookup.LookupCaches, made on the first lookup

    def _party(self, record_json: str) -> PartyRecord:
        party = self._records.get(record_json)
        if party is None:
            if len(self._records) > 10_000:
                self._records.clear()
            party = self._records[record_json] = party_from_record(record_json)
        return party

    # --- creation ----------------------------------------------------------------------------------

    @staticmethod
    def create(store: Store, *, origin: str, ledger_key: KeyPair, admin_key: KeyPair, now: datetime,
               admin_country: str = "ZZ", admin_name: str = "Ledger administrator") -> "Ledger":
        """Initialise an empty store: meta, and leaf 0 — the genesis `party` statement registering party
        ``admin`` with ``admin_key``, signed by that key. On an initialised store, changes nothing."""
        with store.write() as txn:
            if txn.meta().get("origin"):
                return Ledger(store, signing_key=ledger_key)
            if txn.tree_size() != 0:
                raise IntegrityError("the store has entries but no ledger metadata")
            txn.set_meta({"origin": origin, "vkey": vkey_string(origin, ledger_key.public_key),
                          "created_at": format_time(now)})
            when = format_time(now.replace(microsecond=0))
            doc = {"v": 1, "type": "party", "actor": "admin", "time": when,
                   "location": {"name": admin_name, "country": admin_country},
                   "party": {"id": "admin", "name": admin_name, "country": admin_country, "roles": ["admin"],
                             "keys": [{"public_key": admin_key.public_key_b64, "not_before": when}]}}
            env = sign_envelope(statement_bytes(doc), [admin_key])
            st = parse_statement(env.payload)
            raise_signer_failure(st, env, st.party, now=now)
            ledger = Ledger.__new__(Ledger)
            ledger._setup(store, ledger_key, origin, vkey_string(origin, ledger_key.public_key), None, None)
            ledger._commit(txn, [(env, st)], merkle.CompactRange(), now=now)
        return ledger

    # --- appends -----------------------------------------------------------------------------------

    def append(self, envelope: Envelope | Mapping[str, Any] | str | bytes, *, now: datetime) -> AppendResult:
        """Admit one envelope. Raises InvalidStatement / Rejected naming the field and rule."""
        result = self.append_batch([envelope], now=now)[0]
        if isinstance(result, TrackerError):
            raise result
        return result

    def append_batch(self, envelopes: Sequence[Any], *, now: datetime,
                     all_or_nothing: bool = False) -> list[AppendResult | TrackerError]:
        """Admit several envelopes in order in one transaction; each gets a result or its own error.
        Later envelopes may build on earlier ones (commission then ship). Nothing is half-written:
        a crash before commit stores none of them, after commit all admitted ones.
        ``all_or_nothing``: if any envelope is refused, none is stored (the new ones report ``rolled_back``);
        such a batch commits alone, never grouped with other callers'."""
        return self._append(envelopes, now=now, admit=True, all_or_nothing=all_or_nothing)

    def import_envelopes(self, envelopes: Sequence[Any], *, now: datetime) -> list[AppendResult | TrackerError]:
        """An operator's import of statements recorded elsewhere: stored as evidence after shape checks only
        (no signature, role or reference checks). Lookups and ``audit`` still judge every signature, so a
        forged import is flagged, never trusted. Not reachable from the HTTP API."""
        return self._append(envelopes, now=now, admit=False)

    def _append(self, envelopes: Sequence[Any], *, now: datetime, admit: bool,
                all_or_nothing: bool = False) -> list[AppendResult | TrackerError]:
        if self.signing_key is None:
            raise InvalidInput("this ledger handle is read-only (no ledger signing key)", code="read_only")
        if len(envelopes) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} envelopes", code="batch_too_large")
        parsed: list[_Parsed] = []
        verifying = VerifiedLater()
        for i in range(0, len(envelopes), PIPELINE_CHUNK):
            chunk: list[tuple[Envelope, Statement]] = []
            for raw in envelopes[i:i + PIPELINE_CHUNK]:
                try:
                    env = raw if isinstance(raw, Envelope) else parse_envelope(raw)
                    if len(env.leaf_data()) > MAX_ENTRY_BYTES:
                        raise InvalidStatement(f"this statement is {len(env.leaf_data())} bytes as stored; the ledger "
                                               f"keeps entries of at most {MAX_ENTRY_BYTES} bytes (what C2SP tiles "
                                               "can serve): split its items over several statements", field="items")
                    item = (env, parse_statement(env.payload))
                except TrackerError as exc:
                    parsed.append(exc)
                    continue
                parsed.append(item)
                chunk.append(item)
            if admit and chunk:
                # A big batch's signatures verify on the verification threads while the rest is parsed (and
                # admitted: admission waits only for the chunk that holds the signature it asks about).
                verifying.add(self._preverify(chunk, later=len(envelopes) >= PARALLEL_MIN))
        good = [p for p in parsed if not isinstance(p, TrackerError)]
        batch = _Batch(parsed=parsed, now=now, verified=verifying, admit=admit, all_or_nothing=all_or_nothing)
        if self.group is not None and admit and good and not all_or_nothing:
            results: list[AppendResult | TrackerError] = self.group.submit(batch, len(envelopes))
            return results
        return self._write_group(lambda: [batch])[0]

    def _preverify(self, items: Sequence[tuple[Envelope, Statement]], *,
                   later: bool = False) -> Callable[[], AbstractSet[SignatureJob]]:
        """Verify signatures before taking any lock, in the caller's thread (libsodium runs without the GIL, so
        concurrent requests verify on every core) and, for big batches, on every core at once. Only whether
        a signature is valid under a public key is settled here; admission still runs every check in order
        under the registry in the transaction, and verifies whatever this missed. A key id names its key
        (a hash of it), so the key ring cached here can be stale but never wrong."""
        wanted = {sig.keyid for env, _ in items for sig in env.signatures} - set(self._keys)
        if wanted:
            with self.store.read() as txn:
                records = txn.party_records_for({st.actor for _, st in items})
            if len(self._keys) > 100_000:
                self._keys.clear()
            self._keys.update({k.keyid: k.public_key for rec in records.values() for k in self._party(rec).keys})
        if later:
            return bulk_verified_later((env for env, _ in items), self._keys)
        done = bulk_verified((env for env, _ in items), self._keys)
        return lambda: done

    def _write_group(self, take: Callable[[], Sequence[_Batch]]) -> list[list[AppendResult | TrackerError]]:
        """Admit several callers' batches in order in one transaction, with one checkpoint. ``take`` hands
        them over once the writer lock is held (tracker/group_commit.py: the group grows while it waits)."""
        with self.store.write() as txn:
            batches = take()
            out: list[list[AppendResult | TrackerError]] = [[] for _ in batches]
            size = txn.tree_size()
            adm = Admission(txn, read_party=self._party)
            existing = txn.entries_by_event_ids(p[0].event_id for b in batches for p in b.parsed
                                                if not isinstance(p, TrackerError))
            adm.prefetch(p[1] for b in batches if b.admit for p in b.parsed
                         if not isinstance(p, TrackerError) and p[0].event_id not in existing)
            admitted: list[tuple[Envelope, Statement]] = []
            for batch, results in zip(batches, out):
                for item in batch.parsed:
                    if isinstance(item, TrackerError):
                        results.append(item)
                        continue
                    env, st = item
                    eid = env.event_id
                    if eid in existing:
                        results.append(AppendResult(event_id=eid, leaf_index=existing[eid].leaf_index,
                                                    created=False))
                        continue
                    if eid in adm.new_events:
                        results.append(AppendResult(event_id=eid, leaf_index=adm.new_events[eid][0], created=False))
                        continue
                    try:
                        if batch.admit:
                            adm.admit(env, st, now=batch.now, verified=batch.verified)
                        elif st.type == "party":
                            raise Rejected("party statements cannot be imported: the registry changes only "
                                           "through admitted, admin-signed statements", code="unauthorized_signer",
                                           field="type")
                    except TrackerError as exc:
                        results.append(exc)
                        continue
                    index = size + len(admitted)
                    admitted.append((env, st))
                    adm.new_events[eid] = (index, st)
                    adm.new_keys.update(st.keys_touched)
                    results.append(AppendResult(event_id=eid, leaf_index=index, created=True))
            if len(batches) == 1 and batches[0].all_or_nothing and any(isinstance(r, TrackerError) for r in out[0]):
                return [[Rejected("not stored: another envelope of this all-or-nothing batch was refused",
                                  code="rolled_back") if isinstance(r, AppendResult) and r.created else r
                         for r in out[0]]]
            if admitted:
                frontier = merkle.CompactRange.from_store(size, txn.nodes)
                self._commit(txn, admitted, frontier, now=max(b.now for b in batches))
        return out

    def _commit(self, txn: WriteTxn, admitted: Sequence[tuple[Envelope, Statement]],
                frontier: merkle.CompactRange, *, now: datetime) -> None:
        entries: list[StoredEntry] = []
        nodes: list[tuple[int, int, bytes]] = []
        key_rows: list[tuple[str, int]] = []
        for env, st in admitted:
            index = frontier.size
            data = env.leaf_data()
            nodes.extend(frontier.append(merkle.leaf_hash(data)))
            entries.append(StoredEntry(leaf_index=index, event_id=env.event_id, type=st.type, actor=st.actor,
                                       time=st.time_str, leaf_data=data))
            key_rows.extend((k, index) for k in index_keys(st.raw))
            if st.type == "party":
                assert st.party is not None
                txn.put_party(st.party.id, party_record_json(st), index, [k.keyid for k in st.party.keys],
                              st.party.gs1_prefixes)
        stamp = format_time(now)
        txn.add_entries(entries, ingested_at=stamp)
        txn.add_nodes(nodes)
        txn.add_key_events(key_rows)
        root = frontier.root()
        cp = Checkpoint(origin=self.origin, size=frontier.size, root_hash=root)
        if self.signing_key is None:  # _append refused already; kept for the type checker's sake
            raise InvalidInput("this ledger handle is read-only (no ledger signing key)", code="read_only")
        note = sign_checkpoint(cp, name=self.origin, key=self.signing_key)
        self._prune_history(txn)
        txn.add_checkpoint(StoredCheckpoint(size=cp.size, root_hash=root, note=note, created_at=stamp))

    def _prune_history(self, txn: WriteTxn) -> None:
        """The checkpoint being replaced as the latest stays in the history only if it opened a later interval
        than the one kept before it: the history holds at most one checkpoint per interval, plus the latest.
        (Stamps come from the callers' clocks and need not rise in commit order: a late one is dropped.)"""
        if self.checkpoint_interval <= 0:
            return
        recent = txn.recent_checkpoints(2)
        if len(recent) == 2 and self._interval_of(recent[0]) <= self._interval_of(recent[1]):
            if not txn.is_cosigned(recent[0].size):  # a cosigned checkpoint is what policies and proofs cite
                txn.delete_checkpoint(recent[0].size)

    def _interval_of(self, cp: StoredCheckpoint) -> int:
        try:
            return int(parse_time(cp.created_at).timestamp() // self.checkpoint_interval)
        except TrackerError:
            return -1 - cp.size  # an unreadable stamp shares its interval with nothing

    # --- reads -------------------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The latest signed checkpoint: it covers every acknowledged statement (each commit signs a new one
        before it acknowledges anything, so the merge delay is zero)."""
        with self.store.read() as txn:
            cp = txn.latest_checkpoint()
        if cp is None:
            raise NotFound("the ledger has no checkpoint yet", code="no_checkpoint")
        return cp.note

    def verified_checkpoint(self, note: str | None = None) -> Checkpoint:
        return verify_checkpoint(note if note is not None else self.checkpoint(), self.note_verifier,
                                 origin=self.origin)

    def size(self) -> int:
        with self.store.read() as txn:
            return txn.tree_size()

    def get_event(self, event_id: str) -> tuple[StoredEntry, Statement]:
        with self.store.read() as txn:
            entry = txn.entry_by_event_id(event_id)
        if entry is None:
            raise NotFound(f"no event {event_id}", code="event_not_found")
        return entry, statement_of_entry(entry)

    def party(self, party_id: str) -> PartyRecord:
        with self.store.read() as txn:
            rec = txn.party_record(party_id)
        if rec is None:
            raise NotFound(f"no party {party_id!r}", code="party_not_found")
        return party_from_record(rec)

    def parties(self) -> list[PartyRecord]:
        with self.store.read() as txn:
            return [party_from_record(r) for r in txn.party_records().values()]

    def _tree_size_arg(self, txn: ReadTxn, tree_size: int | None) -> int:
        latest = txn.latest_checkpoint()
        top = latest.size if latest else 0
        if tree_size is None:
            return top
        if not 0 < tree_size <= top:
            raise InvalidInput(f"tree_size must be between 1 and {top} (the latest checkpoint)",
                               code="invalid_tree_size", field="tree_size")
        return tree_size

    def inclusion_proof(self, *, event_id: str | None = None, leaf_index: int | None = None,
                        tree_size: int | None = None) -> tuple[int, int, list[bytes]]:
        """(leaf_index, tree_size, audit path) — O(log n) node reads."""
        with self.store.read() as txn:
            size = self._tree_size_arg(txn, tree_size)
            if event_id is not None:
                entry = txn.entry_by_event_id(event_id)
                if entry is None:
                    raise NotFound(f"no event {event_id}", code="event_not_found")
                leaf_index = entry.leaf_index
            if leaf_index is None or not 0 <= leaf_index < size:
                raise InvalidInput(f"the event is not in the tree of size {size}", code="not_in_tree",
                                   field="tree_size")
            ranges = merkle.inclusion_ranges(leaf_index, size)
            return leaf_index, size, self._range_hashes(txn, ranges)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.store.read() as txn:
            top = self._tree_size_arg(txn, None)
            if not 0 < first <= second <= top:
                raise InvalidInput(f"need 0 < first <= second <= {top}", code="invalid_tree_size", field="first")
            if first == second:
                return []
            return self._range_hashes(txn, merkle.consistency_ranges(first, second))

    @staticmethod
    def _range_hashes(txn: ReadTxn, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        ids = [n for a, b in ranges for n in merkle.range_nodes(a, b)]
        nodes = txn.nodes(ids)
        missing = [i for i in ids if i not in nodes]
        if missing:
            raise IntegrityError(f"the stored tree lacks node {missing[0]}")
        return [merkle.range_hash(a, b, nodes) for a, b in ranges]

    def root_at(self, txn: ReadTxn, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        return self._range_hashes(txn, [(0, size)])[0]

    # --- audit -------------------------------------------------------------------------------------

    def audit(self, *, progress: Callable[[int, int], None] | None = None) -> AuditReport:
        """Re-verify everything (SPEC §6 `verify`) in one consistent snapshot: see tracker.audit. Raises
        IntegrityError naming the first bad entry."""
        with self.store.read() as txn:
            return audit(txn, verifier=self.note_verifier, origin=self.origin, progress=progress)

    # Mirrors (tracker.mirror) run the audit's checks over entries they copy.
    check_copied_entries = staticmethod(check_copied_entries)
