"""`scanner epcis import`: the handheld records an EPCIS document over the public HTTP API only — statements
and document signed on the device, prev chained from the server's heads and within the document."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.epcis import builders as b
from tracker.provenance import lookup
from tracker.scenarios import make_sscc

from .conftest import LiveServer, Scanner

PALLET = make_sscc("scanner-tests:epcis-pallet")  # 0 0950600 ... : company prefix 0950600 (7 digits)
PALLET_URN = b.sscc(PALLET[1:8], PALLET[0] + PALLET[8:17])
ITEMS = [b.sgtin("950600", "0013435", f"H{i}") for i in (1, 2, 3)]


def _document() -> dict:
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    return b.document([
        b.receiving(now, ITEMS, by="pearl-export", sender="acme-cn"),
        b.aggregation("ADD", "packing", now + timedelta(minutes=5), PALLET_URN, ITEMS),
        b.shipping(now + timedelta(minutes=10), [PALLET_URN], by="pearl-export", to="hh-warehouse"),
    ])


def test_the_handheld_imports_a_document_and_a_rerun_changes_nothing(tmp_path: Path, live: LiveServer,
                                                                      scanner: Scanner) -> None:
    path = tmp_path / "pearl.jsonld"
    path.write_text(json.dumps(_document()))
    result = scanner("epcis", "import", str(path))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["created"] * 3
    answer = lookup(live.ledger, "01/09506000134352/21/H2")
    assert [p["type"] for p in answer.path][-3:] == ["receive", "aggregate", "ship"]
    assert answer.verdict == "genuine" and answer.has("in_transit")
    pallet = lookup(live.ledger, f"00/{PALLET}")
    ship = next(p for p in pallet.path if p["type"] == "ship")
    _, st = live.ledger.get_event(ship["event_id"])
    pack = next(p for p in pallet.path if p["type"] == "aggregate")
    assert st.prev == {f"00/{PALLET}": pack["event_id"]}  # chained within the document, before it was stored
    size = live.ledger.size()
    again = scanner("epcis", "import", str(path))
    assert again.exit_code == 0, again.output
    assert {json.loads(line)["status"] for line in again.stdout.splitlines()} == {"existing"}
    assert live.ledger.size() == size


def test_events_the_device_cannot_record_are_refused_one_by_one(tmp_path: Path, live: LiveServer,
                                                                 scanner: Scanner) -> None:
    doc = _document()
    doc["epcisBody"]["eventList"][2]["sourceList"][0]["source"] = b.party("acme-cn")  # says acme shipped it
    path = tmp_path / "pearl.jsonld"
    path.write_text(json.dumps(doc))
    result = scanner("epcis", "import", str(path))
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["created", "created", "refused"]
    assert lines[2]["error"]["code"] == "wrong_signer"
