"""The customs dashboard kept up to date from new entries (tracker.customs_live) must always equal the dashboard
computed from scratch at the same tree size: new consignments, status changes (receive, inspect, seize), verdict
changes through a container's events, a party revoked (a full recompute), and a dashboard left far behind."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0, fixed_key
from tracker import customs
from tracker.ledger import Ledger
from tracker.scenarios import Network, load_scenarios
from tracker.store import open_store

PLAYS = ("genuine-cross-border", "held-by-customs", "seized", "genuine-pallet", "container-missing-in-transit",
         "border-dodge", "in-transit", "fork", "nested-pallet-case-item", "misdeclared-location", "missing-customs")


def assert_same(live: customs.Dashboard, full: customs.Dashboard) -> None:
    assert live.tree_size == full.tree_size
    assert [(a.key, a.consignment) for a in live.assessments] == [(a.key, a.consignment) for a in full.assessments]
    for a, b in zip(live.assessments, full.assessments):
        assert (a.verdict, a.reasons, a.holder, a.head, a.product, a.origin_country) == \
               (b.verdict, b.reasons, b.holder, b.head, b.product, b.origin_country), a.key
    assert live.stats == full.stats
    assert (live.customs_parties, live.truncated, live.country) == (full.customs_parties, full.truncated, full.country)


@pytest.fixture
def ledger(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'live.db'}")
    yield Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                        admin_key=fixed_key("admin"), now=T0)
    store.close()


@pytest.fixture
def net(ledger: Ledger) -> Network:
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    load = {s.name: s for s in load_scenarios()}
    load["genuine-cross-border"].play(net, n="base")  # a dashboard with something on it to start from
    return net


@pytest.mark.parametrize("limit", [500, 4])
def test_the_live_dashboard_equals_a_fresh_one_after_every_step(ledger, net, limit, monkeypatch):
    from tracker import customs_live

    by_name = {s.name: s for s in load_scenarios()}
    for name in PLAYS:  # every party registered first: the steps below add no party statement
        by_name[name].play(net, n="pre")
    builds = []
    real_build = customs_live._build
    monkeypatch.setattr(customs_live, "_build", lambda *a, **kw: builds.append(a[3]) or real_build(*a, **kw))
    fresh_handle = Ledger(ledger.store)  # no cache: every dashboard on it is computed from scratch
    live = customs.dashboard(ledger, "DE", limit=limit)
    assert_same(live, customs.full_dashboard(fresh_handle, "DE", limit=limit))
    sizes = [live.tree_size]
    for n, name in enumerate(PLAYS):
        by_name[name].play(net, n=f"L{n}")
        live = customs.dashboard(ledger, "DE", limit=limit)
        assert live.tree_size == ledger.size() > sizes[-1]
        sizes.append(live.tree_size)
        assert_same(live, customs.full_dashboard(fresh_handle, "DE", limit=limit))
    assert len(builds) == 1, builds  # computed once, then only brought up to date
    assert live.assessments and (len(live.assessments) == limit or limit == 500)
    assert live.truncated == (limit == 4)


def test_the_live_dashboard_equals_a_fresh_one_after_every_single_append(ledger, net):
    """Status and verdict changes arrive one entry at a time: a receive, an inspection, a seizure, a container
    shipped on or lost with items inside (whose verdicts change through the container's events)."""
    by_name = {s.name: s for s in load_scenarios()}
    plays = ("held-by-customs", "seized", "genuine-pallet", "container-missing-in-transit", "nested-pallet-case-item")
    for name in plays:
        by_name[name].play(net, n="pre")
    fresh_handle = Ledger(ledger.store)
    real_append = ledger.append
    checked = []

    def append_and_compare(envelope, *, now):
        result = real_append(envelope, now=now)
        live = customs.dashboard(ledger, "DE")
        assert_same(live, customs.full_dashboard(fresh_handle, "DE"))
        checked.append(live.tree_size)
        return result

    ledger.append = append_and_compare  # type: ignore[method-assign]
    customs.dashboard(ledger, "DE")
    for n, name in enumerate(plays):
        by_name[name].play(net, n=f"S{n}")
    assert len(checked) > 20


def test_a_revocation_changes_verdicts_on_the_live_dashboard(ledger, net):
    by_name = {s.name: s for s in load_scenarios()}
    by_name["genuine-cross-border"].play(net, n="R")
    before = customs.dashboard(ledger, "DE")
    # The maker's key is revoked back to before everything it signed: its shipments stop being genuine.
    maker = next(a.manufacturer for a in before.assessments if a.manufacturer)
    net.revoke(maker, revoked_at=T0)
    after = customs.dashboard(ledger, "DE")
    assert_same(after, customs.full_dashboard(Ledger(ledger.store), "DE"))
    assert [a.verdict for a in after.assessments] != [a.verdict for a in before.assessments]


def test_unrelated_writes_leave_the_dashboard_as_it_was(ledger, net):
    before = customs.dashboard(ledger, "DE")
    net.add_party("far-away-maker", name="Far Away", country="JP", roles=["manufacturer"], gs1_prefixes=["4901234"])
    net.record("commission", "far-away-maker", items=["01/04901234567894/21/JP-1"],
               product={"gtin": "04901234567894", "name": "Far widget"})
    after = customs.dashboard(ledger, "DE")
    assert after.tree_size > before.tree_size
    assert [(a.key, a.verdict, a.consignment) for a in after.assessments] == \
           [(a.key, a.verdict, a.consignment) for a in before.assessments]
