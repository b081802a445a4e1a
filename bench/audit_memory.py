#!/usr/bin/env python3
"""Audit memory benchmark: peak memory of `Ledger.audit()` on ledgers of single appends (one signed checkpoint per
entry, as a ledger fed one handoff at a time stores them), at 10k and 100k entries.

The audit used to load every checkpoint before starting (about 710 bytes per entry on such a ledger); it now
streams entries and checkpoints together. Goal (verdicts issue): peak at 100k within 1.5x of the peak at 10k,
both measured in this run. Each audit runs in a fresh process, so one size's allocations cannot flatter another.

    python bench/audit_memory.py                  # 10k and 100k, SQLite in a temp dir
    python bench/audit_memory.py --sizes 2000 20000 --keep DIR
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL = 1.5
T0 = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)


def build(path: Path, size: int) -> float:
    """A ledger of ``size`` entries, each committed with its own checkpoint. Built inside few transactions by
    calling the ledger's own commit once per entry: the stored result is what ``size`` single appends leave,
    without waiting for ``size`` fsyncs."""
    from tracker import merkle
    from tracker.keys import keypair_from_seed
    from tracker.ledger import Ledger
    from tracker.scenarios import party_key
    from tracker.signing import new_statement, party_statement, sign_statement
    from tracker.statements import format_time, parse_statement
    from tracker.store import open_store

    started = time.perf_counter()
    store = open_store(f"sqlite:///{path}")
    admin, maker = keypair_from_seed(b"a" * 32), party_key("bench-maker")
    ledger = Ledger.create(store, origin="bench.waybill/audit", ledger_key=keypair_from_seed(b"l" * 32),
                           admin_key=admin, now=T0)
    doc = party_statement(admin="admin", time=T0, location={"name": "Registry", "country": "ZZ"},
                          party_id="bench-maker", name="Bench Maker", country="CN", roles=["manufacturer"],
                          keys=[{"public_key": maker.public_key_b64, "not_before": format_time(T0 - timedelta(days=1))}],
                          gs1_prefixes=["950600"])
    ledger.append(sign_statement(doc, admin), now=T0)
    done = ledger.size()
    while done < size:
        with store.write() as txn:
            frontier = merkle.CompactRange.from_store(txn.tree_size(), txn.nodes)
            for _ in range(min(5000, size - done)):
                st_doc = new_statement("commission", actor="bench-maker", time=T0 + timedelta(seconds=done),
                                       location={"name": "Plant", "country": "CN"},
                                       items=[f"01/09506000134352/21/A{done}"],
                                       product={"gtin": "09506000134352", "name": "Widget"})
                env = sign_statement(st_doc, maker)
                ledger._commit(txn, [(env, parse_statement(env.payload))], frontier, now=T0 + timedelta(days=1))
                done += 1
        print(f"  built {done}/{size}", file=sys.stderr, flush=True)
    store.close()
    return time.perf_counter() - started


def measure(path: Path) -> dict[str, float]:
    """Run in a child process: audit once, report the Python heap peak during the audit and the process RSS."""
    code = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, sys.argv[2])
from tracker.ledger import Ledger
from tracker.store import open_store
ledger = Ledger(open_store("sqlite:///" + sys.argv[1], create=False))
tracemalloc.start()
started = time.perf_counter()
report = ledger.audit()
seconds = time.perf_counter() - started
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"entries": report.entries, "checkpoints": report.checkpoints, "peak_bytes": peak,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "seconds": seconds}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(path), str(Path(__file__).resolve().parents[1])],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--keep", type=Path, help="build the ledgers in DIR and keep them")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="waybill-audit-mem-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    for size in args.sizes:
        path = workdir / f"audit-{size}.db"
        if not path.exists():
            print(f"building {size} single-append entries ...", file=sys.stderr)
            build(path, size)
        results[size] = measure(path)
    small, large = args.sizes
    ratio = results[large]["peak_bytes"] / results[small]["peak_bytes"]
    print(f"\nWaybill audit memory -- SQLite, one checkpoint per entry, {os.cpu_count()} CPUs, "
          f"{datetime.now(timezone.utc):%Y-%m-%d}")
    print(f"{'entries':>9} {'checkpoints':>12} {'peak heap':>11} {'bytes/entry':>12} {'max RSS':>9} {'audit s':>8}")
    for size in args.sizes:
        r = results[size]
        print(f"{r['entries']:>9} {r['checkpoints']:>12} {r['peak_bytes'] / 2**20:>9.1f}Mi "
              f"{r['peak_bytes'] / r['entries']:>12.1f} {r['maxrss_kib'] / 1024:>7.0f}Mi {r['seconds']:>8.1f}")
    verdict = "PASS" if ratio <= GOAL else "MISS"
    print(f"peak heap at {large} / at {small}: {ratio:.2f}x (goal <= {GOAL}x): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
