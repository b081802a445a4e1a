"""Admin pages: approving a browser's key (an admin-signed `party` statement), revoking keys, users, and the
`tracker user` command line."""
from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner

from tests.conftest import fixed_key
from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import csrf, device_key, json_post, logged_in, login, now, signed
from web import accounts
from tracker.dsse import sign_envelope
from tracker.statements import statement_bytes

NEW_KEY = fixed_key("browser:hh-new")


def enroll(client, key=NEW_KEY) -> dict:
    logged_in(client, "hh-new")
    response = json_post(client, "/account/devices", {"public_key": key.public_key_b64, "label": "Dock 3 phone"})
    assert response.status_code == 201
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    return response.get_json()


def proposal(client, url: str) -> dict:
    response = client.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sign_payload(doc: dict, key) -> dict:
    """What the admin's browser does: sign exactly the proposed bytes."""
    return sign_envelope(base64.b64decode(doc["payload"]), [key]).to_json()


def test_admin_page_lists_parties_keys_users_and_requests(client, staff_app):
    device = enroll(staff_app.test_client())
    logged_in(client, "admin")
    html = client.get("/admin/").get_data(as_text=True)
    assert f'data-device="{device["id"]}"' in html and 'data-status="pending"' in html
    assert 'data-party="acme-cn"' in html and device_key("hh-staff").keyid in html
    assert 'data-user="customs-de"' in html and 'id="new-user"' in html
    assert "waybill-admin.js" in html and f'data-approved="{device_key("admin").keyid}"' in html


def test_admin_approves_a_device_and_the_key_appears_in_the_registry(client, staff_app, staff_ledger):
    device = enroll(staff_app.test_client())
    logged_in(client, "admin")
    doc = proposal(client, f"/admin/devices/{device['id']}/statement")
    statement = doc["statement"]
    assert base64.b64decode(doc["payload"]) == statement_bytes(statement)
    assert statement["type"] == "party" and statement["actor"] == "admin" and statement["party"]["id"] == "hh-warehouse"
    response = json_post(client, f"/admin/devices/{device['id']}/approve",
                         {"envelope": sign_payload(doc, device_key("admin"))}, page="/admin/")
    assert response.status_code == 201, response.get_json()
    registry = client.get("/api/v1/parties/hh-warehouse").get_json()
    assert NEW_KEY.keyid in [k["keyid"] for k in registry["keys"]]
    assert accounts.get_device(staff_ledger, device["id"]).status == "approved"
    # The new device now signs for its party.
    user = staff_app.test_client()
    logged_in(user, "hh-new")
    head = client.get("/api/v1/items/09506000134352/GENW/head").get_json()["event_id"]
    envelope = signed("aggregate", "hh-warehouse", NEW_KEY, container="00/009506000134352008",
                      items=["01/09506000134352/21/GENW"], prev={"01/09506000134352/21/GENW": head})
    result = json_post(user, "/staff/events", {"envelopes": [envelope.to_json()]}, page="/staff/")
    assert result.status_code == 200 and "event_id" in result.get_json()["results"][0], result.get_json()


def test_an_approval_that_changes_anything_else_is_refused(client, staff_app):
    device = enroll(staff_app.test_client())
    logged_in(client, "admin")
    doc = proposal(client, f"/admin/devices/{device['id']}/statement")
    statement = doc["statement"]
    statement["party"]["roles"] = ["warehouse", "customs"]
    tampered = {"payload": base64.b64encode(statement_bytes(statement)).decode()}
    response = json_post(client, f"/admin/devices/{device['id']}/approve",
                         {"envelope": sign_payload(tampered, device_key("admin"))}, page="/admin/")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "unexpected_statement"
    other = proposal(client, f"/admin/devices/{device['id']}/statement")["statement"]
    other["party"]["keys"].append({"public_key": fixed_key("extra").public_key_b64,
                                   "not_before": other["party"]["keys"][0]["not_before"]})
    extra = {"payload": base64.b64encode(statement_bytes(other)).decode()}
    response = json_post(client, f"/admin/devices/{device['id']}/approve",
                         {"envelope": sign_payload(extra, device_key("admin"))}, page="/admin/")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "unexpected_statement"


