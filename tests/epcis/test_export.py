"""Exports validate against GS1's EPCIS 2.0 JSON Schema (the reference validator, formats checked), carry the
source IDs of imported events and hash IDs of native ones, and link every event to a provable ledger entry."""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.epcis import builders as b
from tests.epcis.test_journey import (A, B, NOW, _at, _documents, _imported, _native, _network)
from tracker import merkle
from tracker.checkpoint import verify_checkpoint
from tracker.dsse import parse_envelope
from tracker.epcis.export import item_history
from tracker.epcis.hashing import event_hash_ids
from tracker.epcis.ingest import import_document
from tracker.epcis.schema import _schema, event_list
from tracker.statements import parse_statement

SCHEMA = Draft7Validator(_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)


def _valid(doc: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in SCHEMA.iter_errors(doc)]
    assert not errors, errors[:5]


def _events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def test_native_history_exports_as_valid_epcis_with_hash_ids(tmp_path: Path) -> None:
    net = _network(tmp_path / "native.db")
    _native(net, with_receive=True)
    net.record("inspect", "de-customs", at=_at(303), items=[B], decision="held",
               note_commitment="sha256:" + "ab" * 32)  # the note itself ("x-ray") stays off the ledger
    doc = item_history(net.ledger, B, now=NOW)
    _valid(doc)
    events = _events(doc)
    assert [(e["type"], e["action"], e["bizStep"]) for e in events] == [
        ("ObjectEvent", "ADD", "commissioning"), ("AggregationEvent", "ADD", "packing"),
        ("ObjectEvent", "OBSERVE", "shipping"), ("ObjectEvent", "OBSERVE", "inspecting"),
        ("ObjectEvent", "OBSERVE", "receiving"), ("AggregationEvent", "DELETE", "unpacking"),
        ("ObjectEvent", "OBSERVE", "inspecting")]
    assert events[0]["ilmd"] == {"waybill:productName": "Aurora wireless earbuds", "cbvmda:lotNumber": "L7"}
    assert events[-1]["disposition"] == "non_sellable_other" and "note" not in json.dumps(doc)  # notes stay private
    stripped = [{k: v for k, v in e.items() if k not in ("eventID", "waybill:ledger")} for e in events]
    assert [e["eventID"] for e in events] == event_hash_ids(stripped)


def test_every_exported_event_proves_its_signed_ledger_entry(tmp_path: Path) -> None:
    net = _network(tmp_path / "epcis.db")
    _imported(net, with_receive=True)
    doc = item_history(net.ledger, A, now=NOW)
    checkpoint = verify_checkpoint(doc["waybill:checkpoint"], net.ledger.note_verifier, origin=net.ledger.origin)
    for event in _events(doc):
        link = event["waybill:ledger"]
        env = parse_envelope(link["envelope"])
        assert env.event_id == link["eventId"]
        assert parse_statement(env.payload).raw["source_event"] == event["eventID"]
        proof = [base64.b64decode(h) for h in link["inclusionProof"]["hashes"]]
        merkle.verify_inclusion(merkle.leaf_hash(env.leaf_data()), link["leafIndex"], checkpoint.size, proof,
                                checkpoint.root_hash)


def test_imported_events_export_with_their_source_ids(tmp_path: Path) -> None:
    net = _network(tmp_path / "epcis.db")
    documents = _documents(with_receive=True)
    for n, event in enumerate(event_list(documents[0][1])):  # the manufacturer's system assigns its own IDs
        event["eventID"] = f"urn:uuid:7f3c2a4e-0000-4000-8000-00000000000{n}"
    for pid, doc in documents:
        assert {r.status for r in import_document(net.ledger, doc, key=net.keys[pid][0], now=NOW)} == {"created"}
    sources = [e for _, d in documents for e in event_list(d)]
    hashed = event_hash_ids([e for e in sources if "eventID" not in e], context=documents[0][1]["@context"])
    doc = item_history(net.ledger, A, now=NOW)
    _valid(doc)
    assert [e["eventID"] for e in _events(doc)] == [e["eventID"] for e in sources if "eventID" in e] + hashed


