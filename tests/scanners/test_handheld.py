"""The handheld client against a live server: enrol, record online, queue offline, sync exactly once."""
from __future__ import annotations

import base64
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import requests
from PIL import Image

from scanners.labels import render_png
from scanners.outbox import Outbox
from tests.conftest import fixed_key
from tracker.identifiers import parse_key
from tracker.keys import write_key_file
from tracker.scenarios import make_sscc, party_key
from tracker.signing import party_statement, sign_statement
from tracker.statements import format_time

from .conftest import GTIN, RESOLVER, LiveServer, Scanner, item

OFFLINE = ["--party", "pearl-export", "--location", "Pearl River Export", "--country", "CN"]
PALLET = "00/" + make_sscc("scanner-tests:pallet")


def codes(*keys: str) -> list[str]:
    return [arg for k in keys for arg in ("--code", k)]


def queued(scanner: Scanner) -> list:
    with Outbox(scanner.home / "outbox.db") as box:
        return box.records()


def statement_of(record) -> dict:
    return json.loads(base64.b64decode(record.envelope_json()["payload"]))


def provenance(live: LiveServer, serial: str) -> dict:
    response = requests.get(f"{live.url}/api/v1/items/{GTIN}/{serial}", timeout=10)
    assert response.status_code == 200
    return response.json()


def test_enrolled_key_signs_after_the_admin_registers_it(tmp_path: Path, live: LiveServer) -> None:
    device = Scanner(home=tmp_path / "home", server=live.url)
    out = tmp_path / "dock3.key"
    result = device("enroll", "--out", str(out), "--name", "dock 3", "--party", "pearl-export")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert f"keyid: {doc['keyid']}" in result.stdout
    assert f"public_key: {doc['public_key']}" in result.stdout
    assert f"--key {doc['public_key']}" in result.stdout  # the admin's command, ready to paste
    assert doc["private_key"] not in result.output

    # Before registration the server refuses what the key signs, and says why.
    before = device("receive", *codes(item("H1")), "--from", "acme-cn", "--ship", live.ship_event)
    assert before.exit_code == 1
    assert "unknown_key" in before.output
    assert "warning: key" in before.stderr

    # The admin adds the device key to pearl-export (tracker party add does the same).
    party = live.ledger.party("pearl-export").public_json()
    keys = [{k: v for k, v in key.items() if k != "keyid"} for key in party["keys"]]
    now = format_time(datetime.now(timezone.utc).replace(microsecond=0))
    keys.append({"public_key": doc["public_key"], "not_before": "2026-01-01T00:00:00Z"})
    live.ledger.append(sign_statement(party_statement(
        admin="admin", time=now, location={"name": "Registry", "country": "ZZ"}, party_id="pearl-export",
        name=party["name"], country=party["country"], roles=party["roles"], keys=keys), fixed_key("admin")),
        now=datetime.now(timezone.utc))

    # No --key, no --party, no --ship: the enrolled key, the remembered party, the shipment looked up online.
    result = device("receive", *codes(item("H2")))
    assert result.exit_code == 0, result.output
    record = [r for r in queued(device) if r.status == "delivered"][-1]
    assert record.envelope_json()["signatures"][0]["keyid"] == doc["keyid"]
    st = statement_of(record)
    assert (st["actor"], st["from"], st["ship"]) == ("pearl-export", "acme-cn", live.ship_event)
    assert provenance(live, "H2")["path"][-1]["event_id"] == record.event_id


def test_online_records_link_prev_to_the_servers_heads(scanner: Scanner, live: LiveServer) -> None:
    result = scanner("receive", *codes(item("H4"), item("H5")))
    assert result.exit_code == 0, result.output
    assert "created" in result.stdout and "queued" not in result.stdout
    receive = queued(scanner)[-1]
    assert statement_of(receive)["prev"] == {item("H4"): live.ship_event, item("H5"): live.ship_event}

    # What is printed under the label, typed: the same item as the QR code.
    result = scanner("ship", "--to", "hh-warehouse", *codes(f"{RESOLVER}/01/{GTIN}/21/H4", f"GTIN {GTIN} SN H4"))
    assert result.exit_code == 0, result.output
    ship = queued(scanner)[-1]
    st = statement_of(ship)
    assert st["items"] == [item("H4")] and st["to"] == "hh-warehouse"
    assert st["prev"] == {item("H4"): receive.event_id}
    answer = provenance(live, "H4")
    assert [s["type"] for s in answer["path"]] == ["commission", "ship", "receive", "ship"]
    assert answer["verdict"] != "likely_counterfeit", answer["reasons"]


