#!/usr/bin/env python3
"""Write load through gunicorn: many devices, each posting one signed event at a time (``POST /api/v1/events``).

Real traffic is hundreds of handhelds and browsers each posting one handoff, not batches. Each client is a
closed loop on its own keep-alive connection: post, wait for the answer, post the next. By default each
client walks items through real journeys -- commission, ship (with ``prev``), receive (with ``prev`` and the
shipment) -- signed by its own manufacturer and warehouse device keys; ``--mix commission`` posts commissions
only. Every envelope is signed before the clock starts, in the client processes.

Phases, each on a fresh gunicorn (``-c python:web.gunicorn_conf``, 4 workers x 16 threads) over one ledger:
  baseline   WAYBILL_GROUP_COMMIT=0: each append its own transaction, fsync and checkpoint
  group      group commit on (the default)
and with ``--scale-out`` (PostgreSQL): one app server vs two app servers (separate gunicorn instances) on one
database, clients split between them, with consumer lookups running beside the writes.

After each phase every acknowledged event is looked up in the database: it must be stored at the leaf the
answer named (``lost`` counts those that are not), and at the end the whole ledger is audited.

Goals: >= 1,000 events/s with p99 <= 100 ms on 2 cores, group commit >= 2x the baseline in the same run, lost 0.

    python bench/web_write_load.py                       # SQLite, then PostgreSQL if reachable; 20 s a phase
    python bench/web_write_load.py --db sqlite --duration 10
    python bench/web_write_load.py --db postgres --scale-out
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ledger_bench import database  # noqa: E402
from web_load import stop, wait_until_up, warm  # noqa: E402

from tracker.config import load_config  # noqa: E402
from tracker.home import init  # noqa: E402
from tracker.keys import KeyPair, keypair_from_seed, read_key_file  # noqa: E402
from tracker.signing import new_statement, party_statement, sign_statement  # noqa: E402
from tracker.timefmt import format_time  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GTIN = "09506000134352"
MAKERS = 8
RATE_GOAL, P99_GOAL_MS, RATIO_GOAL = 1000.0, 100.0, 2.0


def device_key(party: str, device: int) -> KeyPair:
    return keypair_from_seed(hashlib.sha256(f"web-write-load/{party}/{device}".encode()).digest())


def maker(c: int) -> str:
    return f"wl-maker-{c % MAKERS}"


def warehouse(c: int) -> str:
    return f"wl-store-{c % MAKERS}"


# --- set-up ----------------------------------------------------------------------------------------

def make_installation(home: Path, url: str, clients: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYBILL_")}
    env.update({"WAYBILL_HOME": str(home), "WAYBILL_DATABASE_URL": url, "WAYBILL_RATELIMIT_ENABLED": "0"})
    config = load_config(env)
    start = datetime.now(timezone.utc) - timedelta(days=2)
    ledger = init(config, now=start).ledger
    admin = read_key_file(config.admin_key_path)
    devices = -(-clients // MAKERS)
    envs = []
    for i in range(MAKERS):
        for pid, roles, extra in ((maker(i), ["manufacturer"], {"gs1_prefixes": ["950600"]}),
                                  (warehouse(i), ["warehouse", "retailer"], {})):
            keys = [{"public_key": device_key(pid, d).public_key_b64, "not_before": format_time(start)}
                    for d in range(devices)]
            doc = party_statement(admin="admin", time=start, location={"name": "Registry", "country": "ZZ"},
                                  party_id=pid, name=pid, country="CN", roles=roles, keys=keys, **extra)
            envs.append(sign_statement(doc, admin))
    results = ledger.append_batch(envs, now=start + timedelta(seconds=1))
    bad = [r for r in results if isinstance(r, Exception)]
    if bad:
        raise SystemExit(f"registering the bench parties failed: {bad[0]}")
    ledger.store.close()
    return env


def sign_plan(client: int, tag: str, count: int, mix: str) -> list[tuple[str, str]]:
    """(event id, body) in posting order for one client."""
    m, w = maker(client), warehouse(client)
    d = client // MAKERS
    mk, wk = device_key(m, d), device_key(w, d)
    t0 = datetime.now(timezone.utc) - timedelta(hours=1)
    out: list[tuple[str, str]] = []
    k = 0
    while len(out) < count:
        item = f"01/{GTIN}/21/{tag}-{client}-{k}"
        at = t0 + timedelta(seconds=k % 3000)
        loc = {"name": f"Site of {m}", "country": "CN"}
        c = sign_statement(new_statement("commission", actor=m, time=at, location=loc, items=[item],
                                         product={"gtin": GTIN, "name": "Load widget"}), mk)
        out.append((c.event_id, json.dumps(c.to_json())))
        if mix == "journeys":
            s = sign_statement(new_statement("ship", actor=m, time=at + timedelta(seconds=1), location=loc,
                                             items=[item], to=w, prev={item: c.event_id}), mk)
            r = sign_statement(new_statement("receive", actor=w, time=at + timedelta(seconds=2),
                                             location={"name": f"Site of {w}", "country": "CN"}, items=[item],
                                             from_=m, ship=s.event_id, prev={item: s.event_id}), wk)
            out.extend([(s.event_id, json.dumps(s.to_json())), (r.event_id, json.dumps(r.to_json()))])
        k += 1
    return out


# --- servers ----------------------------------------------------------------------------------------

def group_cpu(pgids: list[int]) -> float:
    """CPU seconds (user + system) used so far by every live process in these process groups (the servers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], *, group: bool, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    senv = {**env, "WAYBILL_GROUP_COMMIT": "1" if group else "0", "WAYBILL_BIND": f"127.0.0.1:{port}",
            "WAYBILL_WORKERS": str(workers), "WAYBILL_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "gunicorn", "-c", "python:web.gunicorn_conf", "--log-level", "warning",
           "--backlog", "2048", "web:create_app()"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=senv, start_new_session=True)
    wait_until_up(proc, port)
    warm(port, workers)
    return proc, port