def test_an_export_imported_again_into_the_same_ledger_is_recognised(tmp_path: Path) -> None:
    net = _network(tmp_path / "native.db")
    _native(net, with_receive=True)
    doc = item_history(net.ledger, A, now=NOW)
    size = net.ledger.size()
    by_actor: dict[str, list[dict[str, Any]]] = {}
    for event in _events(doc):
        actor = parse_statement(parse_envelope(event["waybill:ledger"]["envelope"]).payload).actor
        by_actor.setdefault(actor, []).append(event)
    for actor, events in by_actor.items():
        again = copy.deepcopy(doc)
        again["epcisBody"]["queryResults"]["resultsBody"]["eventList"] = events
        results = import_document(net.ledger, again, key=net.keys[actor][0], now=NOW)
        assert {r.status for r in results} == {"existing"}, [r.to_json() for r in results]
    assert net.ledger.size() == size


@pytest.mark.parametrize("name,codes", [
    ("Example_9.6.1-ObjectEvent", ["missing_destination", "unknown_item_or_no_shipment"]),
    ("EPCISQueryDocument", ["missing_destination", "unknown_item_or_no_shipment"]),
    ("Example_9.6.2-ObjectEvent", ["unsupported_quantities"]),
    ("Example_9.6.3-AggregationEvent", ["unmapped_biz_step"]),
])
def test_the_standard_examples_are_refused_with_the_documented_reason(tmp_path: Path, name: str,
                                                                      codes: list[str]) -> None:
    net = _network(tmp_path / "epcis.db")
    doc = json.loads((b.DATA / f"{name}.jsonld").read_text())
    size = net.ledger.size()
    results = import_document(net.ledger, doc, key=net.keys["acme-cn"][0], now=NOW)
    got = [r.error.code if r.error else r.status for r in results]
    assert got == [c if c != "unknown_item_or_no_shipment" else "no_shipment" for c in codes]
    assert net.ledger.size() == size


def test_the_standard_example_imports_and_round_trips_once_it_names_a_destination(tmp_path: Path) -> None:
    """Example 9.6.1 lacks only a destination: with one added, its two events import (as two parties) and an
    export gives back the standard's own eventIDs."""
    from datetime import datetime, timezone

    from tests.store.helpers import key_entry, party_envelope
    from tracker.keys import keypair_from_seed

    net = _network(tmp_path / "epcis.db")
    since = datetime(2000, 1, 1, tzinfo=timezone.utc)
    keys = {pid: keypair_from_seed(pid.encode().ljust(32, b"-")) for pid in ("gs1-shipper", "gs1-receiver")}
    for pid, role in (("gs1-shipper", "manufacturer"), ("gs1-receiver", "warehouse")):
        net.ledger.append(party_envelope(_admin(), pid, roles=[role],
                                         keys=[key_entry(keys[pid], not_before=since)], country="US"), now=NOW)
    example = json.loads((b.DATA / "Example_9.6.1-ObjectEvent.jsonld").read_text())
    shipping, receiving = event_list(example)
    shipping["destinationList"] = [{"type": "possessing_party", "destination": b.party("gs1-receiver")}]
    commissioning = b.commissioning(datetime(2005, 4, 1, tzinfo=timezone.utc), shipping["epcList"])
    shipper_doc = dict(example, epcisBody={"eventList": [commissioning, shipping]})
    receiver_doc = dict(example, epcisBody={"eventList": [receiving]})
    assert {r.status for r in import_document(net.ledger, shipper_doc, key=keys["gs1-shipper"], now=NOW)} == {"created"}
    assert {r.status for r in import_document(net.ledger, receiver_doc, key=keys["gs1-receiver"], now=NOW)} == {"created"}
    doc = item_history(net.ledger, "01/10614141073464/21/2018", now=NOW)
    _valid(doc)
    ids = [e["eventID"] for e in _events(doc)]
    assert ids[1:] == [shipping["eventID"], receiving["eventID"]]
    reception = _events(doc)[2]
    assert reception["bizLocation"] == {"id": "https://id.gs1.org/414/0012345111112"}  # the example's GLN, kept


def _admin() -> Any:
    from tests.conftest import fixed_key

    return fixed_key("admin")