def test_approval_must_be_signed_by_the_admins_own_device(client, staff_app):
    device = enroll(staff_app.test_client())
    logged_in(client, "admin")
    doc = proposal(client, f"/admin/devices/{device['id']}/statement")
    # The genesis admin key is a key of party admin, but not this admin user's browser.
    response = json_post(client, f"/admin/devices/{device['id']}/approve",
                         {"envelope": sign_payload(doc, fixed_key("admin"))}, page="/admin/")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_your_device"


def test_only_admins_reach_the_admin_actions(client, staff_app):
    device = enroll(staff_app.test_client())
    logged_in(client, "hh-staff")
    assert client.get(f"/admin/devices/{device['id']}/statement", headers={"Accept": "application/json"}).status_code == 403
    response = json_post(client, f"/admin/devices/{device['id']}/approve", {"envelope": {}}, page="/staff/")
    assert response.status_code == 403


def test_rejecting_a_device(client, staff_app, staff_ledger):
    device = enroll(staff_app.test_client())
    logged_in(client, "admin")
    response = client.post(f"/admin/devices/{device['id']}/reject", data={"csrf_token": csrf(client, "/admin/")})
    assert response.status_code == 303
    assert accounts.get_device(staff_ledger, device["id"]).status == "rejected"
    again = client.get(f"/admin/devices/{device['id']}/statement", headers={"Accept": "application/json"})
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "not_pending"


def test_revoking_a_device_key(client, staff_app, staff_ledger):
    keyid = device_key("hh-staff").keyid
    logged_in(client, "admin")
    doc = proposal(client, f"/admin/parties/hh-warehouse/keys/{keyid}/statement")
    revoked = [k for k in doc["statement"]["party"]["keys"] if k.get("revoked_at")]
    assert len(revoked) == 1
    response = json_post(client, f"/admin/parties/hh-warehouse/keys/{keyid}/revoke",
                         {"envelope": sign_payload(doc, device_key("admin"))}, page="/admin/")
    assert response.status_code == 201, response.get_json()
    key = next(k for k in client.get("/api/v1/parties/hh-warehouse").get_json()["keys"] if k["keyid"] == keyid)
    assert key["revoked_at"]
    device = next(d for d in accounts.list_devices(staff_ledger) if d.keyid == keyid)
    assert device.status == "revoked"
    # The revoked browser can no longer record anything.
    staff = staff_app.test_client()
    logged_in(staff, "hh-staff")
    envelope = signed("ship", "hh-warehouse", device_key("hh-staff"), items=["01/09506000134352/21/GENW"],
                      to="berlin-shop", prev={})
    result = json_post(staff, "/staff/events", {"envelopes": [envelope.to_json()]}, page="/staff/")
    assert result.status_code == 403 and result.get_json()["error"]["code"] == "no_device"
    html = client.get("/admin/").get_data(as_text=True)
    assert f'data-keyid="{keyid}" data-revoked="yes"' in html


def test_a_revocation_must_revoke_exactly_that_key(client):
    keyid = device_key("hh-staff").keyid
    logged_in(client, "admin")
    doc = proposal(client, f"/admin/parties/hh-warehouse/keys/{keyid}/statement")
    statement = doc["statement"]
    for k in statement["party"]["keys"]:
        k["revoked_at"] = statement["time"]  # every key, not just the one asked for
    response = json_post(client, f"/admin/parties/hh-warehouse/keys/{keyid}/revoke",
                         {"envelope": sign_payload({"payload": base64.b64encode(statement_bytes(statement)).decode()},
                                                   device_key("admin"))}, page="/admin/")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "unexpected_statement"


def test_creating_and_disabling_users(client, staff_app, staff_ledger):
    logged_in(client, "admin")
    token = csrf(client, "/admin/")
    response = client.post("/admin/users", data={"csrf_token": token, "username": "rhein-driver",
                                                 "password": "long enough pw", "party": "berlin-shop", "role": "staff"})
    assert response.status_code == 303
    assert login(staff_app.test_client(), "rhein-driver", "long enough pw").status_code == 303
    bad = client.post("/admin/users", data={"csrf_token": token, "username": "x-customs",
                                            "password": "long enough pw", "party": "berlin-shop", "role": "customs"})
    assert bad.status_code == 400 and "customs officer must belong" in bad.get_data(as_text=True)
    no_csrf = client.post("/admin/users", data={"username": "y", "password": "long enough pw",
                                                "party": "berlin-shop", "role": "staff"})
    assert no_csrf.status_code == 400
    user = next(u for u in accounts.list_users(staff_ledger) if u.username == "rhein-driver")
    client.post(f"/admin/users/{user.id}/disable", data={"csrf_token": token})
    assert login(staff_app.test_client(), "rhein-driver", "long enough pw").status_code == 401
    client.post(f"/admin/users/{user.id}/enable", data={"csrf_token": token})
    assert login(staff_app.test_client(), "rhein-driver", "long enough pw").status_code == 303


