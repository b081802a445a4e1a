"""Recording handoffs: what a scanned code resolves to, and signed envelopes accepted only from the user's own
party, role and approved device."""
from __future__ import annotations

import pytest

from tests.conftest import fixed_key
from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import device_key, json_post, logged_in, now, signed
from tracker import provenance
from web import accounts
from tracker.scenarios import party_key

TRN = "01/09506000134352/21/TRNW"  # in-transit scenario: pearl-export shipped it to hh-warehouse
GEN = "01/09506000134352/21/GENW"  # genuine-cross-border: on the shelf at berlin-shop


def resolve(client, code: str):
    return client.get("/staff/resolve", query_string={"code": code}, headers={"Accept": "application/json"})


def submit(client, envelopes):
    return json_post(client, "/staff/events", {"envelopes": [e.to_json() for e in envelopes]}, page="/staff/")


def test_record_page_lists_modes_camera_and_parties(client):
    logged_in(client, "hh-staff")
    html = client.get("/staff/").get_data(as_text=True)
    assert 'value="ship"' in html and 'value="receive"' in html and 'value="aggregate"' in html
    assert 'id="camera"' in html and "vendor/zxing/zxing.min.js" in html and "waybill-staff.js" in html
    assert 'data-party="hh-warehouse"' in html and f'data-approved="{device_key("hh-staff").keyid}"' in html
    assert '<option value="berlin-shop">' in html and '<option value="hh-warehouse">' not in html
    assert '<option value="admin">' not in html


def test_resolve_shows_holder_head_and_the_shipment_waiting_for_you(client, staff_ledger):
    logged_in(client, "hh-staff")
    info = resolve(client, "(01)09506000134352(21)TRNW").get_json()
    assert info["key"] == TRN and info["known"] and info["kind"] == "item"
    assert info["holder"] == "pearl-export" and info["holder_name"] == "Pearl River Export"
    assert info["head"] == provenance.head(staff_ledger, TRN)
    assert info["incoming"]["from"] == "pearl-export" and info["incoming"]["shipped_unit"] == TRN
    assert info["incoming"]["ship"] == info["head"]
    assert resolve(client, "https://waybill.example/01/09506000134352/21/GENW").get_json()["incoming"] is None


def test_resolve_unknown_and_malformed_codes(client):
    logged_in(client, "hh-staff")
    unknown = resolve(client, "01/09506000134352/21/NEVERMADE")
    assert unknown.status_code == 200 and unknown.get_json()["known"] is False and unknown.get_json()["head"] is None
    bad = resolve(client, "(01)09506000134353(21)X")  # wrong check digit
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_identifier"


def test_receive_then_ship_signed_by_the_device(client, staff_ledger):
    logged_in(client, "hh-staff")
    info = resolve(client, TRN).get_json()
    receive = signed("receive", "hh-warehouse", device_key("hh-staff"), items=[TRN], from_="pearl-export",
                     ship=info["incoming"]["ship"], prev={TRN: info["head"]})
    response = submit(client, [receive])
    assert response.status_code == 200, response.get_json()
    (result,) = response.get_json()["results"]
    assert result["event_id"] == receive.event_id and result["created"]
    assert provenance.lookup(staff_ledger, TRN).holder == "hh-warehouse"
    head = resolve(client, TRN).get_json()["head"]
    ship = signed("ship", "hh-warehouse", device_key("hh-staff"), items=[TRN], to="berlin-shop", prev={TRN: head})
    assert "event_id" in submit(client, [ship]).get_json()["results"][0]
    answer = provenance.lookup(staff_ledger, TRN)
    assert [row["type"] for row in answer.path][-2:] == ["receive", "ship"]
    # The same envelope again is a duplicate, not a second event.
    again = submit(client, [ship]).get_json()["results"][0]
    assert again["event_id"] == ship.event_id and again["created"] is False


def test_refused_statements_come_back_per_envelope(client):
    logged_in(client, "hh-staff")
    info = resolve(client, TRN).get_json()
    wrong_sender = signed("receive", "hh-warehouse", device_key("hh-staff"), items=[TRN], from_="acme-cn",
                          ship=info["incoming"]["ship"], prev={TRN: info["head"]})
    unknown = signed("ship", "hh-warehouse", device_key("hh-staff"), items=["01/09506000134352/21/NOPE1"],
                     to="berlin-shop", prev={})
    results = submit(client, [wrong_sender, unknown]).get_json()["results"]
    assert results[0]["error"]["code"] == "receive_mismatch"
    assert results[1]["error"]["code"] == "unknown_item"


