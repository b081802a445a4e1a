"""Outages (issue): the database server restarts under a write load, and the disk under SQLite fills up.

PostgreSQL restart: a private throw-away cluster (tests/reliability/pgcluster.py; the shared server on :5432 is
never touched) is stopped and started again while client threads keep writing through gunicorn. While it is
down every answer is a 503 with ``Retry-After`` (``{"error": {"code": "storage_unavailable"}}`` under /api/v1,
a friendly HTML page for a browser); when it is back the app reconnects on its own, the clients' retries of
what got a 503 go in exactly once, no acknowledged event is lost, and `tracker verify` passes.

Disk full: the SQLite ledger lives on a small tmpfs the test mounts. Filling it makes writes answer
``507 storage_full`` while reads keep working; nothing is corrupted; freeing space lets writes resume.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, cast

import pytest
import requests

from tests.reliability import pgcluster
from tests.reliability.harness import (GTIN, SOAK, CheckpointWatcher, Installation, Poller, RawDb, Server,
                                       assert_dense_and_acknowledged, journey, ledger_state, now, post_json,
                                       register_parties, verify_cli, verify_consistent)
from tests.reliability.load import Load, check_outage_answer, wait_for

pytestmark = pytest.mark.slow

RESTARTS = ["fast", "immediate"] * (10 if SOAK else 1)
LOAD_CLIENTS = 3


# --- PostgreSQL restarted under load ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_postgres() -> Iterator[pgcluster.PrivateCluster]:
    reason = pgcluster.unavailable_reason()
    if reason:
        pytest.skip(f"cannot start a private PostgreSQL cluster: {reason}")
    cluster = pgcluster.PrivateCluster()
    try:
        try:
            cluster.init().start()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
        yield cluster
    finally:
        cluster.destroy()


def test_postgres_restarted_under_write_load_loses_nothing(private_postgres, tmp_path, figures):
    cluster = private_postgres
    inst = Installation(home=tmp_path / "home", database_url=cluster.url).init()
    others = [ledger_state(inst).entries[0][1], *register_parties(inst, {
        **{f"ol-mk-{n}": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]} for n in range(LOAD_CLIENTS)},
        **{f"ol-wh-{n}": {"roles": ["warehouse", "retailer"]} for n in range(LOAD_CLIENTS)}})]
    watcher = CheckpointWatcher(inst)
    unavailable = {503: "storage_unavailable"}
    outages: list[dict[str, Any]] = []
    probe_acks: dict[str, int] = {}
    with Server(inst, workers=2) as server:
        poller = Poller(watcher, server)
        poller.start()
        loads = [Load(server.base, n, expect=unavailable) for n in range(LOAD_CLIENTS)]
        for load in loads:
            load.start()
        acked = lambda: sum(len(x.acks) for x in loads)  # noqa: E731
        failed = lambda: [f for x in loads for f in x.failures]  # noqa: E731
        try:
            item = f"01/{GTIN}/21/O0I00000"
            for mode in RESTARTS:
                before = acked()
                wait_for(lambda: acked() >= before + 30 or bool(failed()), "the load wrote before the restart")
                assert not failed(), f"{failed()[:3]}\ngunicorn log:\n{server.tail()}"
                seen_503 = sum(x.statuses[503] for x in loads)
                down_at = time.monotonic()
                cluster.stop(mode)
                # What a client sees while the database is down: the API, the checkpoint, a consumer's page.
                env = journey("ol-mk-0", "ol-wh-0", f"P{len(outages)}", now() - timedelta(minutes=30))[0]
                probes = {
                    "POST /api/v1/events": (post_json(requests, f"{server.base}/api/v1/events", env.to_json(),
                                                      timeout=30), True),
                    "GET /api/v1/checkpoint": (requests.get(f"{server.base}/api/v1/checkpoint", timeout=30), True),
                    "GET /api/v1/items": (requests.get(f"{server.base}/api/v1/items/{GTIN}/O0I00000", timeout=30),
                                          True),
                    "GET consumer page": (requests.get(f"{server.base}/{item}", timeout=30,
                                                       headers={"Accept": "text/html"}), False),
                }
                for what, (r, api) in probes.items():
                    problem = check_outage_answer(r, unavailable, api=api)
                    assert problem is None, f"{what} while PostgreSQL is down: {problem}"
                page = probes["GET consumer page"][0]
                assert page.headers["Content-Type"].startswith("text/html") and "Temporarily unavailable" in page.text
                # Stay down until every client has met the outage.
                wait_for(lambda: sum(x.statuses[503] for x in loads) >= seen_503 + LOAD_CLIENTS or bool(failed()),
                         "the clients met the outage", timeout=30)
                cluster.start()
                up_at = time.monotonic()
                writes_then = acked()
                recovered = wait_for(lambda: acked() > writes_then or bool(failed()),
                                     "a write succeeded after the restart")
                assert not failed(), f"{failed()[:3]}\ngunicorn log:\n{server.tail()}"
                r = post_json(requests, f"{server.base}/api/v1/events", env.to_json(), timeout=30)
                assert r.status_code in (200, 201), r.text  # the probe's own retry goes in too
                probe_acks[env.event_id] = r.json()["leaf_index"]
                outages.append({"mode": mode, "down_s": round(up_at - down_at, 2),
                                "first_write_after_s": round(recovered, 2)})
            before = acked()
            wait_for(lambda: acked() >= before + 30 or bool(failed()), "the load wrote after the last restart")
        finally:
            for load in loads:
                load.halt.set()
            for load in loads:
                load.join(timeout=180)
            poller.halt.set()
            poller.join(timeout=10)
        assert not failed(), failed()[:5]
        assert not any(load.is_alive() for load in loads), "a client never finished its request"
        statuses = sum((load.statuses for load in loads), Counter())
        assert set(statuses) <= {200, 201, 503}, statuses
        assert statuses[503] >= LOAD_CLIENTS * len(RESTARTS), f"the load hardly met the outages: {statuses}"
        assert set(poller.statuses) <= {200, 503}, poller.statuses
        assert not poller.errors, poller.errors[:3]
        acks = {eid: i for load in loads for eid, i in load.acks.items()} | probe_acks
        state = ledger_state(inst)
        assert_dense_and_acknowledged(state, acks, others=others)
        # After the restarts the server answers a fresh checkpoint that extends every one a client saw.
        watcher.fetch(server.base)
    verify_consistent(inst, watcher.seen)
    code, output = verify_cli(inst)
    assert code == 0, output
    figures.update(backend="postgres (private cluster)", restarts=len(RESTARTS), outages=outages,
                   events_acknowledged=len(acks), envelopes_posted=sum(x.posted for x in loads),
                   answers={str(k): v for k, v in sorted(statuses.items())},
                   checkpoint_polls={str(k): v for k, v in sorted(poller.statuses.items())}, lost=0)


# --- the disk fills up under SQLite ------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs mounted for this test (needs root with CAP_SYS_ADMIN; skipped with the reason otherwise)."""
    where = tmp_path / "small-disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the disk-full test needs root (CAP_SYS_ADMIN); running as "
                    f"uid {os.geteuid()}")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the disk-full test: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte with one file, which is returned (delete it to free the space)."""
    filler = disk / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last partial blocks
            while True:
                try:
                    fh.write(block[:size])
                except OSError:
                    break
    return filler


def test_sqlite_disk_full_refuses_writes_keeps_reads_and_resumes(small_disk, tmp_path, figures):
    inst = Installation(home=tmp_path / "home", database_url=f"sqlite:///{small_disk / 'ledger.db'}").init()
    others = [ledger_state(inst).entries[0][1], *register_parties(inst, {
        "df-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}, "df-wh": {"roles": ["warehouse", "retailer"]}})]
    full = {507: "storage_full"}
    acks: dict[str, int] = {}
    start = now() - timedelta(minutes=50)
    journeys = (journey("df-mk", "df-wh", f"D{i:05d}", start + timedelta(seconds=i % 3000)) for i in range(100000))

    def post_batch(http: requests.Session, plans: list[list[Any]]) -> requests.Response:
        envs = [e for plan in plans for e in plan]
        r = post_json(http, f"{server.base}/api/v1/events/batch", {"envelopes": [e.to_json() for e in envs]})
        if r.status_code == 200:
            for env, res in zip(envs, r.json()["results"], strict=True):
                assert res.get("event_id") == env.event_id, res
                acks[res["event_id"]] = res["leaf_index"]
        return r

    with Server(inst, workers=2) as server, requests.Session() as http:
        r = post_batch(http, [next(journeys) for _ in range(20)])
        assert r.status_code == 200, r.text
        known = "D00000"
        filler = fill(small_disk)
        # Writes go on while they still fit (SQLite reuses its WAL file), then the first one that needs a new
        # block is refused as a whole with 507 storage_full; later writes are refused the same way.
        refused: list[list[Any]] = []
        fitted = 0
        for _ in range(200):
            plans = [next(journeys) for _ in range(20)]
            r = post_batch(http, plans)
            if r.status_code == 200:
                fitted += 1
                continue
            assert check_outage_answer(r, full, api=True) is None, check_outage_answer(r, full, api=True)
            refused.append(plans)
            break
        assert refused, "the ledger kept accepting writes on a full disk (the test's filler did not fill it?)"
        env = next(journeys)[0]
        r = post_json(http, f"{server.base}/api/v1/events", env.to_json())
        assert check_outage_answer(r, full, api=True) is None, check_outage_answer(r, full, api=True)
        refused.append([[env]])
        assert "full" in r.json()["error"]["message"]
        # Reads keep working on a full disk: checkpoint, lookups, the consumer's page, proofs.
        cp = requests.get(f"{server.base}/api/v1/checkpoint", timeout=30)
        assert cp.status_code == 200, cp.text
        item = requests.get(f"{server.base}/api/v1/items/{GTIN}/{known}", timeout=30)
        assert item.status_code == 200 and item.json()["verdict"] == "genuine", item.text
        page = requests.get(f"{server.base}/01/{GTIN}/21/{known}", headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and "genuine" in page.text.lower()
        some = next(iter(acks))
        assert requests.get(f"{server.base}/api/v1/proof/inclusion", params={"event_id": some},
                            timeout=30).status_code == 200
        # Nothing is corrupted, even with the disk still full.
        with closing(RawDb(inst)) as raw:
            assert raw.one("PRAGMA integrity_check") == "ok"
        code, output = verify_cli(inst)
        assert code == 0, output
        size_while_full = ledger_state(inst).size
        # Free the space: the same requests now go in, and new ones too.
        filler.unlink()
        for plans in refused:
            r = post_batch(http, plans)
            assert r.status_code == 200, r.text
        r = post_batch(http, [next(journeys) for _ in range(5)])
        assert r.status_code == 200, r.text
        state = ledger_state(inst)
        assert_dense_and_acknowledged(state, acks, others=others)
    code, output = verify_cli(inst)
    assert code == 0, output
    figures.update(backend="sqlite (6 MiB tmpfs)", batches_that_fitted_after_filling=fitted,
                   refused_requests=len(refused), entries_while_full=size_while_full, entries_after=state.size,
                   events_acknowledged=len(acks), lost=0)


def test_sqlite_out_of_room_answers_507_in_process(tmp_path, figures):
    """The same promise without mounting anything (for machines where the tmpfs test must skip): SQLite's own
    size cap (``PRAGMA max_page_count``, set on every pooled connection as it is checked out) makes the
    database refuse to grow with SQLITE_FULL, exactly what a full disk returns."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from web import create_app

    inst = Installation(home=tmp_path / "home").init()
    others = [ledger_state(inst).entries[0][1], *register_parties(inst, {
        "df-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}, "df-wh": {"roles": ["warehouse", "retailer"]}})]
    cap = {"pages": 1 << 30}

    def capped(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute(f"PRAGMA max_page_count = {cap['pages']}")  # never below the current size

    event.listen(Pool, "checkout", capped)
    app = create_app({"WAYBILL_CONFIG": inst.config, "RATELIMIT_ENABLED": False, "SECRET_KEY": "outage-test"})
    client = app.test_client()
    acks: dict[str, int] = {}
    start = now() - timedelta(minutes=50)
    try:
        def batch(serials: range) -> Any:
            envs = [e for i in serials for e in journey("df-mk", "df-wh", f"M{i:04d}", start + timedelta(seconds=i))]
            r = client.post("/api/v1/events/batch", json={"envelopes": [e.to_json() for e in envs]})
            if r.status_code == 200:
                for env, res in zip(envs, r.get_json()["results"], strict=True):
                    assert res.get("event_id") == env.event_id, res
                    acks[res["event_id"]] = res["leaf_index"]
            return r

        assert batch(range(0, 5)).status_code == 200
        cap["pages"] = 1  # the database may not grow by a single page from now on
        r = batch(range(5, 65))
        assert r.status_code == 507, r.get_data(as_text=True)
        assert r.get_json()["error"]["code"] == "storage_full" and int(r.headers["Retry-After"]) > 0
        for i in range(100, 200):  # single events fit into a page's free room for a while, then do not
            one = client.post("/api/v1/events", json=journey("df-mk", "df-wh", f"M{i:04d}", start)[0].to_json())
            if one.status_code != 201:
                break
            acks[one.get_json()["event_id"]] = one.get_json()["leaf_index"]
        assert one.status_code == 507 and one.get_json()["error"]["code"] == "storage_full", one.get_data()
        assert client.get("/api/v1/checkpoint").status_code == 200
        lookup = client.get(f"/api/v1/items/{GTIN}/M0000")
        assert lookup.status_code == 200 and lookup.get_json()["verdict"] == "genuine"
        html = client.get(f"/01/{GTIN}/21/M0000", headers={"Accept": "text/html"})
        assert html.status_code == 200
        code, output = verify_cli(inst)
        assert code == 0, output
        cap["pages"] = 1 << 30  # room again
        assert batch(range(5, 65)).status_code == 200
        assert_dense_and_acknowledged(ledger_state(inst), acks, others=others)
    finally:
        event.remove(Pool, "checkout", capped)
        app.extensions["waybill"].store.close()
    code, output = verify_cli(inst)
    assert code == 0, output
    figures.update(backend="sqlite (max_page_count)", events_acknowledged=len(acks), lost=0)


# --- a connection cut in the middle of a transaction -------------------------------------------------------

@pytest.mark.postgres
def test_a_connection_cut_mid_transaction_is_a_storage_error_and_the_next_one_reconnects(tmp_path):
    """The server ends one connection in the middle of a read or a write (what a restart or a network cut does
    to requests in flight): the caller gets StorageError (a 503), whichever query path it was on, never a raw
    driver error (a 500); the half-done write leaves nothing behind; the next request reconnects by itself."""
    from tests.reliability.harness import PG_URL, PgSchemas
    from tracker.store.sql import StorageError

    if not PG_URL:
        pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
    schemas = PgSchemas(PG_URL)
    try:
        inst = Installation(home=tmp_path / "home", database_url=schemas.new()).init()
        register_parties(inst, {"cut-mk": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}})
        ledger = inst.open(writable=True)
        killer = RawDb(inst)
        size = ledger.size()
        paths: dict[str, Callable[[Any], Any]] = {
            "plain DB-API cursor (lookup path)": lambda txn: txn.latest_checkpoint(),
            "SQLAlchemy statement": lambda txn: txn.entry_by_event_id("sha256:" + "00" * 32),
        }
        try:
            for what, query in paths.items():
                for opener in (ledger.store.read, ledger.store.write):
                    with pytest.raises(StorageError) as caught:
                        with opener() as txn:
                            pid = cast(Any, txn).conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                            killer.run("SELECT pg_terminate_backend(?, 5000)", (pid,))
                            query(txn)
                    assert caught.value.http_status == 503 and caught.value.code == "storage_unavailable", what
                    assert ledger.checkpoint() and ledger.size() == size, what  # reconnected; nothing written
            env = journey("cut-mk", "cut-wh", "CUT1", now() - timedelta(minutes=5))[0]
            assert ledger.append(env, now=now()).leaf_index == size
        finally:
            killer.close()
            ledger.store.close()
        code, output = verify_cli(inst)
        assert code == 0, output
    finally:
        schemas.close()