# --- `tracker user ...` ----------------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    from datetime import datetime, timezone

    from tracker.config import load_config
    from tracker.home import init

    home = tmp_path / "home"
    monkeypatch.setenv("WAYBILL_HOME", str(home))
    monkeypatch.delenv("WAYBILL_DATABASE_URL", raising=False)
    init(load_config(), now=datetime.now(timezone.utc))
    return home


def test_cli_creates_users_and_bootstraps_the_first_admin_device(home, tmp_path):
    from tracker.config import load_config
    from tracker.home import open_ledger
    from web import cli

    secret = tmp_path / "pw"
    secret.write_text("a long admin password\n")
    runner = CliRunner()
    created = runner.invoke(cli.user, ["create", "root", "--party", "admin", "--role", "admin", "--password-file", str(secret)])
    assert created.exit_code == 0, created.output
    refused = runner.invoke(cli.user, ["create", "xx", "--party", "nobody", "--role", "staff", "--password-file", str(secret)])
    assert refused.exit_code == 1 and "no registered party" in refused.output
    prompted = runner.invoke(cli.user, ["create", "root2", "--party", "admin", "--role", "admin"],
                             input="another password\nanother password\n")
    assert prompted.exit_code == 0, prompted.output
    ledger = open_ledger(load_config())
    root = next(u for u in accounts.list_users(ledger) if u.username == "root")
    browser = fixed_key("browser:root")
    accounts.request_device(ledger, root, public_key=browser.public_key_b64, label="laptop", now=now())
    approved = runner.invoke(cli.user, ["approve", browser.keyid, "--admin-key", str(home / "keys" / "admin.key")])
    assert approved.exit_code == 0, approved.output
    assert browser.keyid in [k.keyid for k in ledger.party("admin").keys]
    listed = runner.invoke(cli.user, ["list"])
    assert "root\tadmin\tadmin" in listed.output and f"device {browser.keyid}\tapproved" in listed.output
    assert runner.invoke(cli.user, ["approve", browser.keyid, "--admin-key", str(home / "keys" / "admin.key")]).exit_code == 1
    assert runner.invoke(cli.user, ["disable", "root2"]).exit_code == 0
    assert next(u for u in accounts.list_users(ledger) if u.username == "root2").disabled
    assert runner.invoke(cli.user, ["passwd", "root", "--password-file", str(secret)]).exit_code == 0
    ledger.store.close()


def test_demo_users_are_created_once(staff_ledger):
    created = accounts.ensure_demo_users(staff_ledger, now=now())
    names = {c[0] for c in created}
    assert {"customs-de", "hh-staff"} & names == set()  # already exist in this ledger
    assert "berlin-staff" not in names
    again = accounts.ensure_demo_users(staff_ledger, now=now())
    assert again == []
    users = {u.username: u for u in accounts.list_users(staff_ledger)}
    for username, _, party, role in accounts.DEMO_USERS:
        if party in {p.id for p in staff_ledger.parties()}:
            assert users[username].party_id == party and users[username].role == role


def test_admin_page_shows_a_witness_alarm(client, staff_ledger):
    from tracker.cosigning import _put_status
    from tracker.policy import parse_policy
    from tests.c2sp import ref
    from tests.conftest import fixed_key

    html = (logged_in(client, "admin") and client.get("/admin/").get_data(as_text=True))
    assert "No witnesses configured" in html and "Witness alarm" not in html
    policy = parse_policy(f"witness w9 {ref.vkey('w9.test/w', 4, fixed_key('w9').public_key)} http://127.0.0.1:9\n"
                          "quorum w9\n")
    _put_status(staff_ledger, policy.witnesses[0], alarm="witness w9 refused checkpoint 12 as inconsistent")
    html = client.get("/admin/").get_data(as_text=True)
    assert "Witness alarm:" in html and "refused checkpoint 12 as inconsistent" in html and "w9.test/w" in html
