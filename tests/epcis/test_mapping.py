"""The mapping one event at a time: identifiers, vocabulary spellings, refusals with their codes, hash IDs."""
from __future__ import annotations

import json

import pytest

from tests.epcis import builders as b
from tracker.epcis.epc import epc_uri, epc_urn, gln_of_uri, key_of_epc, location_of_uri, location_uri
from tracker.epcis.hashing import HashUnavailable, event_hash_id, event_hash_ids
from tracker.epcis.mapping import Draft, Unmapped, draft_of_event
from tracker.epcis.schema import InvalidDocument, document_problems, validate_document
from tracker.errors import InvalidIdentifier

T = b._time.__globals__["datetime"](2026, 3, 4, 10, 0, tzinfo=b.CEST)


# --- identifiers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("uri,key", [
    ("urn:epc:id:sgtin:0614141.107346.2017", "01/10614141073464/21/2017"),
    ("urn:epc:id:sgtin:950600.0013435.A%2FB", "01/09506000134352/21/A/B"),
    ("urn:epc:id:sscc:0614141.1234567890", "00/106141412345678908"),
    ("https://id.gs1.org/01/09506000134352/21/ABC", "01/09506000134352/21/ABC"),
    ("https://brand.example/01/9506000134352/21/X%2F1?foo=1", "01/09506000134352/21/X/1"),
    ("https://id.gs1.org/00/106141412345678908", "00/106141412345678908"),
])
def test_epc_urns_and_digital_links_name_the_same_keys(uri: str, key: str) -> None:
    assert key_of_epc(uri) == key


def test_urn_and_digital_link_round_trip_with_the_prefix_length() -> None:
    for key, length in (("01/09506000134352/21/A/B\"<", 6), ("00/106141412345678908", 7)):
        assert key_of_epc(epc_urn(key, length)) == key
        assert key_of_epc(epc_uri(key)) == key


@pytest.mark.parametrize("uri", ["urn:epc:id:sgln:0614141.07346.1234", "urn:epc:class:lgtin:4012345.012345.998877",
                                 "urn:epc:id:sgtin:0614141.10734.2017", "urn:epc:id:sgtin:0614141.107346.2017",
                                 "geo:47.5,11.1", "urn:epc:id:sscc:0614141.123456789"])
def test_identifiers_that_name_no_item_or_container_are_refused(uri: str) -> None:
    if uri == "urn:epc:id:sgtin:0614141.107346.2017":
        assert key_of_epc(uri)  # the valid one of the list, as a control
        return
    with pytest.raises(InvalidIdentifier):
        key_of_epc(uri)


def test_locations_and_glns() -> None:
    loc = {"name": "Zollamt Hamburg / Waltershof", "country": "DE"}
    assert location_of_uri(location_uri(loc)) == loc
    assert gln_of_uri("urn:epc:id:sgln:0614141.07346.1234") == "0614141073467"
    assert gln_of_uri("https://id.gs1.org/414/0614141073467") == "0614141073467"
    assert gln_of_uri("https://id.gs1.org/414/0614141073468") is None  # wrong check digit


# --- one event ---------------------------------------------------------------------------------------

