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


def test_parallel_failures_are_all_counted_and_lock(ledger):
    """25 failed sign-ins at once (threads, one transaction each): every one is counted, the lock holds."""
    import threading

    from web.accounts.users import LOCKOUT, MAX_FAILED_LOGINS, stamp

    now = datetime.now(timezone.utc)
    user = accounts.create_user(ledger, username="dock.worker", password="long password", party_id="admin",
                                role="admin", now=now)
    db = web_db(ledger.store)
    start = threading.Barrier(25)

    def fail() -> None:
        start.wait()
        db.record_failure(user.id, now=stamp(now), lock_until=stamp(now + LOCKOUT), max_failures=MAX_FAILED_LOGINS)

    threads = [threading.Thread(target=fail) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = db.user_by_name("dock.worker")
    assert row.failed_logins == 25 and row.locked_until == stamp(now + LOCKOUT)
    # once the lock has run out, the next failure starts a fresh count
    later = now + LOCKOUT + timedelta(seconds=1)
    assert db.record_failure(user.id, now=stamp(later), lock_until=stamp(later + LOCKOUT),
                             max_failures=MAX_FAILED_LOGINS) == (1, None)


def test_migration_0005_moves_legacy_plaintext_notes_out_of_sight(ledger):
    """A ledger from before the commitment scheme holds an inspect with a plaintext note: upgrading copies the
    note into private_notes (the signed bytes themselves cannot change)."""
    from alembic import command
    from alembic.config import Config

    from tracker.signing import new_statement, sign_statement
    from tracker.store.sql import migrate

    _play(ledger, "in-transit")
    key = "01/09506000134352/21/TRNS"
    from tracker.provenance import head

    doc = new_statement("inspect", actor="de-customs", time=T0 + timedelta(days=3),
                        location={"name": "Zoll", "country": "DE"}, prev={key: head(ledger, key)}, items=[key],
                        decision="held", note="legacy plaintext note")
    from tracker.scenarios import party_key

    (imported,) = ledger.import_envelopes([sign_statement(doc, party_key("de-customs"))], now=T0 + timedelta(days=3))
    assert not isinstance(imported, Exception), imported
    cfg = Config()
    from pathlib import Path

    import tracker.store.sql as sql

    cfg.set_main_option("script_location", str(Path(sql.__file__).parent / "migrations"))
    with ledger.store._writer.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    migrate(ledger.store)
    stored = web_db(ledger.store).note(imported.event_id)
    assert stored is not None and stored.note == "legacy plaintext note" and stored.source == "legacy"