def test_offline_scans_queue_and_sync_delivers_each_exactly_once(scanner: Scanner, live: LiveServer) -> None:
    size0 = live.ledger.size()
    live.stop()
    trio = [item("H1"), item("H2"), item("H3")]
    steps = [
        # Offline the device cannot ask who it is or where: the first scan says so, later ones remember.
        ("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(*trio), *OFFLINE),
        ("aggregate", "--container", PALLET, *codes(*trio)),
        ("ship", "--to", "hh-warehouse", *codes(PALLET)),
    ]
    for args in steps:
        result = scanner(*args)
        assert result.exit_code == 0, result.output
        assert "queued (offline)" in result.stdout
    assert live.ledger.size() == size0  # nothing reached the ledger

    receive, pack, ship = records = queued(scanner)
    assert [r.type for r in records] == ["receive", "aggregate", "ship"]
    assert {statement_of(r)["location"]["name"] for r in records} == {"Pearl River Export"}
    assert all(r.status == "pending" for r in records)
    # Offline, prev links to what this device queued, and a receive to the shipment it answers: the ship for
    # the received items, the receive for the packed items, the packing for the pallet.
    assert statement_of(receive)["prev"] == {k: live.ship_event for k in trio}
    assert statement_of(pack)["prev"] == {k: receive.event_id for k in trio}
    assert statement_of(ship)["prev"] == {PALLET: pack.event_id}

    listing = scanner("queue")
    assert listing.exit_code == 0
    assert [line.split()[1] for line in listing.stdout.splitlines()[:3]] == ["pending"] * 3
    assert "3 pending" in listing.stdout

    live.start()
    result = scanner("sync")
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.stdout.splitlines()[:3]] == [
        ["#1", "created"], ["#2", "created"], ["#3", "created"]]
    assert live.ledger.size() == size0 + 3
    assert all(live.stored(r.event_id) for r in records)
    assert [r.status for r in queued(scanner)] == ["delivered"] * 3

    answer = provenance(live, "H1")
    ids = [s["event_id"] for s in answer["path"]]
    for r in records:
        assert ids.count(r.event_id) == 1
    assert ids[-3:] == [r.event_id for r in records]  # in scan order
    codes_found = {reason["code"] for reason in answer["reasons"]}
    assert not codes_found & {"fork", "custody_gap", "time_inconsistency"}, answer["reasons"]

    # Syncing again sends nothing.
    live.counter.requests.clear()
    again = scanner("sync")
    assert again.exit_code == 0
    assert "nothing to send" in again.stdout
    assert live.counter.posts() == []
    assert live.ledger.size() == size0 + 3


