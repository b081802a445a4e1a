"""The append-only ledger: admission of signed statements (SPEC §2), the RFC 6962 log over them, signed
checkpoints, proofs, and the full audit (SPEC §3).

Admission is a numbered sequence of checks, each failing with its own code:
  1 envelope shape → 2 statement shape → 3 clock → 4 duplicate → 5 signer known
  → 6 signature under a key valid at `time` and not revoked now → 7 role → 8 references exist.
Custody is *not* checked here: a well-signed statement that breaks the chain is evidence, and the
lookup (provenance.py) judges it.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AbstractSet, Any, Callable, Iterable, Mapping, Sequence

from . import merkle
from .checkpoint import Checkpoint, NoteVerifier, parse_vkey, sign_checkpoint, verify_checkpoint, vkey_string
from .dsse import PAYLOAD_TYPE, Envelope, Signature, event_id_of, parse_envelope, sign_envelope
from .errors import (IntegrityError, InvalidInput, InvalidStatement, NotFound, Rejected, TrackerError,
                     VerificationError)
from .keys import PARALLEL_MIN, KeyPair, SignatureJob, verifier_for, verify_many
from .statements import (SIGNER_ROLES, PartyRecord, Statement, _party, format_time, parse_statement,
                         parse_time, statement_bytes)
from .store.base import ReadTxn, Store, StoredCheckpoint, StoredEntry, WriteTxn

__all__ = ["Ledger", "AppendResult", "AuditReport", "CLOCK_SKEW", "MAX_BATCH", "party_from_record"]

CLOCK_SKEW = timedelta(minutes=5)
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    event_id: str
    leaf_index: int
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    entries: int
    checkpoints: int
    root_hash: bytes
    parties: int


def party_from_record(record_json: str) -> PartyRecord:
    return _party(json.loads(record_json))


def _signing_check(st: Statement, env: Envelope, party: PartyRecord | None, *, now: datetime | None,
                   verified: AbstractSet[SignatureJob] = frozenset()) -> None:
    """Checks 5–7: the signer is registered, one signature verifies under its key valid at ``time``
    (and not revoked by ``now`` when given), and it holds the role the statement type needs.
    ``verified`` holds (public key, message, signature) triples already verified in bulk."""
    if party is None:
        raise Rejected(f"actor {st.actor!r} is not a registered party", code="unknown_party", field="actor")
    message = env.pae()
    reasons = []
    for sig in env.signatures:
        key = party.key(sig.keyid)
        if key is None:
            reasons.append(("unknown_key", f"key {sig.keyid} is not a key of {party.id}"))
            continue
        if now is not None and key.revoked_by(now):
            reasons.append(("revoked_key", f"key {sig.keyid} of {party.id} is revoked"))
            continue
        if not key.valid_at(st.time):
            reasons.append(("revoked_key" if key.revoked_at and st.time >= key.revoked_at else "key_not_valid",
                            f"key {sig.keyid} of {party.id} is not valid at {st.time_str}"))
            continue
        if (key.public_key, message, sig.sig) not in verified and not verifier_for(key.public_key).is_valid(
                message, sig.sig):
            reasons.append(("bad_signature", f"signature by key {sig.keyid} does not verify"))
            continue
        break
    else:
        code, msg = reasons[0]
        raise Rejected(msg, code=code, field="signatures")
    if not set(party.roles) & SIGNER_ROLES[st.type]:
        raise Rejected(f"{party.id} (roles: {', '.join(party.roles)}) may not sign a {st.type} statement",
                       code="unauthorized_signer", field="actor")


_Parsed = tuple[Envelope, Statement, dict, bytes]  # a stored entry read for the audit


def _bulk_verified(envelopes: Iterable[Envelope], keyring: Mapping[str, bytes]) -> AbstractSet[SignatureJob]:
    """The (public key, message, signature) triples of these envelopes that verify, checked on every core
    under the keys ``keyring`` maps their key ids to. ``_signing_check`` only looks results up by the exact
    triple, so a key the signer does not own here can never vouch for it."""
    jobs: list[SignatureJob] = []
    for env in envelopes:
        message = env.pae()
        for sig in env.signatures:
            public_key = keyring.get(sig.keyid)
            if public_key is not None:
                jobs.append((public_key, message, sig.sig))
    return frozenset(job for job, ok in zip(jobs, verify_many(jobs)) if ok)


def _keyring(records: Iterable[str]) -> dict[str, bytes]:
    """Key id -> public key over stored party records (a key id belongs to one party: ``key_in_use``)."""
    return {k.keyid: k.public_key for rec in records for k in party_from_record(rec).keys}


class _Admission:
    """One write transaction's view: the store plus what this batch has already admitted."""

    def __init__(self, txn: WriteTxn) -> None:
        self.txn = txn
        self.parties: dict[str, PartyRecord | None] = {}
        self.new_keys: set[str] = set()
        self.new_events: dict[str, tuple[int, Statement]] = {}
        self.keyid_owner: dict[str, str] = {}

    def party(self, pid: str) -> PartyRecord | None:
        if pid not in self.parties:
            rec = self.txn.party_record(pid)
            self.parties[pid] = party_from_record(rec) if rec else None
        return self.parties[pid]

    def owner_of(self, keyid: str) -> str | None:
        if keyid in self.keyid_owner:
            return self.keyid_owner[keyid]
        return self.txn.party_for_keyid(keyid)

    def statement_of(self, event_id: str) -> Statement | None:
        if event_id in self.new_events:
            return self.new_events[event_id][1]
        entry = self.txn.entry_by_event_id(event_id)
        return statement_of_entry(entry) if entry else None


