"""Every scenario in fixtures/scenarios plays into a real ledger and gets exactly its expected verdict and codes:
counterfeit scenarios are caught with the right reason, genuine ones raise no false alarm."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tracker.ledger import Ledger
from tracker.provenance import SEVERITY, lookup, verdict_for
from tracker.scenarios import Network, load_scenarios, party_key
from tracker.store import open_store

SCENARIOS = load_scenarios()
START = datetime(2026, 2, 2, 6, 0, tzinfo=timezone.utc)


def _network(url: str) -> Network:
    admin = party_key("admin", seed="tests")
    ledger = Ledger.create(open_store(url), origin="waybill.test/ledger", ledger_key=party_key("ledger", seed="tests"),
                           admin_key=admin, now=START)
    return Network(ledger, admin_key=admin, start=START, seed="tests")


def test_library_covers_every_reason_code():
    covered = {c for s in SCENARIOS for c in s.codes}
    # ledger_integrity_failure needs a tampered database: tests/unit/test_lookup_integrity.py covers it.
    assert set(SEVERITY) - covered == {"ledger_integrity_failure"}
    assert any(s.kind == "genuine" and not s.codes for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_verdict_and_codes(scenario, sqlite_url):
    net = _network(sqlite_url)
    item, checks = scenario.play_checked(net, n="7")
    for check in checks:  # the verdict at every stage the scenario pins, not only at the end
        assert check.ok, check
    answer = lookup(net.ledger, item, now=net.clock)
    assert answer.verdict == scenario.verdict, answer.to_json()["reasons"]
    assert sorted({r.code for r in answer.reasons}) == sorted(set(scenario.codes))
    for r in answer.reasons:
        assert r.message and r.severity == SEVERITY[r.code]
        if r.code != "unknown_item":
            assert r.event_id in {p["event_id"] for p in answer.path}


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["genuine-pallet", "fork", "missing-customs", "pallet-by-sscc", "border-dodge",
                                  "licensed-manufacturer", "label-copied-after-sale", "container-missing-in-transit"])
def test_scenarios_on_postgres(name, postgres_url):
    scenario = next(s for s in SCENARIOS if s.name == name)
    net = _network(postgres_url)
    answer = lookup(net.ledger, scenario.play(net, n="1"), now=net.clock)
    assert answer.verdict == scenario.verdict
    assert sorted({r.code for r in answer.reasons}) == sorted(set(scenario.codes))


def test_scenarios_share_one_ledger_without_cross_talk(sqlite_url):
    """The demo plays every scenario into one network: each item must still get its own verdict."""
    net = _network(sqlite_url)
    played = [(s, s.play(net, n=f"X{i}")) for i, s in enumerate(s for s in SCENARIOS if s.name != "revoked-key")]
    for scenario, item in played:
        answer = lookup(net.ledger, item, now=net.clock)
        assert answer.verdict == scenario.verdict, (scenario.name, answer.to_json()["reasons"])


def test_fork_flags_both_branches(sqlite_url):
    net = _network(sqlite_url)
    item = next(s for s in SCENARIOS if s.name == "fork").play(net, n="1")
    answer = lookup(net.ledger, item)
    forked = {r.event_id for r in answer.reasons if r.code == "fork"}
    ships = [p["event_id"] for p in answer.path if p["type"] == "ship"]
    assert len(ships) == 2 and forked == set(ships)


def test_genuine_answer_shape(sqlite_url):
    net = _network(sqlite_url)
    item = next(s for s in SCENARIOS if s.name == "genuine-cross-border").play(net, n="1")
    doc = lookup(net.ledger, item).to_json()
    assert set(doc) == {"item", "gtin", "serial", "product", "verdict", "reasons", "holder", "path", "checkpoint"}
    assert doc["verdict"] == "genuine" and doc["reasons"] == [] and doc["holder"] == "berlin-shop"
    assert doc["product"] == {"name": "Aurora wireless earbuds", "manufacturer": "acme-cn", "lot": "L2026-03"}
    assert [p["type"] for p in doc["path"]] == ["commission", "ship", "receive", "ship", "inspect", "receive",
                                                "ship", "receive"]
    assert [p["time"] for p in doc["path"]] == sorted(p["time"] for p in doc["path"])
    customs = doc["path"][4]
    assert customs["role"] == "customs" and customs["decision"] == "released"
    assert customs["location"]["country"] == "DE"
    assert doc["checkpoint"] == net.ledger.checkpoint()


def test_verdict_rule():
    from tracker.provenance import Reason

    assert verdict_for([]) == "genuine"
    assert verdict_for([Reason(code="in_transit", message="x")]) == "genuine"
    assert verdict_for([Reason(code="in_transit", message="x"), Reason(code="held_by_customs", message="y")]) == "suspicious"
    assert verdict_for([Reason(code="held_by_customs", message="y"), Reason(code="fork", message="z")]) == "likely_counterfeit"


def test_malformed_key_is_an_error_not_a_verdict(ledger):
    from tracker.errors import InvalidIdentifier

    with pytest.raises(InvalidIdentifier):
        lookup(ledger, "01/09506000134353/21/X")
