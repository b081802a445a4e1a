#!/usr/bin/env python3
"""Witnessing and mirroring benchmark.

    python bench/witness_bench.py                  # 20k-entry ledger, 200 witnessed appends
    python bench/witness_bench.py --events 100000 --appends 500

Prints, from one run:
- mirror catch-up (entries/s: a fresh mirror copying the whole ledger over HTTP tiles, verifying every hash and
  signature) beside the ledger's own full audit rate, measured on the same ledger in the same run;
- the latency witnessing adds: from an append's acknowledgement to a checkpoint covering it that carries
  both witnesses' cosignatures, with two `tracker witness serve` processes on loopback (p50/p99).
Goals: mirror catch-up >= 50 % of the audit rate; witnessing p50 <= 250 ms, p99 <= 1 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from tests.c2sp.procs import tracker, witness_proc  # noqa: E402
from tracker.cosigning import cosigned_note  # noqa: E402
from tracker.keys import generate_keypair  # noqa: E402
from tracker.ledger import Ledger  # noqa: E402
from tracker.mirror import Mirror  # noqa: E402
from tracker.policy import check_checkpoint, parse_policy  # noqa: E402
from tracker.store import open_store  # noqa: E402


def serve(app) -> tuple[object, int]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_port


def mirror_vs_audit(tmp: Path, events: int) -> dict[str, float]:
    from ledger_gen import build_ledger

    from web import create_app
    from web.mirror_cli import HttpTileSource

    url = f"sqlite:///{tmp / 'source.db'}"
    print(f"building a {events:,}-event ledger (import mode)...", file=sys.stderr)
    build_ledger(url, events, seed=5, progress=False, mode="import")
    store = open_store(url, create=False)
    source = Ledger(store)
    t = time.perf_counter()
    report = source.audit()
    audit_rate = report.entries / (time.perf_counter() - t)
    server, port = serve(create_app({"LEDGER": source, "WAYBILL_WITNESSING": "0"}))
    mstore = open_store(f"sqlite:///{tmp / 'mirror.db'}")
    m = Mirror(mstore, log=source.note_verifier, name="bench.mirror/m", key=generate_keypair())
    result = m.sync(HttpTileSource(f"http://127.0.0.1:{port}/tlog"))
    mirror_rate = result.size / result.seconds
    server.shutdown()  # type: ignore[attr-defined]
    mstore.close()
    store.close()
    return {"entries": float(report.entries), "audit_rate": audit_rate, "mirror_rate": mirror_rate}


def witnessing_latency(tmp: Path, appends: int) -> list[float]:
    from tests.conftest import fixed_key
    from tests.web.conftest import commission  # a valid statement by a registered party of the scenarios
    from tracker.scenarios import Network, load_scenarios
    from web import create_app

    T0 = datetime.now(timezone.utc) - timedelta(days=1)
    store = open_store(f"sqlite:///{tmp / 'witnessed.db'}")
    ledger = Ledger.create(store, origin="bench.waybill/ledger", ledger_key=fixed_key("ledger"),
                           admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    {s.name: s for s in load_scenarios()}["genuine-cross-border"].play(net, n="BENCH")
    procs, lines = [], [f"log {ledger.vkey}"]
    for i in (1, 2):
        d = tmp / f"w{i}"
        out = tracker("witness", "init", "--dir", str(d), "--name", f"bench.witness/w{i}", "--log", ledger.vkey).stdout
        vkey = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("vkey: "))
        p = witness_proc(d).start()
        procs.append(p)
        lines.append(f"witness w{i} {vkey} {p.base}")
    policy = parse_policy("\n".join(lines + ["group both all w1 w2", "quorum both"]) + "\n")
    app = create_app({"LEDGER": ledger, "WAYBILL_WITNESS_POLICY": policy, "RATELIMIT_ENABLED": False})
    latencies = []
    try:
        for i in range(appends):
            env = commission([f"WB{i:06d}"])
            result = ledger.append(env, now=datetime.now(timezone.utc))
            acked = time.perf_counter()
            need = result.leaf_index + 1
            while True:
                check = check_checkpoint(cosigned_note(ledger), policy)
                if check.quorum_met and check.cosigned.checkpoint.size >= need:
                    break
                time.sleep(0.002)
            latencies.append(time.perf_counter() - acked)
            time.sleep(0.02)
    finally:
        app.extensions["waybill_collector"].stop()
        for p in procs:
            p.stop()
        store.close()
    return latencies


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="witness-bench-") as d:
        tmp = Path(d)
        mv = mirror_vs_audit(tmp, args.events)
        lat = witnessing_latency(tmp, args.appends)
    ratio = mv["mirror_rate"] / mv["audit_rate"]
    q = statistics.quantiles(lat, n=100)
    p50, p99 = statistics.median(lat), q[98]
    print(f"ledger entries          {mv['entries']:>12,.0f}")
    print(f"ledger audit            {mv['audit_rate']:>12,.0f} entries/s")
    print(f"mirror catch-up         {mv['mirror_rate']:>12,.0f} entries/s   {ratio:6.1%} of audit   "
          f"{'PASS' if ratio >= 0.5 else 'MISS'} (goal >= 50%)")
    print(f"witnessing latency p50  {p50 * 1000:>12.1f} ms          {'PASS' if p50 <= 0.25 else 'MISS'} (goal <= 250 ms)")
    print(f"witnessing latency p99  {p99 * 1000:>12.1f} ms          {'PASS' if p99 <= 1.0 else 'MISS'} (goal <= 1 s)")
    print(f"  ({len(lat)} appends, two witness processes on loopback, checkpoint to cosigned checkpoint)")
    if args.json:
        Path(args.json).write_text(json.dumps({**mv, "mirror_to_audit": ratio, "witness_p50_s": p50,
                                               "witness_p99_s": p99, "appends": len(lat)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
