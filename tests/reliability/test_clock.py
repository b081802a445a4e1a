"""A server clock that jumps backwards (issue): the wall clock is faked (``tracker.clock.wall_time``) to jump two
hours back in the middle of a session. The server's ``now`` must not follow it (tracker/clock.py): a stolen key
whose revocation is already in the ledger stays revoked, honest statements with the right time are not
refused as ``future_time``, the times the ledger records (``ingested_at``, checkpoint ``created_at``) never go
backwards, and none of that is lost when the app restarts or a `tracker` command runs under the bad clock.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from click.testing import CliRunner

import tracker.clock
from tests.reliability.harness import (Installation, RawDb, device_key, item_key, now, register_parties, statement,
                                       verify_cli)
from tracker.clock import Clock
from tracker.keys import write_key_file
from tracker.signing import party_statement, sign_statement
from tracker.statements import format_time

JUMP = timedelta(hours=2)


class FakeWall:
    """The wall clock as the tests set it: ``at`` moves only when a test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


# --- the clock itself -----------------------------------------------------------------------------------

class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_clock_follows_an_honest_wall_clock_exactly():
    wall, mono = FakeWall(datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)), FakeMonotonic()
    clock = Clock(wall=wall, monotonic=mono)
    for _ in range(5):
        wall.at += timedelta(seconds=7)
        mono.t += 7
        assert clock.now() == wall.at
    assert clock.ahead_of_wall == timedelta(0)


def test_clock_does_not_follow_the_wall_clock_backwards_and_catches_up_later():
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    wall, mono = FakeWall(t0), FakeMonotonic()
    clock = Clock(wall=wall, monotonic=mono)
    assert clock.now() == t0
    wall.at, mono.t = t0 - JUMP, mono.t + 10  # 10 s later the wall clock says two hours earlier
    assert clock.now() == t0 + timedelta(seconds=10)  # time went on at the monotonic clock's rate
    assert clock.ahead_of_wall == JUMP + timedelta(seconds=10)
    mono.t += 50
    wall.at += timedelta(seconds=50)
    assert clock.now() == t0 + timedelta(seconds=60)
    wall.at, mono.t = t0 + timedelta(hours=3), mono.t + 1  # the wall clock is right again (and ahead): follow it
    assert clock.now() == t0 + timedelta(hours=3)


def test_clock_never_goes_below_what_the_ledger_recorded():
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    recorded = t0 + timedelta(minutes=3)
    clock = Clock(wall=FakeWall(t0 - JUMP), monotonic=FakeMonotonic(), floor=lambda: recorded)
    assert clock.now() == recorded  # a fresh process: nothing handed out yet, the ledger's time is the floor
    recorded = None  # type: ignore[assignment]  # an empty ledger: the wall clock it is
    assert Clock(wall=FakeWall(t0), floor=lambda: recorded).now() == t0


# --- the web app and the CLI under a clock that jumps back -------------------------------------------------

def _revoke_device_0(inst: Installation, at: datetime) -> dict[str, Any]:
    """The admin's `party` statement revoking device 0 of ck-mk from ``at`` (device 1 stays valid)."""
    since = format_time(now() - timedelta(days=2))
    keys = [{"public_key": device_key("ck-mk", 0).public_key_b64, "not_before": since, "revoked_at": format_time(at)},
            {"public_key": device_key("ck-mk", 1).public_key_b64, "not_before": since}]
    doc = party_statement(admin="admin", time=at, location={"name": "Registry", "country": "ZZ"}, party_id="ck-mk",
                          name="Ck-Mk", country="CN", roles=["manufacturer"], keys=keys,
                          gs1_prefixes=["950600"])
    return sign_statement(doc, inst.admin_key()).to_json()


def _stamps(inst: Installation) -> tuple[list[str], list[str]]:
    """(ingested_at in leaf order, checkpoint created_at in size order) as stored."""
    raw = RawDb(inst)
    try:
        ingested = [r[0] for r in raw.run("SELECT ingested_at FROM entries ORDER BY leaf_index").fetchall()]
        created = [r[0] for r in raw.run("SELECT created_at FROM checkpoints ORDER BY size").fetchall()]
    finally:
        raw.close()
    return ingested, created


def _as_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _non_decreasing(stamps: list[str]) -> bool:
    times = [_as_time(s) for s in stamps]
    return all(a <= b for a, b in zip(times, times[1:]))


