"""`tracker epcis import` / `export` as an operator runs them: exit codes, one JSON line per event, nothing
stored for a refused document, a re-run that changes nothing, an export `tracker verify` agrees with."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jsonschema import Draft7Validator

from tests.epcis import builders as b
from tests.unit.test_cli import Tracker, tracker  # noqa: F401  (the fixture)
from tracker.epcis.schema import _schema


def _doc(when: datetime) -> dict:
    return b.document([
        b.commissioning(when, [b.sgtin("950600", "0013435", "CLI1"), b.sgtin("950600", "0013435", "CLI2")],
                        lot="L1", name="Aurora", event_id="urn:uuid:00000000-0000-4000-8000-000000000001"),
        b.shipping(when + timedelta(minutes=5), [b.sgtin("950600", "0013435", "CLI1")], by="acme", to="pearl"),
        b.object_event("OBSERVE", "departing", when + timedelta(minutes=6), [b.sgtin("950600", "0013435", "CLI1")]),
    ])


def test_import_then_export(tracker: Tracker, tmp_path: Path) -> None:  # noqa: F811
    tracker.init()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    acme = tracker.add_party("acme", "Acme Manufacturing", "CN", "manufacturer", "--gs1-prefix", "950600",
                             "--not-before", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    tracker.add_party("pearl", "Pearl River Export", "CN", "exporter")
    path = tmp_path / "acme.jsonld"
    path.write_text(json.dumps(_doc(start + timedelta(minutes=30))))
    before = tracker.size()
    result = tracker("epcis", "import", path, "--key", acme)
    assert result.exit_code == 1  # the departing event has no Waybill meaning: refused, and said so
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["created", "created", "refused"]
    assert lines[0]["eventID"] == "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert lines[2]["error"]["code"] == "unmapped_biz_step" and lines[2]["error"]["field"] == "bizStep"
    assert "3 events: 2 created, 0 already recorded, 1 refused" in result.stderr
    assert tracker.size()[0] == before[0] + 2
    again = tracker("epcis", "import", path, "--key", acme, "--quiet")
    assert "2 already recorded" in again.stderr and tracker.size()[0] == before[0] + 2

    out = tmp_path / "cli1.jsonld"
    tracker.ok("epcis", "export", "urn:epc:id:sgtin:950600.0013435.CLI1", "--out", out)
    exported = json.loads(out.read_text())
    assert not list(Draft7Validator(_schema(), format_checker=Draft7Validator.FORMAT_CHECKER).iter_errors(exported))
    events = exported["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["bizStep"] for e in events] == ["commissioning", "shipping"]
    assert events[0]["eventID"] == lines[0]["eventID"] and events[1]["eventID"] == lines[1]["eventID"]
    tracker.ok("verify")


def test_an_invalid_document_imports_nothing_and_names_event_and_field(tracker: Tracker, tmp_path: Path) -> None:  # noqa: F811
    tracker.init()
    acme = tracker.add_party("acme", "Acme Manufacturing", "CN", "manufacturer")
    doc = _doc(datetime.now(timezone.utc))
    doc["epcisBody"]["eventList"][1]["epcList"] = ["not a uri"]
    path = tmp_path / "bad.jsonld"
    path.write_text(json.dumps(doc))
    before = tracker.size()
    result = tracker("epcis", "import", path, "--key", acme)
    assert result.exit_code == 1
    problem = json.loads(result.stdout.splitlines()[0])["error"]
    assert (problem["index"], problem["field"]) == (1, "epcList[0]")
    assert "nothing was imported" in result.stderr and tracker.size() == before
