"""EPCIS 2.0 over HTTP: capture (the party's own signatures end up in the ledger; a statement that does not
record its event is refused), the simple event query with paging, an item's history; answers checked against
the OpenAPI document and GS1's JSON Schema."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.conftest import T0, fixed_key
from tests.epcis import builders as b
from tracker.dsse import sign_envelope
from tracker.epcis.capture import STATEMENTS, sign_capture
from tracker.epcis.importer import plan_import
from tracker.epcis.schema import _schema
from tracker.epcis.state import LedgerState
from tracker.epcis.vocab import PAYLOAD_TYPE
from tracker.provenance import lookup
from tracker.scenarios import party_key
from tracker.statements import statement_bytes

GS1 = Draft7Validator(_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
WHEN = T0 + timedelta(days=3)
ITEM_URN = b.sgtin("950600", "0013435", "CAP1")
ITEM = "01/09506000134352/21/CAP1"


def _document() -> dict[str, Any]:
    return b.document([b.commissioning(WHEN, [ITEM_URN], lot="L9", name="Aurora wireless earbuds"),
                       b.shipping(WHEN + timedelta(hours=1), [ITEM_URN], by="acme-cn", to="pearl-export")])


def _capture_body(ledger, doc: dict[str, Any], party: str = "acme-cn") -> dict[str, Any]:
    """What a party's system sends: its statements and the document, all signed with its own key."""
    plan = plan_import(doc["epcisBody"]["eventList"], actor=party, view=LedgerState(ledger), context=doc["@context"])
    return sign_capture(doc, plan, party_key(party)).to_json()


def _post(client, body: Any, **headers: str):
    return client.post("/api/v1/epcis/capture", data=json.dumps(body), content_type="application/json",
                       headers=headers)


def test_capture_stores_the_partys_own_signed_statements(client, ledger, openapi):
    body = _capture_body(ledger, _document())
    response = _post(client, body)
    job = openapi.check(response, "/epcis/capture", "post")
    assert response.status_code == 202 and job["success"] and job["errors"] == [], job
    assert [r["created"] for r in job["waybill:results"]] == [True, True]
    answer = lookup(ledger, ITEM)
    assert [p["type"] for p in answer.path] == ["commission", "ship"] and answer.has("in_transit")
    ledger.audit()  # every captured statement verifies under acme-cn's own key
    again = _post(client, body).get_json()  # the same capture twice: the same statements, nothing new
    assert again["success"] and [r["created"] for r in again["waybill:results"]] == [False, False]


def test_a_statement_that_does_not_record_its_event_is_refused_and_nothing_is_stored(client, ledger, openapi):
    doc = _document()
    body = _capture_body(ledger, doc)
    signed = json.loads(base64.b64decode(body["payload"]))
    # The party's system signs a statement shipping to someone else than its EPCIS event says.
    forged = json.loads(base64.b64decode(signed["epcisHeader"][STATEMENTS][1]["payload"]))
    forged["to"] = "delta-export"
    signed["epcisHeader"][STATEMENTS][1] = sign_envelope(statement_bytes(forged), [party_key("acme-cn")]).to_json()
    size = ledger.size()
    response = _post(client, sign_envelope(statement_bytes(signed), [party_key("acme-cn")],
                                           payload_type=PAYLOAD_TYPE).to_json())
    job = openapi.check(response, "/epcis/capture", "post")
    assert job["success"] is False and [e["code"] for e in job["errors"]] == ["statement_mismatch"]
    assert job["waybill:results"] == [None, None]  # rollback: the valid commission is not stored either
    assert ledger.size() == size


def test_proceed_stores_what_is_valid(client, ledger):
    doc = _document()
    body = _capture_body(ledger, doc)
    signed = json.loads(base64.b64decode(body["payload"]))
    signed["epcisHeader"][STATEMENTS][1] = signed["epcisHeader"][STATEMENTS][0]  # wrong statement for event 1
    envelope = sign_envelope(statement_bytes(signed), [party_key("acme-cn")], payload_type=PAYLOAD_TYPE).to_json()
    job = _post(client, envelope, **{"GS1-Capture-Error-Behaviour": "proceed"}).get_json()
    assert job["waybill:results"][0]["created"] is True and job["waybill:results"][1] is None


