"""Accounts, device enrolment and the customs queries on both backends (SQLite, and PostgreSQL when
configured): web.db (users, devices; migrations 0003 and 0005) and the customs queries of the store."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import T0, fixed_key
from tracker import customs
from web import accounts
from web.db import web_db
from tracker.scenarios import Network, load_scenarios


def _play(ledger, *names: str) -> None:
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    by_name = {s.name: s for s in load_scenarios()}
    for name in names:
        by_name[name].play(net, n="S")


def test_users_devices_and_approval(ledger):
    _play(ledger, "in-transit")
    now = datetime.now(timezone.utc)
    user = accounts.create_user(ledger, username="Dock.Worker", password="long password", party_id="hh-warehouse",
                                role="staff", now=now)
    assert user.username == "dock.worker" and user.id > 0
    assert accounts.authenticate(ledger, username="DOCK.WORKER", password="long password", now=now).id == user.id
    with pytest.raises(accounts.AuthenticationError):
        accounts.authenticate(ledger, username="dock.worker", password="wrong password", now=now)
    assert web_db(ledger.store).user_by_name("dock.worker").failed_logins == 1
    accounts.authenticate(ledger, username="dock.worker", password="long password", now=now)
    assert web_db(ledger.store).user_by_name("dock.worker").failed_logins == 0
    key = fixed_key("store:browser")
    device = accounts.request_device(ledger, user, public_key=key.public_key_b64, label="phone", now=now)
    assert device.status == "pending" and device.keyid == key.keyid
    assert [d.id for d in accounts.list_devices(ledger, status="pending")] == [device.id]
    result = accounts.approve_device_with_key(ledger, device.id, admin_key=fixed_key("admin"), now=now)
    approved = accounts.get_device(ledger, device.id)
    assert approved.status == "approved" and approved.event_id == result.event_id
    assert key.keyid in [k.keyid for k in ledger.party("hh-warehouse").keys]
    assert accounts.list_devices(ledger, party_id="hh-warehouse", status="approved")[0].keyid == key.keyid
    disabled = accounts.set_disabled(ledger, user.id, True)
    assert disabled.disabled and accounts.get_user(ledger, user.id).disabled
    ledger.audit()  # the approval is an ordinary admin-signed party statement


def test_customs_queries(ledger):
    _play(ledger, "genuine-cross-border", "held-by-customs", "in-transit")
    with ledger.store.read() as txn:
        ships = list(txn.entries_of_types(["ship"]))
        both = list(txn.entries_of_types(["ship", "inspect"], batch=2))
    assert ships and all(e.type == "ship" for e in ships)
    assert [e.leaf_index for e in both] == sorted(e.leaf_index for e in both)
    assert {e.type for e in both} == {"ship", "inspect"}
    dash = customs.dashboard(ledger, "DE")
    assert {a.key: a.consignment.status for a in dash.queue} == {
        "01/09506000134352/21/HLDS": "held", "01/09506000134352/21/TRNS": "awaiting"}
    assert customs.dashboard(ledger, "CN").assessments == ()
