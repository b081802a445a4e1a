"""Step 5 of a judgement: custody, in ledger order. Who held the unit at each step; every handoff needs the
giver to hold it; a border crossing -- between the registered countries of sender and receiver -- needs a
release by the destination's customs; a declared location the registry contradicts is evidence; after a sale
nothing more may happen, and consumer scans tell whether the label is being copied.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .facts import Facts, hop_country
from .path import PathEvent
from .reasons import Reason

__all__ = ["check_custody"]


@dataclass(slots=True)
class _Custody:
    holders: list[str] = field(default_factory=list)
    ever_held: set[str] = field(default_factory=set)

    def take(self, pid: str) -> None:
        if pid not in self.holders:
            self.holders.append(pid)
        self.ever_held.add(pid)


def _countries(f: Facts, events: list[PathEvent], reasons: list[Reason]) -> dict[str, str]:
    """event id -> the country the registry places that hop in; contradictions become ``location_mismatch``."""
    out: dict[str, str] = {}
    for ev in events:
        st = ev.statement
        assert st is not None
        party = f.parties.get(st.actor)
        country, mismatch = hop_country(party, st.location)
        out[ev.event_id] = country
        if mismatch and party is not None:
            registered = ", ".join(sorted(party.countries))
            reasons.append(Reason(code="location_mismatch", event_id=ev.event_id,
                                  message=f"{party.name} declared this step in {st.location.get('country')}, but is "
                                          f"registered to operate only in {registered}."))
    return out


def check_custody(f: Facts, events: list[PathEvent], origins: list[PathEvent], reasons: list[Reason]) -> str | None:
    """Adds custody, border, sale and scan reasons; returns the current holder (None once sold or unknown)."""
    by_id = {ev.event_id: ev for ev in events}
    country = _countries(f, events, reasons)
    starts = {ev.event_id for ev in origins}
    custody = _Custody()
    released: list[PathEvent] = []
    decision: PathEvent | None = None
    sold: PathEvent | None = None

    def gap(ev: PathEvent, what: str) -> None:
        assert ev.statement is not None
        reasons.append(Reason(code="custody_gap", event_id=ev.event_id,
                              message=f"{f.name(ev.statement.actor)} {what} without ever having received it: a hop "
                                      "is missing from the chain."))

    for ev in events:
        st = ev.statement
        assert st is not None
        actor = st.actor
        if sold is not None:
            reasons.append(Reason(code="activity_after_sale", event_id=ev.event_id,
                                  message=f"{f.name(actor)} recorded a {st.type} after the item was sold to a "
                                          "consumer: this code is being reused."))
        if ev.event_id in starts:
            custody.take(actor)
        elif st.type == "ship":
            if actor not in custody.holders:
                gap(ev, "shipped it")
        elif st.type == "receive":
            sender = st.from_ or ""
            if sender in custody.holders:
                custody.holders.remove(sender)
            elif sender in custody.ever_held:
                reasons.append(Reason(code="cloned_serial", event_id=ev.event_id,
                                      message=f"{f.name(actor)} received it from {f.name(sender)}, who had already "
                                              "handed it on: the same serial is in two places at once."))
            custody.take(actor)
            ship = by_id.get(st.ship or "")
            if ship is not None and ship.statement is not None:
                _crossing(f, ship, ev, country, released, reasons)
        elif st.type in ("aggregate", "disaggregate"):
            if actor not in custody.holders:
                gap(ev, "packed or unpacked it")
        elif st.type == "inspect":
            decision = ev
            if st.decision == "released":
                released.append(ev)
        elif st.type == "sell":
            if actor not in custody.holders:
                gap(ev, "sold it")
            sold = ev
    _pending_shipments(f, events, sold, reasons)
    if decision is not None and decision.statement is not None:
        who = f.name(decision.statement.actor)
        if decision.statement.decision == "held":
            reasons.append(Reason(code="held_by_customs", event_id=decision.event_id,
                                  message=f"Held by {who} pending inspection."))
        elif decision.statement.decision == "seized":
            reasons.append(Reason(code="seized", event_id=decision.event_id, message=f"Seized by {who}."))
    if f.is_item:
        _after_sale(f, sold, events[-1] if events else None, custody, reasons)
    if sold is not None:
        return None
    return custody.holders[-1] if custody.holders else None


def _crossing(f: Facts, ship: PathEvent, receive: PathEvent, country: dict[str, str], released: list[PathEvent],
              reasons: list[Reason]) -> None:
    assert ship.statement is not None and receive.statement is not None
    if receive.statement.time < ship.statement.time:
        reasons.append(Reason(code="time_inconsistency", event_id=receive.event_id,
                              message="Received before it was shipped."))
    src, dst = country[ship.event_id], country[receive.event_id]
    if src == dst:
        return
    cleared = any(r.leaf_index > ship.leaf_index and r.statement is not None
                  and (customs := f.parties.get(r.statement.actor)) is not None and customs.country == dst
                  for r in released)
    if not cleared:
        reasons.append(Reason(code="missing_customs_clearance", event_id=receive.event_id,
                              message=f"Crossed the border from {src} into {dst} without being released by {dst} "
                                      "customs."))


def _pending_shipments(f: Facts, events: list[PathEvent], sold: PathEvent | None, reasons: list[Reason]) -> None:
    """Shipments nobody confirmed: still on the way, or diverted if the unit turned up elsewhere."""
    received = {ev.statement.ship for ev in events if ev.statement is not None and ev.statement.type == "receive"}
    for pos, ship in enumerate(events):
        st = ship.statement
        assert st is not None
        if st.type != "ship" or ship.event_id in received:
            continue
        elsewhere = next((e for e in events[pos + 1:] if e.statement is not None and e.statement.type != "inspect"
                          and e.statement.actor != st.to), None)
        if elsewhere is not None and elsewhere.statement is not None:
            reasons.append(Reason(code="unreceived_shipment", event_id=ship.event_id,
                                  message=f"Shipped to {f.name(st.to)}, who never confirmed receipt; it then turned "
                                          f"up with {f.name(elsewhere.statement.actor)}."))
        elif sold is None:
            reasons.append(Reason(code="in_transit", event_id=ship.event_id, message=f"On its way to {f.name(st.to)}."))


def _after_sale(f: Facts, sold: PathEvent | None, latest: PathEvent | None, custody: _Custody,
                reasons: list[Reason]) -> None:
    policy, scans = f.scan_policy, f.scans
    if sold is not None and sold.statement is not None:
        st = sold.statement
        day = st.time.date().isoformat()
        reasons.append(Reason(code="sold", event_id=sold.event_id,
                              message=f"Sold to a consumer by {f.name(st.actor)} ({st.location.get('name')}) on {day}."
                                      " An item sold before is not new."))
        if scans is not None and (n := scans.networks_from(day)) > policy.after_sale_networks:
            reasons.append(Reason(code="label_copied", event_id=sold.event_id,
                                  message=f"Since it was sold on {day}, this code has been checked from {n} different "
                                          "networks: copies of its label are probably in circulation."))
        return
    retailers = {pid for pid in custody.ever_held if (p := f.parties.get(pid)) is not None and "retailer" in p.roles}
    if not retailers and scans is not None and scans.networks > policy.before_retail_networks:
        reasons.append(Reason(code="label_copied", event_id=latest.event_id if latest else None,
                              message=f"This code has been checked by consumers from {scans.networks} different "
                                      "networks before the item ever reached a shop: its label may have been copied."))
