"""Import, query and history on both storage backends (PostgreSQL when WAYBILL_TEST_POSTGRES_URL is set)."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import fixed_key
from tests.epcis.test_journey import A, B, NOW, P, PARTIES, START, _documents
from tracker.epcis.epc import epc_uri
from tracker.epcis.export import item_history
from tracker.epcis.ingest import import_document
from tracker.epcis.query import parse_query, run_query
from tracker.ledger import Ledger
from tracker.provenance import lookup
from tracker.scenarios import Network


def test_import_query_and_history(ledger: Ledger) -> None:
    net = Network(ledger, admin_key=fixed_key("admin"), start=START - timedelta(hours=1))
    for pid, name, country, roles, prefixes in PARTIES:
        net.add_party(pid, name=name, country=country, roles=roles, gs1_prefixes=prefixes)
    for pid, doc in _documents(with_receive=True):
        assert {r.status for r in import_document(ledger, doc, key=net.keys[pid][0], now=NOW)} == {"created"}
    assert lookup(ledger, B).verdict == "genuine"
    pages, token, seen = 0, None, []
    query = parse_query({"MATCH_anyEPC": f"{epc_uri(A)}|{epc_uri(P)}", "perPage": "2"})
    while True:
        page = run_query(ledger, query, token=token)
        seen.extend(e.event_id for e, _ in page.items)
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 7
    shipping = run_query(ledger, parse_query({"EQ_bizStep": "shipping"}))  # no EPC named: the type index
    assert [st.type for _, st in shipping.items] == ["ship"]
    history = item_history(ledger, B, now=NOW)["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["waybill:ledger"]["eventId"] for e in history] == seen[:6]  # B: all of A's events but the sale
    ledger.audit()