def statement_of_entry(entry: StoredEntry) -> Statement:
    doc = json.loads(entry.leaf_data)
    return parse_statement(base64.b64decode(doc["payload"]))


class Ledger:
    """An append-only log over a Store. Writers need ``signing_key`` (the ledger's own key)."""

    def __init__(self, store: Store, *, signing_key: KeyPair | None = None) -> None:
        self.store = store
        self.signing_key = signing_key
        with store.read() as txn:
            meta = txn.meta()
        if "origin" not in meta:
            raise NotFound("the ledger is not initialised: run `tracker init`", code="not_initialised")
        self.origin = meta["origin"]
        self.vkey = meta["vkey"]
        self.note_verifier: NoteVerifier = parse_vkey(self.vkey)
        if signing_key is not None and signing_key.public_key != self.note_verifier.public_key:
            raise VerificationError("the ledger key given does not match the ledger's verifier key")

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
            _signing_check(st, env, st.party, now=now)
            ledger = Ledger.__new__(Ledger)
            ledger.store, ledger.signing_key, ledger.origin = store, ledger_key, origin
            ledger.vkey = vkey_string(origin, ledger_key.public_key)
            ledger.note_verifier = parse_vkey(ledger.vkey)
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
        ``all_or_nothing``: if any envelope is refused, none is stored (the new ones report ``rolled_back``)."""
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
        parsed: list[tuple[Envelope, Statement] | TrackerError] = []
        for raw in envelopes:
            try:
                env = raw if isinstance(raw, Envelope) else parse_envelope(raw)
                parsed.append((env, parse_statement(env.payload)))
            except TrackerError as exc:
                parsed.append(exc)
        results: list[AppendResult | TrackerError] = []
        verified = self._preverify([p for p in parsed if not isinstance(p, TrackerError)]) if admit else frozenset()
        with self.store.write() as txn:
            size = txn.tree_size()
            adm = _Admission(txn)
            existing = txn.entries_by_event_ids(p[0].event_id for p in parsed if not isinstance(p, TrackerError))
            admitted: list[tuple[Envelope, Statement]] = []
            for item in parsed:
                if isinstance(item, TrackerError):
                    results.append(item)
                    continue
                env, st = item
                eid = env.event_id
                if eid in existing:
                    results.append(AppendResult(event_id=eid, leaf_index=existing[eid].leaf_index, created=False))
                    continue
                if eid in adm.new_events:
                    results.append(AppendResult(event_id=eid, leaf_index=adm.new_events[eid][0], created=False))
                    continue
                try:
                    if admit:
                        self._admit(adm, env, st, now=now, verified=verified)
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
            if all_or_nothing and any(isinstance(r, TrackerError) for r in results):
                return [Rejected("not stored: another envelope of this all-or-nothing batch was refused",
                                 code="rolled_back") if isinstance(r, AppendResult) and r.created else r
                        for r in results]
            if admitted:
                frontier = merkle.CompactRange.from_store(size, txn.nodes)
                self._commit(txn, admitted, frontier, now=now)
        return results

    def _preverify(self, items: Sequence[tuple[Envelope, Statement]]) -> AbstractSet[SignatureJob]:
        """Verify a batch's signatures on every core before taking the write lock, under the keys the
        registry holds now; admission still runs every check in order and verifies whatever this missed
        (keys registered earlier in the same batch)."""
        if len(items) < PARALLEL_MIN:
            return frozenset()
        with self.store.read() as txn:
            records = txn.party_records_for({st.actor for _, st in items})
        return _bulk_verified((env for env, _ in items), _keyring(records.values()))

    def _admit(self, adm: _Admission, env: Envelope, st: Statement, *, now: datetime,
               verified: AbstractSet[SignatureJob] = frozenset()) -> None:
        if st.time > now + CLOCK_SKEW:
            raise Rejected(f"time {st.time_str} is in the future (more than 5 minutes ahead)", code="future_time",
                           field="time")
        party = adm.party(st.actor)
        _signing_check(st, env, party, now=now, verified=verified)
        if st.type == "party":
            self._admit_party(adm, st)
        elif st.type == "receive":
            ship = adm.statement_of(st.ship)
            if ship is None or ship.type != "ship":
                raise Rejected(f"ship {st.ship} is not a ship event in the ledger", code="unknown_event", field="ship")
            if ship.to != st.actor or ship.actor != st.from_:
                raise Rejected(f"that shipment went from {ship.actor} to {ship.to}, not from {st.from_} to {st.actor}",
                               code="receive_mismatch", field="from")
            extra = [k for k in st.items if k not in ship.items]
            if extra:
                raise Rejected(f"{extra[0]} was not in shipment {st.ship}", code="receive_mismatch", field="items")
        needed = set(st.items)
        if st.type == "commission":
            needed = set()
        elif st.type == "disaggregate" and st.container:
            needed.add(st.container)
        missing = needed - adm.new_keys
        if missing:
            missing -= adm.txn.keys_exist(missing)
        if missing:
            raise Rejected(f"{sorted(missing)[0]} is not a known item or container", code="unknown_item", field="items")

    def _admit_party(self, adm: _Admission, st: Statement) -> None:
        new = st.party
        assert new is not None
        old = adm.party(new.id)
        for key in new.keys:
            owner = adm.owner_of(key.keyid)
            if owner is not None and owner != new.id:
                raise Rejected(f"key {key.keyid} already belongs to {owner}", code="key_in_use", field="party.keys")
        if old is not None:
            for key in old.keys:
                now_key = new.key(key.keyid)
                if now_key is None:
                    raise Rejected(f"key {key.keyid} of {old.id} cannot be removed, only revoked",
                                   code="invalid_party_update", field="party.keys")
                if key.revoked_at is not None and now_key.revoked_at != key.revoked_at and (
                        now_key.revoked_at is None or now_key.revoked_at > key.revoked_at):
                    raise Rejected(f"key {key.keyid} was revoked; a revocation can only move earlier",
                                   code="invalid_party_update", field="party.keys")
        adm.parties[new.id] = new
        for key in new.keys:
            adm.keyid_owner[key.keyid] = new.id

    def _commit(self, txn: WriteTxn, admitted: Sequence[tuple[Envelope, Statement]],
                frontier: merkle.CompactRange, *, now: datetime) -> None:
        entries, nodes, key_rows = [], [], []
        for env, st in admitted:
            index = frontier.size
            data = env.leaf_data()
            nodes.extend(frontier.append(merkle.leaf_hash(data)))
            entries.append(StoredEntry(leaf_index=index, event_id=env.event_id, type=st.type, actor=st.actor,
                                       time=st.time_str, leaf_data=data))
            key_rows.extend((k, index) for k in st.keys_touched)
            if st.type == "party":
                txn.put_party(st.party.id, json.dumps(st.raw["party"], sort_keys=True), index,
                              [k.keyid for k in st.party.keys])
        stamp = format_time(now)
        txn.add_entries(entries, ingested_at=stamp)
        txn.add_nodes(nodes)
        txn.add_key_events(key_rows)
        root = frontier.root()
        cp = Checkpoint(origin=self.origin, size=frontier.size, root_hash=root)
        note = sign_checkpoint(cp, name=self.origin, key=self.signing_key)
        txn.add_checkpoint(StoredCheckpoint(size=cp.size, root_hash=root, note=note, created_at=stamp))

    # --- reads -------------------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The latest signed checkpoint: it covers every acknowledged statement (one per append commit)."""
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
        """Re-verify everything (SPEC §6 `verify`): every envelope signature under the registry as it stood at
        that entry, every leaf and stored node against the entries, every checkpoint's signature and root,
        consistency between successive checkpoints. Raises IntegrityError naming the first bad entry."""
        with self.store.read() as txn:
            size = txn.tree_size()
            checkpoints = list(txn.iter_checkpoints())
            for cp in checkpoints:
                try:
                    parsed = verify_checkpoint(cp.note, self.note_verifier, origin=self.origin)
                except VerificationError as exc:
                    raise IntegrityError(f"stored checkpoint at size {cp.size} does not verify: {exc}") from exc
                if parsed.size != cp.size or parsed.root_hash != cp.root_hash:
                    raise IntegrityError(f"stored checkpoint row {cp.size} disagrees with its signed note")
            if checkpoints and checkpoints[-1].size > size:
                raise IntegrityError(f"checkpoint {checkpoints[-1].size} covers entries that are missing: "
                                     f"the ledger holds {size} (entry {size} was deleted)")
            if checkpoints and checkpoints[-1].size != size:
                raise IntegrityError(f"entries {checkpoints[-1].size}..{size - 1} are not covered by any signed "
                                     f"checkpoint: rows were appended outside the ledger")
            cp_by_size = {cp.size: cp for cp in checkpoints}
            registry: dict[str, PartyRecord] = {}
            frontier = merkle.CompactRange()
            chunk: list[StoredEntry] = []
            expected = 0

            expected_index: set[tuple[str, int]] = set()

            keyring = _keyring(txn.party_records().values())
            parsed: list[_Parsed | IntegrityError] = []

            def flush() -> None:
                if not chunk:
                    return
                envelopes = (one[0] for one in parsed if not isinstance(one, IntegrityError))
                verified = _bulk_verified(envelopes, keyring)
                for entry, one in zip(chunk, parsed):
                    expected_index.update((k, entry.leaf_index) for k in self._audit_entry(entry, one, registry,
                                                                                            verified))
                parsed.clear()
                lo, hi = chunk[0].leaf_index, chunk[-1].leaf_index
                stored_index = txn.key_events_between(lo, hi)
                if stored_index != expected_index:
                    bad = min((i for _, i in stored_index ^ expected_index))
                    raise IntegrityError(f"entry {bad}: the item index (key_events) disagrees with the signed entry — "
                                         "rows were added or removed, hiding or inventing events for lookups")
                expected_index.clear()
                stored = self._stored_nodes(txn, lo, hi)
                for entry in chunk:
                    made = frontier.append(merkle.leaf_hash(entry.leaf_data))
                    for level, idx, h in made:
                        if stored.get((level, idx)) != h:
                            raise IntegrityError(
                                f"entry {entry.leaf_index} ({entry.event_id}): stored Merkle node ({level},{idx}) "
                                "does not match the entry — the row was edited or reordered")
                    cp = cp_by_size.get(frontier.size)
                    if cp is not None and frontier.root() != cp.root_hash:
                        raise IntegrityError(f"root after entry {entry.leaf_index} does not match the signed "
                                             f"checkpoint at size {cp.size}")
                if progress:
                    progress(len(chunk), size)
                chunk.clear()

            for entry in txn.iter_entries():
                if entry.leaf_index != expected:
                    flush()  # anything wrong before the gap is named first
                    raise IntegrityError(f"entry {expected} is missing (the next stored entry is {entry.leaf_index})")
                chunk.append(entry)
                parsed.append(self._audit_parse(entry))
                expected += 1
                if len(chunk) >= 2000:
                    flush()
            flush()
            self._audit_registry(txn, registry)
            self._audit_consistency(txn, checkpoints)
        return AuditReport(entries=expected, checkpoints=len(checkpoints), root_hash=frontier.root(),
                           parties=len(registry))

    @staticmethod
    def _stored_nodes(txn: ReadTxn, lo: int, hi: int) -> dict[merkle.NodeId, bytes]:
        # Every node that appending leaves lo..hi can complete lies in these index ranges.
        return txn.nodes_between([(level, lo >> level, hi >> level) for level in range((hi + 1).bit_length())])

    @staticmethod
    def _audit_consistency(txn: ReadTxn, checkpoints: Sequence[StoredCheckpoint], window: int = 256) -> None:
        """Consistency proofs, served from the stored nodes, between every pair of successive checkpoints.
        Node reads are batched per window of pairs: successive proofs share most of their nodes."""
        pairs = [(a, b) for a, b in zip(checkpoints, checkpoints[1:]) if a.size > 0]
        for start in range(0, len(pairs), window):
            chunk = pairs[start:start + window]
            plans = [merkle.consistency_ranges(a.size, b.size) if a.size != b.size else [] for a, b in chunk]
            nodes = txn.nodes([n for plan in plans for lo, hi in plan for n in merkle.range_nodes(lo, hi)])
            for (a, b), plan in zip(chunk, plans):
                try:
                    proof = [merkle.range_hash(lo, hi, nodes) for lo, hi in plan]
                    merkle.verify_consistency(a.size, b.size, a.root_hash, b.root_hash, proof)
                except (VerificationError, KeyError) as exc:
                    raise IntegrityError(f"checkpoints {a.size} and {b.size} are not consistent: {exc}") from exc

    @staticmethod
    def _audit_registry(txn: ReadTxn, registry: Mapping[str, PartyRecord]) -> None:
        """The stored registry (what admission and lookups read) must be exactly the replayed `party` statements."""
        stored = txn.party_records()
        for pid in sorted(set(stored) | set(registry)):
            have = party_from_record(stored[pid]) if pid in stored else None
            if have != registry.get(pid):
                raise IntegrityError(f"party {pid}: the stored registry disagrees with the signed party statements")
        expected = {k.keyid: p.id for p in registry.values() for k in p.keys}
        if txn.party_keyids() != expected:
            raise IntegrityError("the stored key-to-party table disagrees with the signed party statements")

    @staticmethod
    def _audit_parse(entry: StoredEntry) -> "_Parsed | IntegrityError":
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

    @staticmethod
    def _audit_entry(entry: StoredEntry, parsed: "_Parsed | IntegrityError", registry: dict[str, PartyRecord],
                     verified: AbstractSet[SignatureJob]) -> tuple[str, ...]:
        """Signature and signer checks for one stored entry, under the registry as it stood at that entry.
        Field validation was the door's job; here only what a forger or an editor could change matters,
        and the Merkle checks in ``audit`` cover every byte of the row."""
        if isinstance(parsed, IntegrityError):
            raise parsed
        env, st, body, payload = parsed
        where = f"entry {entry.leaf_index} ({entry.event_id})"
        if (event_id_of(payload) != entry.event_id or st.type != entry.type or st.actor != entry.actor
                or body.get("time") != entry.time):
            raise IntegrityError(f"{where}: the row's columns disagree with its signed payload")
        touched = tuple(body.get("items") or ()) + ((body["container"],) if body.get("container") else ())
        party = st.party if (entry.leaf_index == 0 and st.type == "party") else registry.get(st.actor)
        try:
            _signing_check(st, env, party, now=None, verified=verified)
        except Rejected as exc:
            raise IntegrityError(f"{where}: {exc.code}: {exc}") from exc
        if st.type == "party":
            registry[st.party.id] = st.party
        return touched