def test_a_clock_jumping_back_neither_revives_a_revoked_key_nor_refuses_honest_statements(
        installation, backend, monkeypatch, tmp_path, figures):
    from web import create_app

    inst = installation
    register_parties(inst, {"ck-mk": {"roles": ["manufacturer"], "devices": 2, "gs1_prefixes": ["950600"]},
                            "ck-wh": {"roles": ["warehouse", "retailer"]}})
    wall = FakeWall(now())
    monkeypatch.setattr(tracker.clock, "wall_time", wall)
    t = wall.at
    apps = []

    def app_client() -> Any:  # a fresh app is what a restarted server is: its own clock, nothing remembered
        app = create_app({"WAYBILL_CONFIG": inst.config, "RATELIMIT_ENABLED": False, "SECRET_KEY": "clock-test"})
        apps.append(app)
        return app.test_client()

    client = app_client()
    item = item_key("CLK1")
    c = statement("commission", "ck-mk", at=t - timedelta(minutes=1), device=1, items=[item],
                  product={"gtin": item.split("/")[1], "name": "Clock widget"})
    assert client.post("/api/v1/events", json=c.to_json()).status_code == 201
    # Device 0 is stolen: the admin revokes it now, and the revocation is in the ledger.
    r = client.post("/api/v1/events", json=_revoke_device_0(inst, t - timedelta(seconds=10)))
    assert r.status_code == 201, r.get_json()

    wall.at = t - JUMP  # the server's clock jumps two hours back
    # The thief signs with the revoked key, dating the statement before the revocation (and within 5 minutes of
    # what the broken clock says): the revocation must still hold.
    forged = statement("ship", "ck-mk", at=t - JUMP - timedelta(minutes=1), device=0, items=[item], to="ck-wh",
                       prev={item: c.event_id})
    r = client.post("/api/v1/events", json=forged.to_json())
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "revoked_key", r.get_json()
    # A device whose clock is right is not refused as `future_time` because the server's clock is wrong.
    ship = statement("ship", "ck-mk", at=t + timedelta(minutes=1), device=1, items=[item], to="ck-wh",
                     prev={item: c.event_id})
    r = client.post("/api/v1/events", json=ship.to_json())
    assert r.status_code == 201, r.get_json()
    # A device that shares the server's wrong clock still gets in too (its statement is merely dated early).
    item2 = item_key("CLK2")
    c2 = statement("commission", "ck-mk", at=wall.at, device=1, items=[item2],
                   product={"gtin": item2.split("/")[1], "name": "Clock widget"})
    assert client.post("/api/v1/events", json=c2.to_json()).status_code == 201

    # The server restarts with the clock still wrong: the ledger's own times keep it from going back.
    client = app_client()
    forged2 = statement("commission", "ck-mk", at=t - JUMP, device=0, items=[item_key("CLK3")],
                        product={"gtin": item2.split("/")[1], "name": "Forged widget"})
    r = client.post("/api/v1/events", json=forged2.to_json())
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "revoked_key", r.get_json()
    receive = statement("receive", "ck-wh", at=t + timedelta(minutes=2), items=[item], from_="ck-mk",
                        ship=ship.event_id, prev={item: ship.event_id})
    r = client.post("/api/v1/events", json=receive.to_json())
    assert r.status_code == 201, r.get_json()

    # An operator's `tracker record` under the same clock: the CLI takes its time from the ledger's floor too.
    monkeypatch.setenv("WAYBILL_HOME", str(inst.home))
    if inst.database_url:
        monkeypatch.setenv("WAYBILL_DATABASE_URL", inst.database_url)
    key_file = tmp_path / "wh.key"
    write_key_file(key_file, device_key("ck-wh", 0))
    from tracker.cli import cli

    done = CliRunner().invoke(cli, ["record", "sell", "--key", str(key_file), "--item", item,
                                    "--time", format_time(t + timedelta(minutes=3))])
    assert done.exit_code == 0, done.output

    lookup = client.get(f"/api/v1/items/{item.split('/')[1]}/CLK1").get_json()
    assert lookup["verdict"] == "genuine", lookup["reasons"]
    assert [step["type"] for step in lookup["path"]] == ["commission", "ship", "receive", "sell"]
    ingested, created = _stamps(inst)
    assert _non_decreasing(ingested), f"ingested_at went backwards: {ingested}"
    assert _non_decreasing(created), f"a checkpoint's created_at went backwards: {created}"
    assert _as_time(created[-1]) >= t
    for app in apps:
        app.extensions["waybill"].store.close()
    code, output = verify_cli(inst)
    assert code == 0, output
    figures.update(backend=backend, jump_back=str(JUMP), revoked_key_refused=2, honest_accepted=4,
                   stamps_checked=len(ingested) + len(created), went_backwards=0)