def test_a_record_stored_before_its_ack_was_lost_is_a_duplicate(scanner: Scanner, live: LiveServer) -> None:
    live.stop()
    assert scanner("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(item("H1")), *OFFLINE).exit_code == 0
    (record,) = queued(scanner)
    live.start()
    # The device sent it, the server stored it, the answer never arrived.
    first = requests.post(f"{live.url}/api/v1/events", json=record.envelope_json(), timeout=10)
    assert first.status_code == 201
    size = live.ledger.size()

    result = scanner("sync")
    assert result.exit_code == 0, result.output
    assert f"#1 duplicate receive {record.event_id} leaf {first.json()['leaf_index']}" in result.stdout
    assert live.ledger.size() == size
    (record,) = queued(scanner)
    assert (record.status, record.result) == ("delivered", "duplicate")


def test_offline_a_unit_whose_latest_event_is_unknown_is_not_signed(scanner: Scanner, live: LiveServer) -> None:
    """The ledger refuses a statement that leaves a touched unit out of prev (SPEC §7): offline, the device says
    so at once instead of queueing a record the server can only reject."""
    live.stop()
    result = scanner("ship", "--to", "hh-warehouse", *codes(item("NEVERMADE")), *OFFLINE)
    assert result.exit_code == 1
    assert "latest event" in result.stderr and "unknown_head" in result.stderr
    assert queued(scanner) == []


def test_a_rejected_record_is_reported_with_its_code_kept_and_not_resent(scanner: Scanner, live: LiveServer) -> None:
    live.stop()
    no_such_ship = "sha256:" + "0" * 64
    assert scanner("receive", "--from", "acme-cn", "--ship", no_such_ship, *codes(item("H2")), *OFFLINE).exit_code == 0
    assert scanner("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(item("H3")),
                   *OFFLINE).exit_code == 0
    live.start()

    result = scanner("sync")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#1 rejected  receive") and "unknown_event" in lines[0] and no_such_ship in lines[0]
    assert lines[1].startswith("#2 created   receive")
    assert "rejected 1" in result.stdout
    assert "1 record(s) rejected by the server" in result.stderr

    rejected, delivered = queued(scanner)
    assert (rejected.status, rejected.error_code, rejected.attempts) == ("rejected", "unknown_event", 1)
    assert delivered.status == "delivered" and live.stored(delivered.event_id)
    assert not live.stored(rejected.event_id)
    listing = scanner("queue")
    assert "rejected" in listing.stdout and "error unknown_event" in listing.stdout

    live.counter.requests.clear()
    again = scanner("sync")
    assert again.exit_code == 0 and "nothing to send" in again.stdout
    assert live.counter.posts() == []  # rejected records are not retried forever
    assert queued(scanner)[0].attempts == 1


def test_a_busy_server_is_retried_with_backoff(scanner: Scanner, live: LiveServer) -> None:
    live.stop()
    assert scanner("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(item("H5")), *OFFLINE).exit_code == 0
    live.start()
    live.counter.fail_next_posts = 2  # two 503s, then the real answer
    result = scanner("sync", "--retries", "3", "--backoff", "0.01")
    assert result.exit_code == 0, result.output
    assert "#1 created" in result.stdout
    (record,) = queued(scanner)
    assert record.attempts == 3 and record.status == "delivered"
    assert len(live.counter.posts()) == 3


def test_sync_with_the_server_down_keeps_everything_in_order(scanner: Scanner, live: LiveServer) -> None:
    live.stop()
    for serial in ("H1", "H2"):
        assert scanner("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(item(serial)),
                       *OFFLINE).exit_code == 0
    result = scanner("sync", "--retries", "2", "--backoff", "0.01")
    assert result.exit_code == 3
    assert "server_unreachable" in result.stderr and "2 record(s) still queued" in result.stderr
    first, second = queued(scanner)
    # Bounded: 1 try + 2 retries on the first record; the second is not sent ahead of it.
    assert (first.status, first.attempts, first.error_code) == ("pending", 3, "server_unreachable")
    assert (second.status, second.attempts) == ("pending", 0)


def test_scanning_label_photos_records_every_code(tmp_path: Path, scanner: Scanner, live: LiveServer) -> None:
    photo = Image.new("L", (1400, 700), 170)
    for i, serial in enumerate(("H4", "H5")):
        label = render_png(parse_key(item(serial)), resolver=RESOLVER, box=5).rotate(90 * i, expand=True)
        photo.paste(label, (60 + 700 * i, 80))
    path = tmp_path / "two-labels.jpg"
    photo.save(path, quality=60)
    result = scanner("receive", "--image", str(path))
    assert result.exit_code == 0, result.output
    st = statement_of(queued(scanner)[-1])
    assert sorted(st["items"]) == [item("H4"), item("H5")]


def test_a_bad_code_signs_nothing(tmp_path: Path, scanner: Scanner, live: LiveServer) -> None:
    size = live.ledger.size()
    result = scanner("ship", "--to", "hh-warehouse", *codes(item("H1"), "(01)09506000134353(21)H2"))
    assert result.exit_code == 1
    assert "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2" in result.stderr
    assert "nothing was signed" in result.stderr
    assert "Traceback" not in result.output
    assert queued(scanner) == [] and live.ledger.size() == size
    # A bracketed serial holding brackets was read as "H1" (the text before the first bracket): a handoff
    # signed for the wrong item. It is refused as ambiguous instead.
    result = scanner("ship", "--to", "hh-warehouse", *codes(f"(01){GTIN}(21)H1(C)D"))
    assert result.exit_code == 1 and "holds a bracket" in result.stderr
    assert queued(scanner) == [] and live.ledger.size() == size


def test_customs_hold_from_a_second_device_and_a_large_receive(tmp_path: Path, scanner: Scanner,
                                                                 live: LiveServer) -> None:
    many = [item(f"H{i}") for i in range(1, 13)]
    result = scanner("receive", *codes(*many))
    assert result.exit_code == 0, result.output
    assert "fetching heads" in result.stderr  # a dozen keys and more: progress is shown
    assert statement_of(queued(scanner)[-1])["items"] == many

    customs_key = write_key_file(tmp_path / "customs.key", party_key("de-customs"))
    customs = Scanner(home=tmp_path / "customs-home", server=live.url, key=customs_key)
    result = customs("inspect", "--decision", "held", "--note", "invoice missing", *codes(item("H7")))
    assert result.exit_code == 0, result.output
    st = statement_of(queued(customs)[-1])
    assert (st["actor"], st["decision"]) == ("de-customs", "held")
    # the note is private: only its salted commitment is signed; the note went to the server's private store
    assert "note" not in st and st["note_commitment"].startswith("sha256:")
    assert "invoice missing" not in json.dumps(queued(customs)[-1].envelope if hasattr(queued(customs)[-1], "envelope")
                                               else st)
    assert "note delivered privately" in result.output
    from web.db import web_db
    stored = web_db(live.ledger.store).note(queued(customs)[-1].event_id)
    assert stored is not None and stored.note == "invoice missing"
    assert st["location"] == {"name": "German Customs Hamburg", "country": "DE"}  # the party's, fetched online
    assert st["prev"] == {item("H7"): queued(scanner)[-1].event_id}
    answer = provenance(live, "H7")
    assert "held_by_customs" in {r["code"] for r in answer["reasons"]}


def test_batch_sync_uses_the_batch_endpoint(scanner: Scanner, live: LiveServer) -> None:
    live.stop()
    for serial in ("H8", "H9", "H10"):
        assert scanner("receive", "--from", "acme-cn", "--ship", live.ship_event, *codes(item(serial)),
                       *OFFLINE).exit_code == 0
    live.start()
    result = scanner("sync", "--batch", "50")
    assert result.exit_code == 0, result.output
    assert result.stdout.count(" stored ") == 3 and "3 stored" in result.stdout
    assert live.counter.posts() == ["/api/v1/events/batch"]
    assert all(live.stored(r.event_id) for r in queued(scanner))