def test_acting_for_another_party_is_403(client):
    logged_in(client, "hh-staff")
    forged = signed("ship", "pearl-export", device_key("hh-staff"), items=[TRN], to="hh-warehouse", prev={})
    response = submit(client, [forged])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "wrong_party"


def test_a_key_that_is_not_this_users_device_is_403(client):
    logged_in(client, "hh-staff")
    # A genuine key of the party (the scenario's handheld), but not a device enrolled by this user.
    other = signed("ship", "hh-warehouse", party_key("hh-warehouse"), items=[GEN], to="berlin-shop", prev={})
    response = submit(client, [other])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_your_device"


def test_a_user_without_an_approved_device_cannot_post(client, staff_ledger):
    logged_in(client, "hh-new")
    envelope = signed("ship", "hh-warehouse", device_key("hh-new"), items=[GEN], to="berlin-shop", prev={})
    response = submit(client, [envelope])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "no_device"
    user = next(u for u in accounts.list_users(staff_ledger) if u.username == "hh-new")
    accounts.request_device(staff_ledger, user, public_key=device_key("hh-new").public_key_b64, label="x",
                            now=now())
    pending = submit(client, [envelope])  # enrolled, but not approved yet
    assert pending.status_code == 403 and pending.get_json()["error"]["code"] == "no_device"


def test_staff_cannot_record_customs_decisions(client):
    logged_in(client, "hh-staff")
    inspect = signed("inspect", "hh-warehouse", device_key("hh-staff"), items=[TRN], decision="released", prev={})
    response = submit(client, [inspect])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "wrong_role"


def test_customs_cannot_post_handoffs(client):
    logged_in(client, "customs-de")
    envelope = signed("receive", "de-customs", device_key("customs-de"), items=[TRN], from_="pearl-export",
                      ship="sha256:" + "0" * 64, prev={})
    response = json_post(client, "/staff/events", {"envelopes": [envelope.to_json()]}, page="/customs/")
    assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, {"envelopes": []}, {"envelopes": "x"}, [1, 2]])
def test_malformed_batches_are_400(client, body):
    logged_in(client, "hh-staff")
    response = json_post(client, "/staff/events", body, page="/staff/")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_batch"


def test_garbage_envelopes_are_400_not_500(client):
    logged_in(client, "hh-staff")
    response = json_post(client, "/staff/events", {"envelopes": [{"payloadType": "x"}]}, page="/staff/")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_statement"


# --- enrolling this browser's key --------------------------------------------------------------------------

def test_enrolling_a_browser_key(client, staff_ledger):
    logged_in(client, "hh-new")
    key = fixed_key("browser:hh-new")
    response = json_post(client, "/account/devices", {"public_key": key.public_key_b64, "label": "Dock 3 phone"})
    assert response.status_code == 201
    doc = response.get_json()
    assert doc["keyid"] == key.keyid and doc["status"] == "pending" and doc["party"] == "hh-warehouse"
    again = json_post(client, "/account/devices", {"public_key": key.public_key_b64, "label": "again"})
    assert again.status_code == 201 and again.get_json()["id"] == doc["id"]  # idempotent
    listed = client.get("/account/devices", headers={"Accept": "application/json"}).get_json()["devices"]
    assert [d["keyid"] for d in listed] == [key.keyid]
    page = client.get("/account").get_data(as_text=True)
    assert key.keyid in page and 'data-status="pending"' in page and "waybill-enroll.js" in page


def test_enrolling_someone_elses_or_a_registered_key_is_refused(client):
    logged_in(client, "hh-new")
    taken = json_post(client, "/account/devices", {"public_key": device_key("hh-staff").public_key_b64})
    assert taken.status_code == 422 and taken.get_json()["error"]["code"] == "key_in_use"
    registered = json_post(client, "/account/devices", {"public_key": party_key("acme-cn").public_key_b64})
    assert registered.status_code == 422 and registered.get_json()["error"]["code"] == "key_in_use"
    bad = json_post(client, "/account/devices", {"public_key": "bm90IGEga2V5"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_public_key"
