"""What each role sees on its own pages: staff know what is coming and what they hold, and are warned before
handing on a unit that is sold, flagged or an emptied pallet; customs decide only what makes sense, one table per
state, with a consignment view; the admin approves a device on a page that names it, and the first admin browser
is approved from the browser with the admin key file, or with the command the page prints, run as printed."""
from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import fixed_key
from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import csrf, device_key, json_post, logged_in, signed
from tracker import customs, handoffs
from web import accounts

TRN = "01/09506000134352/21/TRNW"  # in transit from pearl-export to hh-warehouse
GEN = "01/09506000134352/21/GENW"  # genuine, on the shelf at berlin-shop
HLD = "01/09506000134352/21/HLDW"  # held by DE customs on its way to hh-warehouse


# --- staff ---------------------------------------------------------------------------------------------------

def test_staff_home_lists_what_is_on_its_way_and_what_is_held(client, staff_ledger):
    logged_in(client, "hh-staff")
    html = client.get("/staff/").get_data(as_text=True)
    inbound = html.split('id="inbound"', 1)[1].split("</section>", 1)[0]
    assert TRN in inbound and "From Pearl River Export" in inbound and "Aurora wireless earbuds" in inbound
    assert 'class="receive-one"' in inbound and 'id="receive-selected"' in inbound
    ov = handoffs.overview(staff_ledger, "hh-warehouse")
    assert TRN in {u.key for s in ov.inbound for u in s.units}
    berlin = handoffs.overview(staff_ledger, "berlin-shop")
    assert GEN in {h.unit.key for h in berlin.held} and not berlin.inbound
    assert berlin.recent and berlin.recent[0].units[0].name == "Aurora wireless earbuds"


def test_received_shipments_leave_the_inbound_list_and_join_custody(client, staff_ledger):
    logged_in(client, "hh-staff")
    info = client.get("/staff/resolve", query_string={"code": TRN}).get_json()
    receive = signed("receive", "hh-warehouse", device_key("hh-staff"), items=[TRN], from_="pearl-export",
                     ship=info["incoming"]["ship"], prev={TRN: info["head"]})
    assert "event_id" in json_post(client, "/staff/events", {"envelopes": [receive.to_json()]},
                                   page="/staff/").get_json()["results"][0]
    ov = handoffs.overview(staff_ledger, "hh-warehouse")
    assert TRN not in {u.key for s in ov.inbound for u in s.units}
    assert TRN in {h.unit.key for h in ov.held}
    assert ov.recent[0].type == "receive" and ov.recent[0].other_name == "Pearl River Export"


def test_a_sold_unit_comes_with_a_warning_and_the_honest_one_without(client, staff_ledger):
    logged_in(client, "berlin-staff")
    head = client.get("/staff/resolve", query_string={"code": GEN}).get_json()
    assert head["warnings"] == [] and head["holder"] == "berlin-shop"
    sell = signed("sell", "berlin-shop", device_key("berlin-staff"), items=[GEN], prev={GEN: head["head"]})
    assert "event_id" in json_post(client, "/staff/events", {"envelopes": [sell.to_json()]},
                                   page="/staff/").get_json()["results"][0]
    after = client.get("/staff/resolve", query_string={"code": GEN}).get_json()
    assert [w["code"] for w in after["warnings"]] == ["sold"]
    assert "A sold item should not be handed on." in after["warnings"][0]["message"]


def test_a_flagged_unit_says_why(client):
    logged_in(client, "hh-staff")
    info = client.get("/staff/resolve", query_string={"code": HLD}).get_json()
    flagged = [w for w in info["warnings"] if w["code"] == "flagged"]
    assert flagged and "suspicious" in flagged[0]["message"] and "pending inspection" in flagged[0]["message"]


def test_codes_typed_as_printed_resolve_and_errors_are_plain_words(client):
    logged_in(client, "hh-staff")
    assert client.get("/staff/resolve", query_string={"code": "09506000134352 TRNW"}).get_json()["key"] == TRN
    bad = client.get("/staff/resolve", query_string={"code": "0950600013435 TRNW"},
                     headers={"Accept": "application/json"})
    assert bad.status_code == 400
    message = bad.get_json()["error"]["message"]
    assert "check digit" in message and "should be" in message and "Traceback" not in message


# --- customs -------------------------------------------------------------------------------------------------

def test_a_shipment_view_groups_the_units_of_one_shipment(client, staff_ledger):
    logged_in(client, "customs-de")
    dash = customs.dashboard(staff_ledger, "DE")
    ship = next(a.consignment.ship_event for a in dash.assessments if a.key == TRN)
    html = client.get(f"/customs/shipment/{ship}").get_data(as_text=True)
    assert TRN in html and "Shipment from Pearl River Export" in html and 'data-decision="seized"' in html
    missing = client.get("/customs/shipment/sha256:" + "0" * 64)
    assert missing.status_code == 404


