"""Steps 2-4 of a judgement: signers, origin, chain. Each reads the gathered facts and adds named reasons.

2 signers: every event re-verified under the registry as it stands now (later revocations count), through the
  same pipeline as the door (tracker.verification);
3 origin: an item comes from one commission by its brand owner or a licensee; a container from the aggregate
  that created it;
4 chain: ``prev`` links -- two events continuing from the same event fork the history; a link to an event outside
  the unit's history is a missing hop; an event dated before the one it follows is inconsistent.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from ..brands import licensed
from ..verification import check_signer
from .facts import Facts
from .path import PathEvent
from .reasons import Reason

__all__ = ["check_signers", "check_origin", "check_chain"]

SignatureCheck = Callable[[str, bytes, bytes, bytes], bool]  # (event id, public key, message, signature)


def check_signers(f: Facts, reasons: list[Reason], *, is_valid: SignatureCheck) -> None:
    for ev in f.path:
        st, env = ev.statement, f.envelopes.get(ev.event_id)
        if st is None or env is None:
            continue  # already reported as an integrity failure
        event_id = ev.event_id
        failure = check_signer(st, env, f.parties.get(st.actor),
                               is_valid=lambda pk, msg, sig: is_valid(event_id, pk, msg, sig))
        if failure is not None:
            reasons.append(Reason(code=failure.reason, message=failure.message, event_id=event_id))
            continue
        if st.type == "receive":
            ship = f.ships.get(st.ship or "")
            if ship is None or ship.to != st.actor or ship.actor != st.from_:
                reasons.append(Reason(code="unauthorized_signer", event_id=event_id,
                                      message=f"{f.name(st.actor)} accepted a shipment that was not addressed to it."))


def check_origin(f: Facts, events: list[PathEvent], reasons: list[Reason]) -> list[PathEvent]:
    """The events that bring the unit into being (normally one), after judging who made them."""
    if not f.is_item:
        own = [ev for ev in events if ev.via == f.key]
        first = own[0] if own else None
        if first is None or first.statement is None or first.statement.type != "aggregate" \
                or first.statement.container != f.key:
            if own:
                reasons.append(Reason(code="custody_gap", event_id=own[0].event_id,
                                      message="This container's history does not begin with it being packed."))
            return []
        return [first]
    commissions = [ev for ev in events if ev.statement is not None and ev.statement.type == "commission"]
    if not commissions and events:
        reasons.append(Reason(code="custody_gap", event_id=events[0].event_id,
                              message="This item's history does not begin where it was made: there is no record "
                                      "of its manufacture."))
    if len(commissions) > 1:
        for ev in commissions:
            assert ev.statement is not None
            reasons.append(Reason(code="cloned_serial", event_id=ev.event_id,
                                  message=f"This serial was created more than once (here by "
                                          f"{f.name(ev.statement.actor)}): copies exist."))
    for ev in commissions:
        _brand(f, ev, reasons)
    return commissions


def _brand(f: Facts, ev: PathEvent, reasons: list[Reason]) -> None:
    st, brand = ev.statement, f.brand
    assert st is not None and brand is not None
    gtin = f.key.split("/")[1]
    maker = st.actor
    if not brand.owners:
        where = f" ({brand.gs1_office})" if brand.gs1_office else ""
        prefix = brand.company_prefix or gtin[1:8]
        reasons.append(Reason(code="unverified_brand", event_id=ev.event_id,
                              message=f"No registered brand owner holds this product's GS1 company prefix {prefix}"
                                      f"{where}, so nobody can confirm that {f.name(maker)} may make it."))
        return
    if any(owner.id == maker for owner in brand.owners):
        return
    for owner in brand.owners:
        if licensed(gtin, owner=owner.id, manufacturer=maker, at=st.time, licences=f.licences) is not None:
            reasons.append(Reason(code="licensed_manufacturer", event_id=ev.event_id,
                                  message=f"Made by {f.name(maker)} under a licence from {owner.name}, the brand "
                                          "owner."))
            return
    owner_names = " and ".join(sorted(o.name for o in brand.owners))
    reasons.append(Reason(code="not_commissioned_by_manufacturer", event_id=ev.event_id,
                          message=f"{f.name(maker)} created this serial, but the product code belongs to "
                                  f"{owner_names}, who has not licensed {f.name(maker)} to make it."))


def check_chain(f: Facts, events: list[PathEvent], reasons: list[Reason]) -> None:
    by_id = {ev.event_id: ev for ev in events}
    claims: dict[tuple[str, str], list[PathEvent]] = defaultdict(list)
    for ev in events:
        st = ev.statement
        assert st is not None
        for k, p in st.prev.items():
            if k in (ev.via, f.key, st.container):
                claims[(k, p)].append(ev)
            if k == f.key and p not in by_id:
                reasons.append(Reason(code="custody_gap", event_id=ev.event_id,
                                      message="This event links to a previous event that is not in this history: "
                                              "a link in the chain is missing."))
    for evs in claims.values():
        if len(evs) > 1:
            names = ", ".join(sorted({f.name(e.statement.actor) for e in evs if e.statement is not None}))
            for ev in evs:
                reasons.append(Reason(code="fork", event_id=ev.event_id,
                                      message=f"The history splits here: {len(evs)} events by {names} continue "
                                              "from the same previous event."))
    for ev in events:
        st = ev.statement
        assert st is not None
        for p in st.prev.values():
            before = by_id.get(p)
            if before is not None and before.statement is not None and st.time < before.statement.time:
                reasons.append(Reason(code="time_inconsistency", event_id=ev.event_id,
                                      message="This event is dated before the event it follows."))
                break