# --- clients ----------------------------------------------------------------------------------------

def client_process(first: int, count: int, tag: str, per_client: int, mix: str, ports: list[int],
                   go: Any, duration: float, out: Any) -> None:
    plans = [sign_plan(c, tag, per_client, mix) for c in range(first, first + count)]
    lat: list[float] = []
    acks: list[tuple[str, int]] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def run(i: int, plan: list[tuple[str, str]], start: float) -> None:
        port = ports[(first + i) % len(ports)]
        conn: http.client.HTTPConnection | None = None
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        mine: list[float] = []
        got: list[tuple[str, int]] = []
        seen: dict[str, int] = {}
        for eid, body in plan:
            if time.perf_counter() >= start + duration:
                break
            sent = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", "/api/v1/events", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                done = time.perf_counter()
                key = str(resp.status)
                if resp.status in (200, 201):
                    doc = json.loads(data)
                    if doc.get("event_id") != eid:
                        key = "wrong-id"
                    else:
                        got.append((eid, int(doc["leaf_index"])))
                        mine.append(done - sent)
                else:
                    key = f"{resp.status} {data[:80]!r}"
                seen[key] = seen.get(key, 0) + 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                seen[type(exc).__name__] = seen.get(type(exc).__name__, 0) + 1
                if conn is not None:
                    conn.close()
                conn = None
                break  # a journey cannot go on past an event it does not know was stored
        with lock:
            lat.extend(mine)
            acks.extend(got)
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v
            if len(got) == len(plan):
                statuses["ran out of envelopes"] = statuses.get("ran out of envelopes", 0) + 1

    go.wait(timeout=600)
    cpu0 = sum(os.times()[:2])
    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i, plan, start)) for i, plan in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((lat, acks, statuses, time.perf_counter() - start, sum(os.times()[:2]) - cpu0))


