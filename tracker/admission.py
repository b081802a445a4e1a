"""Admission: the door every statement passes before it is appended (SPEC §2 and §7).

Checks, in order, each failing with its own code:
  1 envelope shape -> 2 statement shape -> 3 clock -> 4 duplicate (in the ledger) -> 5-10 the signer
  (tracker.verification) -> 11 every item and container named exists (except what a commission or an aggregate
  creates) -> 12 door rules on ``prev`` -> 13 references: ``to`` and ``from`` are registered parties, a receive
  answers a shipment addressed to its signer, a licence grants only prefixes its signer owns.
Custody is *not* checked here: a well-signed statement that breaks the chain is evidence, and the lookup
(tracker.provenance) judges it.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from collections.abc import Set as AbstractSetBase
from typing import AbstractSet, Callable, Iterable, Iterator, Mapping

from .brands import check_company_prefix
from .dsse import Envelope, parse_envelope
from .errors import Rejected
from .keys import SignatureJob, verifier_for, verify_many, verify_many_later
from .parties import PartyRecord, party_from_record
from .statements import Statement, check_new_statement, parse_statement
from .store.base import StoredEntry, WriteTxn
from .verification import check_signer

__all__ = ["CLOCK_SKEW", "Admission", "VerifiedLater", "bulk_verified", "bulk_verified_later", "keyring", "statement_of_entry", "signature_is_valid",
           "raise_signer_failure", "party_record_json"]

CLOCK_SKEW = timedelta(minutes=5)


def signature_is_valid(public_key: bytes, message: bytes, sig: bytes) -> bool:
    return verifier_for(public_key).is_valid(message, sig)


def raise_signer_failure(st: Statement, env: Envelope, party: PartyRecord | None, *, now: datetime | None,
                         verified: AbstractSet[SignatureJob] = frozenset()) -> None:
    """Signer checks at the door (and in the audit, with ``now=None``): raise Rejected on the first failure."""
    failure = check_signer(st, env, party, is_valid=signature_is_valid, revoked_by=now, verified=verified)
    if failure is not None:
        raise Rejected(failure.detail, code=failure.code, field="actor" if failure.code in (
            "unknown_party", "unauthorized_signer") else "signatures")


def _signature_jobs(envelopes: Iterable[Envelope], keys: Mapping[str, bytes]) -> list[SignatureJob]:
    """One (public key, message, signature) triple per signature whose key id ``keys`` knows."""
    jobs: list[SignatureJob] = []
    for env in envelopes:
        message = env.pae()
        for sig in env.signatures:
            public_key = keys.get(sig.keyid)
            if public_key is not None:
                jobs.append((public_key, message, sig.sig))
    return jobs


def bulk_verified(envelopes: Iterable[Envelope], keys: Mapping[str, bytes]) -> AbstractSet[SignatureJob]:
    """The (public key, message, signature) triples of these envelopes that verify, checked on every core
    under the keys ``keys`` maps their key ids to. Admission only looks results up by the exact triple, so a
    key the signer does not own here can never vouch for it."""
    jobs = _signature_jobs(envelopes, keys)
    return frozenset(job for job, ok in zip(jobs, verify_many(jobs)) if ok)


def bulk_verified_later(envelopes: Iterable[Envelope],
                        keys: Mapping[str, bytes]) -> Callable[[], AbstractSet[SignatureJob]]:
    """``bulk_verified``, started now on the verification threads and collected by calling the result."""
    jobs = _signature_jobs(envelopes, keys)
    collect = verify_many_later(jobs)
    return lambda: frozenset(job for job, ok in zip(jobs, collect()) if ok)


class VerifiedLater(AbstractSetBase[SignatureJob]):
    """Signature results arriving chunk by chunk: asking about a signature waits only for the chunks up to the
    one that holds it (a signature in none of them, say under a key registered earlier in the same batch,
    is not in the set, and admission verifies it itself)."""

    def __init__(self) -> None:
        self._done: set[SignatureJob] = set()
        self._pending: list[Callable[[], AbstractSet[SignatureJob]]] = []

    def add(self, later: Callable[[], AbstractSet[SignatureJob]]) -> None:
        self._pending.append(later)

    def _all(self) -> set[SignatureJob]:
        while self._pending:
            self._done |= self._pending.pop(0)()
        return self._done

    def __contains__(self, job: object) -> bool:
        while job not in self._done and self._pending:
            self._done |= self._pending.pop(0)()
        return job in self._done

    def __iter__(self) -> Iterator[SignatureJob]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def keyring(records: Iterable[str]) -> dict[str, bytes]:
    """Key id -> public key over stored party records (a key id belongs to one party: ``key_in_use``)."""
    return {k.keyid: k.public_key for rec in records for k in party_from_record(rec).keys}


def statement_of_entry(entry: StoredEntry) -> Statement:
    return parse_statement(parse_envelope(entry.leaf_data).payload)


class Admission:
    """One write transaction's view for admitting a batch: the store plus what this batch has already admitted,
    so later envelopes may build on earlier ones (commission, then ship)."""

    def __init__(self, txn: WriteTxn, *, read_party: Callable[[str], PartyRecord] = party_from_record) -> None:
        self.txn = txn
        self.read_party = read_party  # a ledger handle passes a cache: records are immutable values
        self.parties: dict[str, PartyRecord | None] = {}
        self.new_keys: set[str] = set()
        self.new_events: dict[str, tuple[int, Statement]] = {}
        self.keyid_owner: dict[str, str] = {}
        self._asked_keys: set[str] = set()  # item keys looked up in bulk (prefetch) ...
        self._found_keys: set[str] = set()  # ... and those of them the ledger holds
        self._stored: dict[str, Statement | None] = {}  # stored statements looked up in bulk, by event id

    def prefetch(self, statements: Iterable[Statement]) -> None:
        """Ask the store once for every party, item key and shipment these statements will be checked against.
        The writer lock is held while a group is admitted; on PostgreSQL a round trip per question per
        statement, not the CPU, set the write rate. Answers are read in the same transaction, so they hold."""
        sts = list(statements)
        pids = sorted({p for st in sts for p in (st.actor, st.to, st.from_, st.licensee) if p} - set(self.parties))
        for i in range(0, len(pids), 500):
            records = self.txn.party_records_for(pids[i:i + 500])
            for pid in pids[i:i + 500]:
                rec = records.get(pid)
                self.parties[pid] = self.read_party(rec) if rec else None
        keys = {k for st in sts if st.type not in ("commission", "licence", "party") for k in st.items}
        keys |= {st.container for st in sts if st.container}
        keys -= self._asked_keys
        if keys:
            self._found_keys |= self.txn.keys_exist(keys)
            self._asked_keys |= keys
        ships = {st.ship for st in sts if st.type == "receive" and st.ship} - set(self._stored)
        if ships:
            entries = self.txn.entries_by_event_ids(ships)
            for eid in ships:
                self._stored[eid] = statement_of_entry(entries[eid]) if eid in entries else None

    def party(self, pid: str) -> PartyRecord | None:
        if pid not in self.parties:
            rec = self.txn.party_record(pid)
            self.parties[pid] = self.read_party(rec) if rec else None
        return self.parties[pid]

    def owner_of(self, keyid: str) -> str | None:
        if keyid in self.keyid_owner:
            return self.keyid_owner[keyid]
        return self.txn.party_for_keyid(keyid)

    def statement_of(self, event_id: str) -> Statement | None:
        if event_id in self.new_events:
            return self.new_events[event_id][1]
        if event_id in self._stored:
            return self._stored[event_id]
        entry = self.txn.entry_by_event_id(event_id)
        return statement_of_entry(entry) if entry else None

    def existing(self, keys: Iterable[str]) -> set[str]:
        keys = set(keys)
        found = keys & self.new_keys
        rest = keys - found - self._asked_keys
        found |= (keys - found) & self._found_keys
        return found | (self.txn.keys_exist(rest) if rest else set())

    # --- the checks -------------------------------------------------------------------------------------

    def admit(self, env: Envelope, st: Statement, *, now: datetime,
              verified: AbstractSet[SignatureJob] = frozenset()) -> None:
        """Checks 3 and 5-12 for one parsed envelope. Raises InvalidStatement (400) or Rejected (422)."""
        if st.time > now + CLOCK_SKEW:
            raise Rejected(f"time {st.time_str} is in the future (more than 5 minutes ahead)", code="future_time",
                           field="time")
        raise_signer_failure(st, env, self.party(st.actor), now=now, verified=verified)
        needed = set() if st.type in ("commission", "licence", "party") else set(st.items)
        if st.type == "disaggregate" and st.container:
            needed.add(st.container)
        missing = needed - self.existing(needed)
        if missing:
            raise Rejected(f"{sorted(missing)[0]} is not a known item or container", code="unknown_item",
                           field="items")
        container_exists = st.type == "aggregate" and bool(self.existing([st.container or ""]))
        check_new_statement(st, container_exists=container_exists)
        if st.type == "party":
            self._party(st)
        elif st.type == "licence":
            self._licence(st)
        elif st.type == "ship":
            self._registered(st.to, "to")
        elif st.type == "receive":
            self._receive(st)

    def _registered(self, pid: str | None, field: str) -> PartyRecord:
        party = self.party(pid) if pid else None
        if party is None:
            raise Rejected(f"{field} names {pid!r}, which is not a registered party: custody can only pass between "
                           "registered parties", code="unknown_party", field=field)
        return party

    def _receive(self, st: Statement) -> None:
        self._registered(st.from_, "from")
        ship = self.statement_of(st.ship or "")
        if ship is None or ship.type != "ship":
            raise Rejected(f"ship {st.ship} is not a ship event in the ledger", code="unknown_event", field="ship")
        if ship.to != st.actor or ship.actor != st.from_:
            raise Rejected(f"that shipment went from {ship.actor} to {ship.to}, not from {st.from_} to {st.actor}",
                           code="receive_mismatch", field="from")
        extra = [k for k in st.items if k not in ship.items]
        if extra:
            raise Rejected(f"{extra[0]} was not in shipment {st.ship}", code="receive_mismatch", field="items")

    def _licence(self, st: Statement) -> None:
        licensor = self.party(st.actor)
        assert licensor is not None  # the signer check has passed
        licensee = self._registered(st.licensee, "licensee")
        if "manufacturer" not in licensee.roles:
            raise Rejected(f"{licensee.id} is not a manufacturer: only manufacturers can be licensed to make goods",
                           code="invalid_licence", field="licensee")
        for prefix in st.gs1_prefixes:
            if not any(prefix.startswith(own) for own in licensor.gs1_prefixes):
                raise Rejected(f"{licensor.id} does not own GS1 company prefix {prefix}, so it cannot license it",
                               code="not_prefix_owner", field="gs1_prefixes")

    def _party(self, st: Statement) -> None:
        new = st.party
        assert new is not None
        for prefix in new.gs1_prefixes:
            check_company_prefix(prefix, field="party.gs1_prefixes")
        old = self.party(new.id)
        for key in new.keys:
            owner = self.owner_of(key.keyid)
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
        self.parties[new.id] = new
        for key in new.keys:
            self.keyid_owner[key.keyid] = new.id


def party_record_json(st: Statement) -> str:
    """How a `party` statement's registry record is stored (what ``party_from_record`` reads back)."""
    return json.dumps(st.raw["party"], sort_keys=True)