def test_a_seizure_keeps_its_reason_private_and_offers_nothing_after(client, staff_ledger):
    from tracker.notes import commit_note

    logged_in(client, "customs-de")
    info = client.get("/staff/resolve", query_string={"code": TRN}).get_json()
    commitment, salt = commit_note("Serial printed over another label")
    envelope = signed("inspect", "de-customs", device_key("customs-de"), items=[TRN], decision="seized",
                      prev={TRN: info["head"]}, note_commitment=commitment)
    response = json_post(client, "/customs/inspect", {"envelope": envelope.to_json(),
                                                      "note": "Serial printed over another label", "salt": salt},
                         page="/customs/")
    assert response.status_code == 201, response.get_json()
    assert "Serial printed over another label" not in client.get("/01/09506000134352/21/TRNW").get_data(as_text=True)
    html = client.get("/customs/").get_data(as_text=True)
    row = html.split('id="seized"', 1)[1].split("</table>", 1)[0]
    assert TRN in row and "data-decision" not in row.split(TRN, 1)[1].split("</tr>", 1)[0]
    item = client.get(f"/customs/item/{TRN}").get_data(as_text=True)
    visible = re.sub(r"<[^>]+>", " ", item.split('id="path"', 1)[1])
    assert "Serial printed over another label" in item and "sha256:" not in visible


# --- admin ---------------------------------------------------------------------------------------------------

def test_the_approval_page_names_device_user_party_and_fingerprint(client, staff_app):
    other = staff_app.test_client()
    logged_in(other, "hh-new")
    key = fixed_key("browser:hh-new-ux")
    device = json_post(other, "/account/devices", {"public_key": key.public_key_b64, "label": "Dock 7 phone"}).get_json()
    logged_in(client, "admin")
    index = client.get("/admin/").get_data(as_text=True)
    assert f'href="/admin/devices/{device["id"]}"' in index and "confirm(" not in index
    page = client.get(f"/admin/devices/{device['id']}").get_data(as_text=True)
    assert "Dock 7 phone" in page and "hh-new" in page and "Hamburg Logistics" in page
    fingerprint = " ".join(key.keyid.upper()[i:i + 4] for i in range(0, 16, 4))
    assert fingerprint in page and key.keyid in page and 'id="approve"' in page


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    from tracker.config import load_config
    from tracker.home import init

    home = tmp_path / "home"
    monkeypatch.setenv("WAYBILL_HOME", str(home))
    monkeypatch.delenv("WAYBILL_DATABASE_URL", raising=False)
    init(load_config(), now=datetime.now(timezone.utc))
    return home


def _first_admin(home: Path):
    from tracker.config import load_config
    from web import create_app

    app = create_app({"WAYBILL_CONFIG": load_config(), "TESTING": True, "SECRET_KEY": "s", "RATELIMIT_ENABLED": False})
    led = app.extensions["waybill"]
    accounts.create_user(led, username="root", password="root password 1", party_id="admin", role="admin",
                         now=datetime.now(timezone.utc))
    browser = fixed_key("browser:root-ux")
    web = app.test_client()
    token = csrf(web, "/login")
    web.post("/login", data={"username": "root", "password": "root password 1", "csrf_token": token})
    device = json_post(web, "/account/devices", {"public_key": browser.public_key_b64, "label": "laptop"}).get_json()
    return app, web, led, browser, device


def test_the_first_admin_browser_is_approved_with_the_admin_key_file(fresh_home):
    app, web, led, browser, device = _first_admin(fresh_home)
    page = web.get(f"/admin/devices/{device['id']}").get_data(as_text=True)
    assert 'id="bootstrap-form"' in page
    token = csrf(web, f"/admin/devices/{device['id']}")
    wrong = web.post(f"/admin/devices/{device['id']}/bootstrap",
                     data={"csrf_token": token, "admin_key": (io.BytesIO(b"not a key"), "admin.key")},
                     content_type="multipart/form-data")
    assert wrong.status_code == 400 and browser.keyid not in [k.keyid for k in led.party("admin").keys]
    key_file = (fresh_home / "keys" / "admin.key").read_bytes()
    done = web.post(f"/admin/devices/{device['id']}/bootstrap",
                    data={"csrf_token": token, "admin_key": (io.BytesIO(key_file), "admin.key")},
                    content_type="multipart/form-data")
    assert done.status_code == 303
    assert browser.keyid in [k.keyid for k in led.party("admin").keys]
    assert accounts.get_device(led, device["id"]).status == "approved"
    led.store.close()


def test_a_key_file_that_is_not_the_admins_approves_nothing(fresh_home, tmp_path):
    from tracker.keys import write_key_file

    app, web, led, browser, device = _first_admin(fresh_home)
    impostor = tmp_path / "other.key"
    write_key_file(impostor, fixed_key("not the admin"))
    token = csrf(web, f"/admin/devices/{device['id']}")
    refused = web.post(f"/admin/devices/{device['id']}/bootstrap",
                       data={"csrf_token": token, "admin_key": (io.BytesIO(impostor.read_bytes()), "admin.key")},
                       content_type="multipart/form-data")
    assert 400 <= refused.status_code < 500
    assert browser.keyid not in [k.keyid for k in led.party("admin").keys]
    led.store.close()


def test_the_printed_approve_command_works_as_printed(fresh_home):
    app, web, led, browser, device = _first_admin(fresh_home)
    html = web.get("/admin/").get_data(as_text=True)
    printed = re.search(r'<code class="mono">([^<]+)</code>', html).group(1)
    assert "WAYBILL_HOME/keys" not in printed and str(fresh_home) in printed
    tracker = shutil.which("tracker", path=str(Path(sys.executable).parent)) or "tracker"
    words = shlex.split(printed.replace("&#34;", '"'))
    env = dict(os.environ)
    while words and "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "tracker"
    run = subprocess.run([tracker, *words[1:]], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert browser.keyid in [k.keyid for k in led.party("admin").keys]
    led.store.close()