def lookup_load(port: int, paths: list[str], duration: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.perf_counter() + duration
    i = 0
    while time.perf_counter() < end and paths:
        sent = time.perf_counter()
        conn.request("GET", paths[i % len(paths)], headers={"Accept": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            out.append(time.perf_counter() - sent)
        i += 1
        time.sleep(0.01)


def run_phase(env: dict[str, str], *, name: str, group: bool, servers: int, args: argparse.Namespace,
              lookups: list[str] = ()) -> dict[str, Any]:
    procs = [start_server(env, group=group, workers=args.workers, threads=args.threads) for _ in range(servers)]
    ports = [p for _, p in procs]
    try:
        ctx = mp.get_context("fork")
        out = ctx.Queue()
        per = -(-args.clients // args.client_procs)
        spans = [(k * per, min(per, args.clients - k * per)) for k in range(args.client_procs)
                 if args.clients - k * per > 0]
        go = ctx.Barrier(len(spans) + 1)  # the clock starts once every client process has signed its envelopes
        kids = []
        for first, n in spans:
            kids.append(ctx.Process(target=client_process, args=(first, n, name, args.per_client, args.mix, ports,
                                                                  go, args.duration, out), daemon=True))
        for kid in kids:
            kid.start()
        look: list[float] = []
        looker = threading.Thread(target=lookup_load, args=(ports[-1], lookups, args.duration, look), daemon=True)
        go.wait(timeout=600)
        server_cpu0 = group_cpu([proc.pid for proc, _ in procs])
        if lookups:
            looker.start()
        results = [out.get(timeout=args.duration + 120) for _ in kids]
        server_cpu = group_cpu([proc.pid for proc, _ in procs]) - server_cpu0
        for kid in kids:
            kid.join(timeout=30)
        if lookups:
            looker.join(timeout=60)
    finally:
        for proc, _ in procs:
            stop(proc)
    lat = sorted(x for r in results for x in r[0])
    acks = [a for r in results for a in r[1]]
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r[2].items():
            statuses[k] = statuses.get(k, 0) + v
    elapsed = max(r[3] for r in results)
    return {"phase": name, "group_commit": group, "servers": servers, "events": len(acks),
            "events_per_s": len(acks) / elapsed, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
            "statuses": statuses, "acks": acks, "lookup_p99_ms": pct(sorted(look), 99) * 1000 if lookups else None,
            "lookups": len(look) if lookups else 0,
            "server_cpu_ms_per_event": 1000 * server_cpu / max(1, len(acks)),
            "client_cpu_ms_per_event": 1000 * sum(r[4] for r in results) / max(1, len(acks)),
            "cpu_share": (server_cpu + sum(r[4] for r in results)) / elapsed / (os.cpu_count() or 1)}


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))]


def check_stored(env: dict[str, str], acks: list[tuple[str, int]]) -> int:
    """How many acknowledged events are not stored at the leaf their answer named."""
    from tracker.home import open_ledger

    ledger = open_ledger(load_config(env), writable=False)
    try:
        with ledger.store.read() as txn:
            stored = txn.entries_by_event_ids([eid for eid, _ in acks])
        return sum(1 for eid, idx in acks if eid not in stored or stored[eid].leaf_index != idx)
    finally:
        ledger.store.close()


def audit(env: dict[str, str]) -> str:
    from tracker.home import open_ledger

    ledger = open_ledger(load_config(env), writable=False)
    try:
        t = time.perf_counter()
        report = ledger.audit()
        return f"audit OK: {report.entries} entries, {report.checkpoints} stored checkpoints, " \
               f"{time.perf_counter() - t:.1f} s"
    finally:
        ledger.store.close()


def show(r: dict[str, Any]) -> None:
    extra = f"  lookups p99 {r['lookup_p99_ms']:.1f} ms ({r['lookups']})" if r["lookup_p99_ms"] is not None else ""
    print(f"  {r['phase']:<12} {r['events_per_s']:8.0f} events/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
          f"  lost {r['lost']}  answers {r['statuses']}{extra}", flush=True)
    print(f"  {'':<12} CPU per event: server {r['server_cpu_ms_per_event']:.2f} ms, clients "
          f"{r['client_cpu_ms_per_event']:.2f} ms; this bench used {r['cpu_share']:.0%} of the machine's cores",
          flush=True)


def bench_backend(label: str, url: str, args: argparse.Namespace, report: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="waybill-wl-") as tmp:
        env = make_installation(Path(tmp) / "home", url, args.clients)
        print(f"\n{label}: {args.clients} clients ({args.client_procs} processes), {args.mix}, "
              f"{args.duration:g} s a phase, gunicorn {args.workers} workers x {args.threads} threads", flush=True)
        rows = []
        phases = [("baseline", False, 1), ("group", True, 1)]
        for name, group, servers in phases:
            r = run_phase(env, name=f"{name}-{label[:2]}", group=group, servers=servers, args=args)
            r["lost"] = check_stored(env, r["acks"])
            r["phase"] = name
            show(r)
            rows.append(r)
        base, grp = rows
        ratio = grp["events_per_s"] / base["events_per_s"] if base["events_per_s"] else float("inf")
        ok_rate = grp["events_per_s"] >= RATE_GOAL
        ok_p99 = grp["p99_ms"] <= P99_GOAL_MS
        ok_ratio = ratio >= RATIO_GOAL
        lost = sum(r["lost"] for r in rows)
        print(f"  group / baseline: {ratio:.2f}x   "
              f"[{'PASS' if ok_rate else 'MISS'}] >= {RATE_GOAL:,.0f} events/s   "
              f"[{'PASS' if ok_p99 else 'MISS'}] p99 <= {P99_GOAL_MS:g} ms   "
              f"[{'PASS' if ok_ratio else 'MISS'}] >= {RATIO_GOAL:g}x baseline   "
              f"[{'PASS' if lost == 0 else 'MISS'}] lost = 0", flush=True)
        core = in_process(env, args)
        print(f"  same clients' envelopes straight into Ledger.append (in process, no HTTP, group commit): "
              f"{core['events_per_s']:.0f} events/s, {core['cpu_ms_per_event']:.2f} ms CPU per event "
              f"(the server above: {grp['server_cpu_ms_per_event']:.2f} ms), groups of {core['group_size']:.1f}",
              flush=True)
        rows.append(core)
        if args.scale_out and not url.startswith("sqlite"):
            keys = [f"/01/{GTIN}/21/{a}" for a in _items(env)[:2000]]
            one = run_phase(env, name="one-server", group=True, servers=1, args=args, lookups=keys)
            one["lost"] = check_stored(env, one["acks"])
            show(one)
            two = run_phase(env, name="two-servers", group=True, servers=2, args=args, lookups=keys)
            two["lost"] = check_stored(env, two["acks"])
            show(two)
            print(f"  two servers / one: writes {two['events_per_s'] / max(one['events_per_s'], 1e-9):.2f}x, "
                  f"lookup p99 {two['lookup_p99_ms']:.1f} ms vs {one['lookup_p99_ms']:.1f} ms "
                  f"(one machine of {os.cpu_count()} cores: a second app server adds no CPU here)", flush=True)
            rows += [one, two]
        print("  " + audit(env), flush=True)
        report[label] = [{k: v for k, v in r.items() if k != "acks"} for r in rows] + [
            {"ratio": ratio, "pass_rate": ok_rate, "pass_p99": ok_p99, "pass_ratio": ok_ratio, "lost": lost}]


def in_process(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """The core alone: as many threads as clients append the same kind of envelopes through one Ledger handle,
    as one server worker would, but without HTTP, gunicorn or Flask."""
    from tracker.home import open_ledger

    ledger = open_ledger(load_config(env))
    plans = [[json.loads(body) for _, body in sign_plan(c, "core", 90, args.mix)] for c in range(args.clients)]
    failures: list[Exception] = []

    def run(plan: list[dict[str, Any]]) -> None:
        for doc in plan:
            try:
                ledger.append(doc, now=datetime.now(timezone.utc))
            except Exception as exc:  # noqa: BLE001 - counted and shown
                failures.append(exc)

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    n = sum(len(plan) for plan in plans)
    assert ledger.group is not None
    groups, requests = ledger.group.groups, ledger.group.requests
    ledger.store.close()
    if failures:
        raise SystemExit(f"in-process appends failed: {failures[0]}")
    return {"phase": "in-process", "events_per_s": n / elapsed, "cpu_ms_per_event": 1000 * cpu / n,
            "group_size": requests / max(groups, 1)}


def _items(env: dict[str, str]) -> list[str]:
    from tracker.home import open_ledger

    ledger = open_ledger(load_config(env), writable=False)
    out: list[str] = []
    try:
        with ledger.store.read() as txn:
            for e in txn.entries_of_types(["commission"]):
                if len(out) >= 2000:
                    break
                body = json.loads(__import__("base64").b64decode(json.loads(e.leaf_data)["payload"]))
                out.extend(i.split("/21/", 1)[1] for i in body["items"])
    finally:
        ledger.store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--db", default="both", help="sqlite, postgres, both (default), or a database URL")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--client-procs", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per phase (default 20)")
    ap.add_argument("--per-client", type=int, default=900, help="envelopes signed per client and phase")
    ap.add_argument("--mix", choices=["journeys", "commission"], default="journeys")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--scale-out", action="store_true", help="PostgreSQL: also one vs two app servers")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    print(f"web write load -- {os.cpu_count()} CPUs, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
    targets = []
    if args.db in ("sqlite", "both"):
        targets.append(("sqlite", None))
    if args.db in ("postgres", "both"):
        targets.append(("postgres", os.environ.get("WAYBILL_BENCH_POSTGRES_URL") or PG_DEFAULT))
    if args.db.startswith(("sqlite:", "postgresql")):
        targets.append(("sqlite" if args.db.startswith("sqlite") else "postgres", args.db))
    report: dict[str, Any] = {}
    for name, db in targets:
        try:
            with database(db) as (url, label):
                bench_backend(name, url, args, report)
        except Exception as exc:  # noqa: BLE001 - one backend down should not hide the other's figures
            if name == "postgres" and args.db == "both":
                print(f"\npostgres: skipped ({type(exc).__name__}: {exc})")
                continue
            raise
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
