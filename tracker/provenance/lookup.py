"""The lookup: gather a unit's facts in one consistent snapshot, then judge them (SPEC §4).

Steps: 0 gather the path (path.collect); 1 integrity; 2 signers; 3 origin; 4 chain; 5 custody, borders, sale and
scans. Lookups read the unit's own events (and those of the containers it travelled in) through the item index,
so the cost follows the path's length, not the ledger's size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from ..admission import signature_is_valid
from ..brands import Licence, company_prefix_of, gs1_office_of, licence_index_key
from ..identifiers import ContainerKey, ItemKey, parse_key
from ..ledger import Ledger
from ..parties import PartyRecord
from ..scans import ScanPolicy, ScanSummary, summarise
from ..statements import SIGNER_ROLES, Statement
from ..store.base import ReadTxn
from ..verification import check_signer
from .custody import check_custody
from .facts import Brand, Facts
from .integrity import check_integrity
from .judge import check_chain, check_origin, check_signers
from .path import MAX_NESTING, MAX_PATH, LookupCaches, PathEvent, collect
from .reasons import Reason, ordered, verdict_for

__all__ = ["Provenance", "lookup", "head", "caches_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    item: str
    gtin: str | None
    serial: str | None
    product: Mapping[str, Any] | None
    verdict: str
    reasons: tuple[Reason, ...]
    holder: str | None
    path: tuple[Mapping[str, Any], ...]
    checkpoint: str | None
    tree_size: int = 0
    scans: ScanSummary | None = None
    party_names: Mapping[str, str] = field(default_factory=dict)  # display names of every party named; not in JSON
    keys: frozenset[str] = frozenset()  # the unit and every container whose events joined its path; not in JSON

    def to_json(self) -> dict[str, Any]:
        """The SPEC §4 answer, exactly its fields (scan counts are shown on the consumer page, not here)."""
        return {"item": self.item, "gtin": self.gtin, "serial": self.serial,
                "product": dict(self.product) if self.product is not None else None,
                "verdict": self.verdict, "reasons": [r.to_json() for r in self.reasons], "holder": self.holder,
                "path": [dict(p) for p in self.path], "checkpoint": self.checkpoint}

    def has(self, code: str) -> bool:
        return any(r.code == code for r in self.reasons)


def caches_of(ledger: Ledger) -> LookupCaches:
    """The lookup caches of one ledger handle (created on first use; they live as long as the handle)."""
    caches = getattr(ledger, "lookup_caches", None)
    if caches is None:
        caches = LookupCaches()
        ledger.lookup_caches = caches
    return caches


def _brand(txn: ReadTxn, gtin: str, caches: LookupCaches) -> Brand:
    body = gtin[1:13]
    claims = txn.prefix_claims(body[:n] for n in range(4, 13))
    prefix = max(claims, key=len, default=None)
    owners: tuple[PartyRecord, ...] = ()
    if prefix is not None:
        records = txn.party_records_for(claims[prefix])
        owners = tuple(caches.party(records[pid]) for pid in sorted(records))
    return Brand(owners=owners, owner_prefix=prefix, company_prefix=company_prefix_of(gtin),
                 gs1_office=gs1_office_of(body))


def _licences(txn: ReadTxn, makers: set[str], brand: Brand, size: int, caches: LookupCaches) -> list[Licence]:
    """The licences the brand owners signed to these manufacturers, each re-verified like any event."""
    owners = {p.id: p for p in brand.owners}
    if not owners or not makers - set(owners):
        return []
    leaves = txn.leaves_for_keys(licence_index_key(m) for m in makers - set(owners))
    out = []
    for entry in txn.entries_at({i for found in leaves.values() for i in found if i < size}).values():
        env, st = caches.parsed(entry)
        if env is None or st is None or st.type != "licence" or st.actor not in owners or st.not_before is None:
            continue
        if check_signer(st, env, owners[st.actor], is_valid=signature_is_valid) is not None:
            continue
        out.append(Licence(leaf_index=entry.leaf_index, event_id=entry.event_id, licensor=st.actor,
                           licensee=st.licensee or "", gs1_prefixes=st.gs1_prefixes, not_before=st.not_before,
                           not_after=st.not_after))
    return out


def _path_json(path: Sequence[PathEvent], f: Facts) -> list[dict[str, Any]]:
    out = []
    for ev in path:
        st = ev.statement
        if st is None:
            out.append({"event_id": ev.event_id, "type": ev.entry.type, "actor": ev.entry.actor,
                        "actor_name": f.name(ev.entry.actor), "role": None, "time": ev.entry.time,
                        "location": None})
            continue
        party = f.parties.get(st.actor)
        role = next((r for r in (party.roles if party else ()) if r in SIGNER_ROLES[st.type]), None)
        row: dict[str, Any] = {"event_id": ev.event_id, "type": st.type, "actor": st.actor,
                               "actor_name": f.name(st.actor), "role": role, "time": st.time_str,
                               "location": dict(st.location)}
        if st.to:
            row["to"] = st.to
        if st.from_:
            row["from"] = st.from_
        if st.decision:
            row["decision"] = st.decision
        out.append(row)
    return out


def lookup(ledger: Ledger, key: str | ItemKey | ContainerKey, *, now: datetime | None = None,
           scan_policy: ScanPolicy | None = None, unsaved_scans: Sequence[tuple[str, str, int]] = (),
           caches: LookupCaches | None = None, clock: Callable[[], float] = time.monotonic) -> Provenance:
    """The SPEC §4 provenance answer for an item or container key. Raises InvalidIdentifier on bad keys.
    ``now`` dates the scan-count window (default: the current time); ``clock`` is the monotonic clock the
    completeness check's memo runs on; ``caches`` default to the ledger handle's own; ``unsaved_scans`` are
    scan counts not yet stored (tracker.scans.ScanRecorder.unsaved)."""
    parsed = parse_key(str(key))
    unit = str(parsed)
    gtin = parsed.gtin if isinstance(parsed, ItemKey) else None
    serial = parsed.serial if isinstance(parsed, ItemKey) else None
    policy = scan_policy or ScanPolicy()
    now = now or datetime.now(timezone.utc)
    caches = caches or caches_of(ledger)
    reasons: list[Reason] = []
    with ledger.store.read() as txn:
        gathered = collect(txn, unit, caches)
        path = list(gathered.events)
        cp, note, envelopes = check_integrity(txn, verifier=ledger.note_verifier, origin=ledger.origin, path=path,
                                              missing=gathered.missing, caches=caches, clock=clock, reasons=reasons)
        since = policy.since(now)
        scans = summarise([*txn.scan_counts(unit, since_day=since), *(r for r in unsaved_scans if r[0] >= since)],
                          since=since) if gtin else None
        if not path and not gathered.missing:
            reasons.append(Reason(code="unknown_item", message="We have no record of this item: it was never "
                                                                "registered by its manufacturer."))
            return Provenance(item=unit, gtin=gtin, serial=serial, product=None, verdict=verdict_for(reasons),
                              reasons=tuple(reasons), holder=None, path=(), checkpoint=note,
                              tree_size=cp.size if cp else 0, scans=scans)
        statements = [ev.statement for ev in path if ev.statement is not None]
        ids = {s.actor for s in statements} | {s.to for s in statements if s.to} | {
            s.from_ for s in statements if s.from_}
        records = txn.party_records_for(ids)
        parties: dict[str, PartyRecord | None] = {pid: (caches.party(records[pid]) if pid in records else None)
                                                  for pid in ids}
        ship_ids = {s.ship for s in statements if s.type == "receive" and s.ship}
        ships: dict[str, Statement] = {ev.event_id: ev.statement for ev in path
                                       if ev.event_id in ship_ids and ev.statement is not None}
        outside = ship_ids - set(ships)
        outside_rows: tuple[tuple[str, bytes], ...] = ()
        if outside:
            fetched = txn.entries_by_event_ids(outside)
            outside_rows = tuple(sorted((eid, entry.leaf_data) for eid, entry in fetched.items()))
            for eid, entry in fetched.items():
                if (st := caches.parsed(entry)[1]) is not None:
                    ships[eid] = st
        brand = _brand(txn, gtin, caches) if gtin else None
        makers = {s.actor for s in statements if s.type == "commission"}
        licences = _licences(txn, makers, brand, cp.size if cp else 0, caches) if brand else []
        for owner in brand.owners if brand else ():
            parties.setdefault(owner.id, owner)
    facts = Facts(key=unit, path=path, envelopes=envelopes, parties=parties, ships=ships, brand=brand,
                  licences=licences, scans=scans, scan_policy=policy)

    # Steps 2-5 are a pure function of these facts: the path's exact stored bytes, what step 1 found, the
    # registry records, shipments, brand, licences and scan counts. A long journey looked up again with none
    # of them changed is not judged again (a changed byte anywhere gives another key).
    memo_key = (unit, gathered.truncated, tuple((ev.leaf_index, ev.event_id, ev.entry.leaf_data, ev.via) for ev in path),
                tuple(reasons), frozenset(envelopes), tuple(sorted(parties.items(), key=lambda kv: kv[0])),
                outside_rows, brand, tuple(licences), scans, policy)
    memo = caches.judgements.get(memo_key)
    if memo is None:
        memo = _judge(facts, path, reasons, gathered.truncated, caches)
        caches.judgements.put(memo_key, memo)
    final, holder, product, path_rows = memo
    return Provenance(item=unit, gtin=gtin, serial=serial, product=product, verdict=verdict_for(final),
                      reasons=final, holder=holder, path=path_rows, checkpoint=note,
                      tree_size=cp.size if cp else 0, scans=scans,
                      party_names={pid: p.name for pid, p in parties.items() if p is not None},
                      keys=frozenset({unit, *(ev.via for ev in path)}))


_Judged = tuple[tuple[Reason, ...], str | None, Mapping[str, Any] | None, tuple[Mapping[str, Any], ...]]


def _judge(facts: Facts, path: list[PathEvent], reasons: list[Reason], truncated: bool,
           caches: LookupCaches) -> _Judged:
    """Steps 2-5 on gathered facts: (ordered reasons, holder, product, path rows)."""
    reasons = list(reasons)

    def is_valid(event_id: str, public_key: bytes, message: bytes, sig: bytes) -> bool:
        return caches.signatures.get_or_compute((event_id.encode(), public_key, sig),
                                                lambda: signature_is_valid(public_key, message, sig))

    if truncated:
        # A warning, not a note: what lies past the cap is unjudged, and a fake must not reach green by hiding
        # its border crossing nine containers deep.
        reasons.append(Reason(code="path_truncated", event_id=path[-1].event_id if path else None,
                              message=f"This history goes further than one lookup checks ({MAX_PATH} events, "
                                      f"containers nested {MAX_NESTING} deep), so it could not all be judged."))
    check_signers(facts, reasons, is_valid=is_valid)
    events = [ev for ev in path if ev.statement is not None]
    origins = check_origin(facts, events, reasons)
    check_chain(facts, events, reasons)
    holder = check_custody(facts, events, origins, reasons)
    commission = next((ev.statement for ev in origins if ev.statement and ev.statement.type == "commission"), None)
    product = None
    if commission is not None and commission.product is not None:
        product = {"name": commission.product["name"], "manufacturer": commission.actor}
        for opt in ("lot", "expiry"):
            if opt in commission.product:
                product[opt] = commission.product[opt]
    return ordered(reasons), holder, product, tuple(_path_json(path, facts))


def head(ledger: Ledger, key: str) -> str | None:
    """The event id a signer puts in ``prev`` for ``key``: its latest event, container moves included."""
    unit = str(parse_key(key))
    with ledger.store.read() as txn:
        gathered = collect(txn, unit, caches_of(ledger))
    return gathered.events[-1].event_id if gathered.events else None
