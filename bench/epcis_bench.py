#!/usr/bin/env python3
"""EPCIS import throughput: `tracker epcis import` (validate, map, plan prev, sign, append_batch) against the
native `Ledger.append_batch` of the same statements, measured in the same run, round by round.

Goal (issue): EPCIS import >= 50 % of the native append_batch rate. A benchmark, not a test: it prints
PASS/MISS and exits 0 unless something crashes.

Workload: rounds of 200 items; per round three parties' documents — the manufacturer's (200 commissioning +
200 shipping), the exporter's (200 receiving + 200 shipping) and the warehouse's (200 receiving): 1000 events,
every event naming one item, each with an eventID as the sending system assigned it. The native side appends
the same 1000 statements (pre-signed, as a device would send them) in the same three batches. Rounds alternate
native and EPCIS so both see the same machine conditions. A final sample imports events *without* eventIDs,
whose CBV 2.0 hash IDs the reference package must compute (printed, not part of the goal).

    python bench/epcis_bench.py --events 10000     # about 20 s
    python bench/epcis_bench.py                    # 100k events, SQLite in a temp dir
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.epcis.ingest import import_document, summary  # noqa: E402
from tracker.epcis.vocab import EPCIS_CONTEXT  # noqa: E402
from tracker.keys import KeyPair, keypair_from_seed  # noqa: E402
from tracker.ledger import AppendResult, Ledger  # noqa: E402
from tracker.signing import new_statement, party_statement, sign_statement  # noqa: E402
from tracker.statements import format_time  # noqa: E402
from tracker.store import open_store  # noqa: E402

GOAL = 0.50
ITEMS_PER_ROUND = 200
EVENTS_PER_ROUND = 5 * ITEMS_PER_ROUND
T_CREATE = datetime(2026, 2, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
PARTIES = [("acme", "Acme Manufacturing", "CN", "manufacturer", "950600"),
           ("pearl-export", "Pearl River Export", "CN", "exporter", None),
           ("hh-warehouse", "Hamburg Logistics", "DE", "warehouse", None)]
GTIN = "09506000134352"


def key(pid: str) -> KeyPair:
    return keypair_from_seed(pid.encode().ljust(32, b"-")[:32])


def new_ledger(path: Path) -> Ledger:
    store = open_store(f"sqlite:///{path}")
    admin = key("admin")
    ledger = Ledger.create(store, origin="waybill.bench/epcis", ledger_key=key("ledger"), admin_key=admin,
                           now=T_CREATE)
    for pid, name, country, role, prefix in PARTIES:
        doc = party_statement(admin="admin", time=T_CREATE + timedelta(minutes=1),
                              location={"name": "Registry", "country": "ZZ"}, party_id=pid, name=name,
                              country=country, roles=[role],
                              keys=[{"public_key": key(pid).public_key_b64, "not_before": format_time(T_CREATE)}],
                              gs1_prefixes=[prefix] if prefix else [])
        ledger.append(sign_statement(doc, admin), now=T_CREATE + timedelta(minutes=2))
    return ledger


def _t(round_no: int, step: int, n: int) -> datetime:
    return T0 + timedelta(hours=round_no, minutes=step * 10, milliseconds=n)


def epcis_round(r: int, *, ids: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The three documents of round ``r``."""
    def ev(step: int, n: int, action: str, biz: str, disp: str, epc: str, **extra: Any) -> dict[str, Any]:
        e = {"type": "ObjectEvent", "eventTime": _t(r, step, n).isoformat(timespec="milliseconds"),
             "eventTimeZoneOffset": "+00:00", "epcList": [epc], "action": action, "bizStep": biz,
             "disposition": disp, **extra}
        if ids:
            e["eventID"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'bench:{r}:{step}:{n}')}"
        return e

    def party(pid: str) -> str:
        return f"urn:waybill:epcis:party:{pid}"

    epcs = [f"urn:epc:id:sgtin:950600.0013435.R{r}N{n}" for n in range(ITEMS_PER_ROUND)]
    ship = lambda src, dst: {"sourceList": [{"type": "possessing_party", "source": party(src)}],  # noqa: E731
                             "destinationList": [{"type": "possessing_party", "destination": party(dst)}]}
    acme = [ev(0, n, "ADD", "commissioning", "active", e, ilmd={"cbvmda:lotNumber": f"L{r}"})
            for n, e in enumerate(epcs)]
    acme += [ev(1, n, "OBSERVE", "shipping", "in_transit", e, **ship("acme", "pearl-export")) for n, e in enumerate(epcs)]
    pearl = [ev(2, n, "OBSERVE", "receiving", "in_progress", e) for n, e in enumerate(epcs)]
    pearl += [ev(3, n, "OBSERVE", "shipping", "in_transit", e, **ship("pearl-export", "hh-warehouse"))
              for n, e in enumerate(epcs)]
    hh = [ev(4, n, "OBSERVE", "receiving", "in_progress", e) for n, e in enumerate(epcs)]

    def doc(events: list[dict[str, Any]]) -> dict[str, Any]:
        return {"@context": [EPCIS_CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": "2026-03-01T00:00:00Z", "epcisBody": {"eventList": events}}

    return [("acme", doc(acme)), ("pearl-export", doc(pearl)), ("hh-warehouse", doc(hh))]


def native_round(r: int) -> list[list[Any]]:
    """The same statements, signed natively with prev chained, as three batches (wire-form envelopes)."""
    loc = {"acme": {"name": "Acme Manufacturing", "country": "CN"},
           "pearl-export": {"name": "Pearl River Export", "country": "CN"},
           "hh-warehouse": {"name": "Hamburg Logistics", "country": "DE"}}
    batches: list[list[Any]] = [[], [], []]
    for n in range(ITEMS_PER_ROUND):
        item = f"01/{GTIN}/21/R{r}N{n}"

        def add(batch: int, stype: str, actor: str, step: int, prev: str | None, **fields: Any) -> str:
            doc = new_statement(stype, actor=actor, time=format_time(_t(r, step, n)), location=loc[actor],
                                prev={item: prev} if prev else None, items=[item], **fields)
            env = sign_statement(doc, key(actor))
            batches[batch].append(env.to_json())
            return env.event_id

        c = add(0, "commission", "acme", 0, None, product={"gtin": GTIN, "name": f"GTIN {GTIN}", "lot": f"L{r}"})
        s1 = add(0, "ship", "acme", 1, c, to="pearl-export")
        v1 = add(1, "receive", "pearl-export", 2, s1, from_="acme", ship=s1)
        s2 = add(1, "ship", "pearl-export", 3, v1, to="hh-warehouse")
        add(2, "receive", "hh-warehouse", 4, s2, from_="pearl-export", ship=s2)
    return [_reorder(b) for b in batches]


def _reorder(batch: list[Any]) -> list[Any]:
    """Commissions (or receives) first, then ships: the order the documents list them in."""
    return sorted(batch, key=lambda env: b'"type":"ship"' in base64.b64decode(env["payload"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="EPCIS events to import (multiple of 1000)")
    parser.add_argument("--hash-sample", type=int, default=1, help="rounds imported without eventIDs (1000 each)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds = max(1, args.events // EVENTS_PER_ROUND)
    now = T0 + timedelta(days=365)
    with tempfile.TemporaryDirectory(prefix="epcis-bench-") as tmp:
        native, epcis = new_ledger(Path(tmp) / "native.db"), new_ledger(Path(tmp) / "epcis.db")
        native_s, epcis_s, ratios = 0.0, 0.0, []
        prep = time.perf_counter()
        print(f"{rounds} rounds of {EVENTS_PER_ROUND} events (3 parties' documents per round), SQLite", flush=True)
        for r in range(rounds):
            batches, docs = native_round(r), epcis_round(r)
            t = time.perf_counter()
            for batch in batches:
                results = native.append_batch(batch, now=now)
                assert all(isinstance(x, AppendResult) and x.created for x in results), results[:3]
            n_s = time.perf_counter() - t
            t = time.perf_counter()
            for pid, doc in docs:
                imported = import_document(epcis, doc, key=key(pid), now=now)
                counts = summary(imported)
                assert counts["created"] == len(imported), [x.to_json() for x in imported if x.status != "created"][:3]
            e_s = time.perf_counter() - t
            native_s, epcis_s = native_s + n_s, epcis_s + e_s
            ratios.append(n_s / e_s)
            if (r + 1) % max(1, rounds // 10) == 0:
                print(f"  round {r + 1}/{rounds}: native {EVENTS_PER_ROUND / n_s:,.0f} ev/s, "
                      f"EPCIS {EVENTS_PER_ROUND / e_s:,.0f} ev/s", flush=True)
        total = rounds * EVENTS_PER_ROUND
        hash_s, hash_events = 0.0, 0
        for h in range(args.hash_sample):
            docs = epcis_round(rounds + h, ids=False)
            t = time.perf_counter()
            for pid, doc in docs:
                import_document(epcis, doc, key=key(pid), now=now)
            hash_s += time.perf_counter() - t
            hash_events += EVENTS_PER_ROUND
        native_rate, epcis_rate = total / native_s, total / epcis_s
        ratio = epcis_rate / native_rate
        verdict = "PASS" if ratio >= GOAL else "MISS"
        print(f"native append_batch : {native_rate:10,.0f} events/s  ({total:,} events, {native_s:.1f} s)")
        print(f"EPCIS import        : {epcis_rate:10,.0f} events/s  ({total:,} events, {epcis_s:.1f} s)  "
              f"{ratio:.0%} of native (goal >= {GOAL:.0%}; per-round median {statistics.median(ratios):.0%})  "
              f"{verdict}")
        if hash_events:
            print(f"EPCIS import, no eventIDs (hash IDs computed): {hash_events / hash_s:,.0f} events/s "
                  f"({hash_events:,} events; not part of the goal)")
        print(f"wall time {time.perf_counter() - prep:.0f} s")
        if args.json:
            args.json.write_text(json.dumps({"events": total, "native_rate": native_rate, "epcis_rate": epcis_rate,
                                             "ratio": ratio, "verdict": verdict,
                                             "no_id_rate": hash_events / hash_s if hash_events else None}, indent=1))
        native.store.close()
        epcis.store.close()


if __name__ == "__main__":
    main()
