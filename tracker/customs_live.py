"""The customs dashboard kept up to date from new entries instead of recomputed.

Recomputing a dashboard looks up every consignment's unit again (hundreds of provenance lookups), so every write
to the ledger cost the next dashboard view more than half a second. Here a dashboard is computed once per ledger
handle and country; afterwards only the entries appended since are read, and only what they can change is
redone:
  - a new `ship` into the country adds consignments;
  - an event on a unit (receive, inspect, ship on, sell...) changes its consignments' status and its verdict;
  - an event on a container changes the verdict of every unit whose path runs through it (a lookup reports the
    containers it followed: ``Provenance.keys``);
  - a `party` or `licence` statement can change any verdict (a revoked key, a new brand owner): the dashboard
    is computed afresh.
The result is the same as ``customs.full_dashboard`` at the same size (tests/web/test_customs_live.py checks it
after every step of a random workload).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from . import customs
from .customs import Assessment, Consignment, Dashboard
from .handoffs import statement_or_none
from .ledger import Ledger
from .statements import index_keys

__all__ = ["live_dashboard"]

_Unit = tuple[int, int, str]  # (ship leaf, position in the ship's items, unit key): consignment order


@dataclass(slots=True)
class _Live:
    country: str
    limit: int
    size: int
    local: set[str]
    customs_ids: set[str]
    customs_parties: tuple[str, ...]
    units: list[_Unit]  # the newest ``limit`` consignments, oldest first
    consignments: dict[tuple[int, str], Consignment] = field(default_factory=dict)
    assessments: dict[tuple[int, str], Assessment] = field(default_factory=dict)
    depends: dict[str, set[str]] = field(default_factory=dict)  # unit key -> keys whose events change it
    truncated: bool = False
    dashboard: Dashboard | None = None


_LOCK = threading.Lock()


def live_dashboard(ledger: Ledger, country: str, *, limit: int = customs.DEFAULT_LIMIT) -> Dashboard:
    """The dashboard of ``country`` at the ledger's current size, brought up to date incrementally."""
    with _LOCK:
        states: dict[tuple[str, int], _Live] = ledger.__dict__.setdefault("customs_live", {})
        lock = ledger.__dict__.setdefault("customs_live_lock", threading.Lock())
    with lock:
        size = ledger.size()
        state = states.get((country, limit))
        if state is None or state.size > size:
            state = _build(ledger, country, limit, size)
        elif state.size < size:
            state = _advance(ledger, state, size)
        states[(country, limit)] = state
        assert state.dashboard is not None
        return state.dashboard


def _build(ledger: Ledger, country: str, limit: int, size: int) -> _Live:
    with ledger.store.read() as read:
        txn: Any = read  # SqlTxn: entries_of_types is the customs reader's (store.base.CustomsReadTxn)
        local, customs_ids = customs._local_parties(txn, country)
        candidates = customs._crossing(txn.entries_of_types(["ship"]), local, country, None)
        items, truncated = customs._consignments(txn, candidates, customs_ids, only=None, limit=limit)
    state = _Live(country=country, limit=limit, size=size, local=local, customs_ids=customs_ids,
                  customs_parties=tuple(sorted(customs_ids)), units=[], truncated=truncated)
    position: dict[tuple[int, str], int] = {}
    for entry, st in candidates:
        for n, key in enumerate(st.items):
            position.setdefault((entry.leaf_index, key), n)
    for c in reversed(items):  # oldest first
        unit = (c.ship_leaf, position[(c.ship_leaf, c.key)], c.key)
        state.units.append(unit)
        state.consignments[(c.ship_leaf, c.key)] = c
    _assess(ledger, state, items)
    _finish(state)
    return state


def _advance(ledger: Ledger, state: _Live, size: int) -> _Live:
    touched: set[str] = set()
    ships: list[Any] = []
    with ledger.store.read() as txn:
        for entry in txn.iter_entries(start=state.size):
            if entry.leaf_index >= size:
                break
            st = statement_or_none(entry)
            if st is None:
                continue
            if st.type in ("party", "licence"):
                return _build(ledger, state.country, state.limit, size)  # any verdict may change
            touched.update(index_keys(st.raw))
            if st.type == "ship":
                ships.append(entry)
        crossing = customs._crossing(ships, state.local, state.country, None)
        for entry, st in crossing:
            for n, key in enumerate(st.items):
                state.units.append((entry.leaf_index, n, key))
        if len(state.units) > state.limit:
            dropped = state.units[:len(state.units) - state.limit]
            del state.units[:len(dropped)]
            state.truncated = True
            for leaf, _, key in dropped:
                state.consignments.pop((leaf, key), None)
                state.assessments.pop((leaf, key), None)
        keep = {(leaf, key) for leaf, _, key in state.units}
        changed = {key for leaf, _, key in state.units
                   if key in touched or state.depends.get(key, set()) & touched or (leaf, key) not in state.consignments}
        if changed:
            leaves = txn.leaves_for_keys(changed)
            entries = txn.entries_at({i for ls in leaves.values() for i in ls})
            their_ships = customs._crossing((entries[i] for i in sorted(entries) if entries[i].type == "ship"),
                                            state.local, state.country, changed)
            fresh, _ = customs._consignments(txn, their_ships, state.customs_ids, only=changed,
                                             limit=len(their_ships) * 1000 + 1)
    state.size = size
    if changed:
        redo = []
        for c in fresh:
            if (c.ship_leaf, c.key) in keep:
                state.consignments[(c.ship_leaf, c.key)] = c
                redo.append(c)
        for key in changed:
            state.depends.pop(key, None)
        _assess(ledger, state, redo)
    _finish(state)
    return state


def _assess(ledger: Ledger, state: _Live, items: list[Consignment]) -> None:
    for a in customs.assess(ledger, items, depends=state.depends):
        state.assessments[(a.consignment.ship_leaf, a.key)] = a


def _finish(state: _Live) -> None:
    ordered = tuple(state.assessments[(leaf, key)] for leaf, _, key in reversed(state.units)
                    if (leaf, key) in state.assessments)
    state.dashboard = Dashboard(country=state.country, customs_parties=state.customs_parties, assessments=ordered,
                                stats=customs.stats(ordered), tree_size=state.size, truncated=state.truncated)
