"""Concurrency under load (issue: 8 client processes, gunicorn with 4 workers, both databases).

Eight separate client processes post signed events at once — single posts, batches and retries — to a real
gunicorn with four worker processes. Afterwards: every acknowledged event is in the ledger exactly once at the
leaf index it was told, leaf indexes are 0..n-1, nothing is stored that nobody was told about, `tracker verify`
(the operator's command, in a subprocess) passes, and every item's chain is exactly the linear chain its client
signed: no fork the clients did not create, verdict ``genuine``.

Then the fork the clients *do* create: two devices racing to ship the same item from the same ``prev``. Both
statements are evidence, so both are stored; the item is flagged ``fork`` naming both.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
from datetime import timedelta
from typing import Any, Callable

import pytest
import requests

from tests.reliability.clients import chain_client, racing_shipper
from tests.reliability.harness import (SOAK, CheckpointWatcher, Server, assert_dense_and_acknowledged, item_key,
                                       ledger_state, now, post_json, register_parties, statement, verify_cli)
from tracker import provenance
from tracker.ledger import statement_of_entry

pytestmark = pytest.mark.slow

CLIENTS = 8
WORKERS = 4
ITEMS_PER_CLIENT = 60 if SOAK else 10  # 4 events each
RACE_ROUNDS = 20 if SOAK else 6


def run_processes(target: Callable, args_for: Callable[[int, Any, Any], tuple], n: int,
                  timeout: float = 240) -> dict[str, Any]:
    """Start ``n`` spawned processes, release them together, collect their reports (bounded in time)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=args_for(i, barrier, out), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    reports: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + timeout
        while len(reports) < n:
            try:
                report = out.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"only {len(reports)} of {n} client processes reported within {timeout} s")
            if len(report) == 3:
                pytest.fail(f"{report[0]} failed:\n{report[2]}")
            reports[report[0]] = report[1]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    assert [p.exitcode for p in procs] == [0] * n
    return reports


def test_eight_clients_four_workers_lose_nothing_and_fork_nothing(installation, backend, figures):
    parties = {}
    for n in range(CLIENTS):
        parties[f"rl-mk-{n}"] = {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}
        parties[f"rl-wh-{n}"] = {"roles": ["warehouse", "retailer"]}
    setup = register_parties(installation, parties)
    watcher = CheckpointWatcher(installation)
    with Server(installation, workers=WORKERS) as server:
        watcher.fetch(server.base)
        reports = run_processes(chain_client,
                                lambda i, barrier, out: (server.base, i, ITEMS_PER_CLIENT, 200.0, barrier, out),
                                CLIENTS)
        # Maximum merge delay: a checkpoint fetched after the acknowledgements covers them all.
        final_cp = watcher.fetch(server.base)
    elapsed = max(r["seconds"] for r in reports.values())  # from the common start to the last client's end

    acks: dict[str, int] = {}
    for report in reports.values():
        for eid, idx, _status in report["acks"]:
            assert acks.setdefault(eid, idx) == idx, f"{eid} acknowledged at two leaf indexes"
    expected = CLIENTS * ITEMS_PER_CLIENT * 4
    assert len(acks) == expected

    state = ledger_state(installation)
    genesis = state.entries[0][1]
    assert_dense_and_acknowledged(state, acks, others=[genesis, *setup])
    assert state.size == 1 + len(setup) + expected
    assert final_cp.size == state.size

    code, output = verify_cli(installation)
    assert code == 0, output
    assert f"ok: {state.size} entries" in output

    # Each item's chain is the one its client signed: linear, every prev the event before, no fork.
    chains = {item: chain for report in reports.values() for item, chain in report["chains"].items()}
    ledger = installation.open()
    try:
        for item, chain in chains.items():
            answer = provenance.lookup(ledger, item)
            assert [step["event_id"] for step in answer.path] == chain, item
            assert not answer.has("fork"), (item, answer.reasons)
            assert answer.verdict == "genuine", (item, [r.code for r in answer.reasons])
            with ledger.store.read() as txn:
                entries = txn.entries_by_event_ids(chain)
            for before, after in zip(chain, chain[1:]):
                assert statement_of_entry(entries[after]).prev == {item: before}, item
    finally:
        ledger.store.close()

    figures.update(backend=backend, clients=CLIENTS, workers=WORKERS, events_acknowledged=len(acks),
                   envelopes_posted=sum(r["posted"] for r in reports.values()),
                   replays=sum(r["duplicates"] for r in reports.values()), items=len(chains),
                   ledger_size=state.size, posting_seconds=round(elapsed, 1),
                   events_per_second=round(expected / elapsed, 1), lost=0, forks=0)


def test_two_clients_racing_to_ship_from_the_same_prev_are_both_stored_and_flagged_fork(installation, backend,
                                                                                        figures):
    register_parties(installation, {"rl-race": {"roles": ["manufacturer"], "devices": 2, "gs1_prefixes": ["950600"]},
                                    "rl-dest-0": {"roles": ["warehouse"]}, "rl-dest-1": {"roles": ["warehouse"]}})
    with Server(installation, workers=WORKERS) as server:
        rounds = []
        with requests.Session() as http:
            for r in range(RACE_ROUNDS):
                item = item_key(f"RACE{r:03d}")
                env = statement("commission", "rl-race", at=now() - timedelta(minutes=30), items=[item],
                                product={"gtin": item.split("/")[1], "name": "Contested widget"})
                resp = post_json(http, f"{server.base}/api/v1/events", env.to_json())
                assert resp.status_code == 201, resp.text
                rounds.append({"item": item, "commission": env.event_id})
        reports = run_processes(racing_shipper, lambda i, barrier, out: (server.base, i, rounds, barrier, out), 2,
                                timeout=120)
        with requests.Session() as http:
            for r, spec in enumerate(rounds):
                a, b = reports["racer-0"][r], reports["racer-1"][r]
                assert a[1] == b[1] == 201, (a, b)
                assert a[2] != b[2] and a[3] != b[3]
                gtin, serial = spec["item"].split("/")[1], spec["item"].split("/")[3]
                answer = http.get(f"{server.base}/api/v1/items/{gtin}/{serial}", timeout=30).json()
                forks = {reason["event_id"] for reason in answer["reasons"] if reason["code"] == "fork"}
                assert forks == {a[2], b[2]}, answer["reasons"]
                assert answer["verdict"] == "likely_counterfeit"
                assert [s["event_id"] for s in answer["path"]] == [spec["commission"]] + sorted(
                    [a[2], b[2]], key=lambda e: a[3] if e == a[2] else b[3])
                page = http.get(f"{server.base}/01/{gtin}/21/{serial}", timeout=30).text
                assert 'data-verdict="likely_counterfeit"' in page and 'data-code="fork"' in page
    state = ledger_state(installation)
    assert [i for i, _ in state.entries] == list(range(state.size))
    code, output = verify_cli(installation)
    assert code == 0, output
    figures.update(backend=backend, race_rounds=RACE_ROUNDS, forks_flagged=RACE_ROUNDS, both_stored=RACE_ROUNDS)