def test_a_document_from_another_partys_key_is_refused(client, ledger, openapi):
    plan = plan_import(_document()["epcisBody"]["eventList"], actor="acme-cn", view=LedgerState(ledger),
                       context=_document()["@context"])
    stolen = sign_capture(_document(), plan, party_key("acme-cn")).to_json()
    # The statements are acme's own, but the document envelope is re-signed by another registered party.
    resigned = sign_envelope(base64.b64decode(stolen["payload"]), [party_key("pearl-export")],
                             payload_type=PAYLOAD_TYPE).to_json()
    job = openapi.check(_post(client, resigned), "/epcis/capture", "post")
    assert {e["code"] for e in job["errors"]} == {"statement_mismatch"} and ledger.size() > 0
    unknown = sign_envelope(base64.b64decode(stolen["payload"]), [fixed_key("stranger")],
                            payload_type=PAYLOAD_TYPE).to_json()
    response = _post(client, unknown)
    assert response.status_code == 401
    openapi.check(response, "/epcis/capture", "post")


def test_the_server_never_signs_a_document_without_statements(client, ledger, openapi):
    envelope = sign_envelope(statement_bytes(_document()), [party_key("acme-cn")], payload_type=PAYLOAD_TYPE)
    response = _post(client, envelope.to_json())
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_statements"
    openapi.check(response, "/epcis/capture", "post")
    problem = _post(client, envelope.to_json(), Accept="application/problem+json")
    body = openapi.check(problem, "/epcis/capture", "post")
    assert problem.mimetype == "application/problem+json"
    assert body["type"] == "epcisException:ValidationException" and body["status"] == 400


def test_query_pages_through_matching_events_in_ledger_order(client, ledger, openapi, world):
    item = world.items["genuine-cross-border"]
    gtin, serial = item.split("/")[1], item.split("/")[3]
    epc = f"https://id.gs1.org/01/{gtin}/21/{serial}"
    seen: list[dict[str, Any]] = []
    url: str | None = f"/api/v1/epcis/events?MATCH_epc={epc}&perPage=3"
    pages = 0
    while url:
        response = client.get(url)
        doc = openapi.check(response, "/epcis/events")
        assert not list(GS1.iter_errors(doc))
        seen.extend(doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
        link = response.headers.get("Link")
        url = link[link.index("<") + 1:link.index(">")] if link else None
        pages += 1
    assert pages >= 3
    assert [e["waybill:ledger"]["eventId"] for e in seen] == [p["event_id"] for p in lookup(ledger, item).path]
    shipping = client.get(f"/api/v1/epcis/events?MATCH_anyEPC={epc}&EQ_bizStep=shipping").get_json()
    assert {e["bizStep"] for e in shipping["epcisBody"]["queryResults"]["resultsBody"]["eventList"]} == {"shipping"}


def test_query_time_window_and_event_id(client, ledger, world):
    item = world.items["genuine-cross-border"]
    epc = "https://id.gs1.org/" + item.replace("/21/", "/21/", 1)
    everything = client.get(f"/api/v1/epcis/events?MATCH_epc={epc}&perPage=100").get_json()
    events = everything["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    middle = events[2]["eventTime"]
    later = client.get(f"/api/v1/epcis/events?MATCH_epc={epc}&GE_eventTime={middle}").get_json()
    assert [e["eventID"] for e in later["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == \
        [e["eventID"] for e in events[2:]]
    one = client.get(f"/api/v1/epcis/events?MATCH_epc={epc}&EQ_eventID={events[1]['eventID']}").get_json()
    assert [e["eventID"] for e in one["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [events[1]["eventID"]]


@pytest.mark.parametrize("query", ["orderBy=eventTime", "MATCH_epc=urn:epc:id:sgln:0614141.07346.1234",
                                   "perPage=0", "GE_eventTime=yesterday", "nextPageToken=forged"])
def test_query_parameters_it_cannot_honour_are_refused(client, openapi, query):
    response = client.get(f"/api/v1/epcis/events?{query}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "query_parameter"
    openapi.check(response, "/epcis/events")


def test_history_is_the_lookup_path_as_epcis(client, ledger, openapi, world):
    item = world.items["genuine-pallet"]
    response = client.get(f"/api/v1/epcis/history?epc=https://id.gs1.org/{item}")
    doc = openapi.check(response, "/epcis/history")
    assert not list(GS1.iter_errors(doc))
    events = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["waybill:ledger"]["eventId"] for e in events] == [p["event_id"] for p in lookup(ledger, item).path]
    assert "AggregationEvent" in {e["type"] for e in events}  # the pallet's moves are part of the item's history