def test_a_shipping_event_maps_to_a_ship_and_says_what_it_did_not_keep() -> None:
    event = b.shipping(T, [b.sgtin("950600", "0013435", "S1")], by="acme", to="hk-warehouse",
                       bizTransactionList=[{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0950600000009:1"}],
                       readPoint={"id": "urn:epc:id:sgln:0950600.00001.0"})
    draft = draft_of_event(event, index=3)
    assert isinstance(draft, Draft)
    assert (draft.type, draft.to, draft.by, draft.items) == ("ship", "hk-warehouse", "acme",
                                                              ("01/09506000134352/21/S1",))
    assert draft.time.isoformat() == "2026-03-04T08:00:00+00:00"
    assert draft.gln == "0950600000019"
    assert draft.ignored == ("bizTransactionList",)


@pytest.mark.parametrize("disposition,decision", [("conformant", "released"), ("non_sellable_other", "held"),
                                                  ("non_conformant", "seized")])
def test_the_customs_decision_is_the_inspecting_disposition(disposition: str, decision: str) -> None:
    draft = draft_of_event(b.inspecting(T, [b.sgtin("950600", "0013435", "S1")], disposition), index=0)
    assert draft.decision == decision


@pytest.mark.parametrize("event,code", [
    ({"type": "TransformationEvent", "eventTime": "2026-03-04T10:00:00Z", "eventTimeZoneOffset": "+00:00",
      "inputEPCList": ["urn:epc:id:sgtin:0614141.107346.1"], "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.2"]},
     "unsupported_event_type"),
    (b.object_event("OBSERVE", "departing", T, ["urn:epc:id:sgtin:0614141.107346.1"]), "unmapped_biz_step"),
    (b.object_event("OBSERVE", "shipping", T, ["urn:epc:id:sgtin:0614141.107346.1"]), "missing_destination"),
    (b.object_event("OBSERVE", "inspecting", T, ["urn:epc:id:sgtin:0614141.107346.1"], disposition="in_progress"),
     "missing_decision"),
    (b.object_event("OBSERVE", "inspecting", T, ["urn:epc:id:sgtin:0614141.107346.1"], disposition="conformant",
                    sensorElementList=[{"sensorReport": [{"type": "Temperature", "value": 4, "uom": "CEL"}]}]),
     "unsupported_sensor_data"),
    (b.object_event("ADD", "commissioning", T, [], quantityList=[
        {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200, "uom": "KGM"}]),
     "unsupported_quantities"),
    (b.object_event("ADD", "commissioning", T, ["urn:epc:id:sgtin:0614141.107346.1",
                                                "urn:epc:id:sgtin:0614141.107347.1"]), "several_products"),
    (b.object_event("ADD", "commissioning", T, ["urn:epc:id:sscc:0614141.1234567890"]), "unsupported_epc"),
    (b.object_event("OBSERVE", "retail_selling", T, ["urn:epc:id:grai:0614141.12345.1"]), "unsupported_epc"),
    (b.shipping(T, ["urn:epc:id:sgtin:0614141.107346.1"], by="acme", to="x")
     | {"destinationList": [{"type": "possessing_party", "destination": "urn:epc:id:pgln:0614141.00000"}]},
     "unknown_party"),
    (b.object_event("OBSERVE", "shipping", T, ["urn:epc:id:sgtin:0614141.107346.1"],
                    errorDeclaration={"declarationTime": "2026-03-05T10:00:00Z"}), "unsupported_error_declaration"),
])
def test_events_without_a_waybill_meaning_are_refused_with_their_reason(event: dict, code: str) -> None:
    with pytest.raises(Unmapped) as info:
        draft_of_event(event, index=0)
    assert info.value.code == code


def test_cbv_vocabulary_is_read_in_every_spelling() -> None:
    for step in ("shipping", "https://ref.gs1.org/cbv/BizStep-shipping"):
        event = b.shipping(T, ["urn:epc:id:sgtin:0614141.107346.1"], by="a1", to="b2", bizStep=step)
        event["destinationList"][0]["type"] = "https://ref.gs1.org/cbv/SDT-possessing_party"
        assert draft_of_event(event, index=0).type == "ship"


# --- documents ----------------------------------------------------------------------------------------

def test_schema_errors_name_the_event_and_the_field() -> None:
    events = [b.commissioning(T, [b.sgtin("950600", "0013435", "S1")], event_id="urn:uuid:1"),
              b.object_event("JUMP", "shipping", T, ["urn:epc:id:sgtin:0614141.107346.1"], event_id="urn:uuid:2"),
              b.object_event("OBSERVE", "shipping", T, ["not a uri"], event_id="urn:uuid:3")]
    with pytest.raises(InvalidDocument) as info:
        validate_document(b.document(events))
    found = {(p.index, p.event_id, p.field) for p in info.value.problems}
    assert found == {(1, "urn:uuid:2", "action"), (2, "urn:uuid:3", "epcList[0]")}
    assert "event 1 (urn:uuid:2): action" in str(info.value)


def test_the_standard_examples_are_valid_epcis() -> None:
    for name in ("Example_9.6.1-ObjectEvent", "Example_9.6.2-ObjectEvent", "Example_9.6.3-AggregationEvent",
                 "EPCISQueryDocument"):
        assert document_problems(json.loads((b.DATA / f"{name}.jsonld").read_text())) == []


# --- event hash IDs ----------------------------------------------------------------------------------

def test_hash_id_of_the_published_reference_example() -> None:
    doc = json.loads((b.DATA / "HashRef-ReferenceEventHashAlgorithm.jsonld").read_text())
    assert event_hash_ids(doc["epcisBody"]["eventList"], context=doc["@context"]) == [
        "ni:///sha-256;6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7?ver=CBV2.0"]


def test_hash_id_does_not_depend_on_spelling_or_key_order() -> None:
    event = b.shipping(T, [b.sgtin("950600", "0013435", "S1")], by="acme", to="hk-warehouse")
    reordered = dict(event, sourceList=[{"source": e["source"], "type": e["type"]} for e in event["sourceList"]],
                     epcList=["https://id.gs1.org/01/09506000134352/21/S1"])
    with_links = dict(event, **{"waybill:ledger": {"eventId": "sha256:" + "0" * 64}})
    assert event_hash_id(event) == event_hash_id(reordered) == event_hash_id(with_links)
    assert event_hash_id(event) != event_hash_id(dict(event, eventTime="2026-03-04T10:00:01.000+02:00"))


def test_hash_ids_never_fetch_a_context_from_the_network() -> None:
    with pytest.raises(HashUnavailable):
        event_hash_ids([b.shipping(T, ["urn:epc:id:sgtin:0614141.107346.1"], by="a1", to="b2")],
                       context=["https://contexts.example/epcis-extra.jsonld"])
