#!/usr/bin/env python3
"""Synthetic ledger generator for benchmarks: a realistic multi-country supply chain, signed and appended
through the real admission path (tracker.ledger.Ledger.append_batch, batches of 1000), cached on disk.

    python bench/ledger_gen.py --events 1000000                 # build (or reuse) bench/out/ledger-1000000-s1-*.db
    python bench/ledger_gen.py --events 10000 --seed 7 --cache-dir /tmp/wb
    python bench/ledger_gen.py --events 50000 --db sqlite:////tmp/x.db   # build into a given (empty) database

From Python:

    from ledger_gen import build_ledger, cached_ledger
    stats = build_ledger("sqlite:////tmp/l.db", 100_000, seed=1, progress=True)   # into an empty database
    built = cached_ledger(1_000_000, seed=1, cache_dir="bench/out", progress=True) # built once, reused after
    built.url, built.manifest_path, built.stats

The network: 5 manufacturers (CN, VN, HK, DE, FR), 3 exporters, customs, a warehouse and a courier in each of
3 destination countries (DE, US, FR) and 8 retailers -- 6 countries in all, 2 device keys per party, every key
deterministic (tracker.scenarios.party_key). Goods move in lots of 1-12 items; 30 % of lots are packed on a
pallet (SSCC, tracker.scenarios.make_sscc). A lot's route: commission -> [aggregate] -> [ship to the exporter ->
receive] -> ship to the destination warehouse -> inspect `released` by the destination's customs when the goods
cross a border (a few are held first; a very few are held and never released) -> receive -> [disaggregate] -> split
into 1-3 deliveries, each straight to a retailer or via a courier -> receive -> `sell`, item by item, for about
60 % of the items. An item's path is ~6-12 events (container moves count while it is on the pallet).

A new lot starts every LOT_INTERVAL of simulated time and lots take weeks, so thousands are in flight at once
and each item's events are spread through the ledger. Statements are emitted in time order; `prev` links
are computed locally from the heads the generator keeps (event id = SHA-256 of the payload, known before
signing). Each batch of 1000 goes to Ledger.append_batch with a simulated `now` just after its last
statement (SPEC: time <= now + 5 min). `events` counts supply-chain statements; the ledger also holds the
genesis entry and one `party` entry per party.

Throughput is bounded by the ledger's own append path (admission: parse, Ed25519 verify, reference queries),
not by the generator, which signs a few thousand statements per second. `--mode import` stores the very same
envelopes through Ledger.import_envelopes (same bytes, same Merkle root, no admission checks), ~2-3x faster.

Alongside the database an items manifest (TSV: key, path length, final state) is written, so benchmarks
can pick items by path length without scanning the ledger. Cached builds are keyed by events+seed+generator
version and written under a temporary name, renamed only when complete.
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(HERE.parent))

from tracker.dsse import event_id_of, sign_envelope  # noqa: E402
from tracker.identifiers import gs1_check_digit  # noqa: E402
from tracker.notes import commit_note  # noqa: E402
from tracker.ledger import MAX_BATCH, Ledger  # noqa: E402
from tracker.scenarios import make_sscc, party_key  # noqa: E402
from tracker.signing import party_statement, sign_statement  # noqa: E402
from tracker.statements import format_time, statement_bytes  # noqa: E402
from tracker.store import open_store  # noqa: E402

__all__ = ["build_ledger", "cached_ledger", "GenStats", "CachedLedger", "read_manifest", "GEN_VERSION",
           "DEFAULT_CACHE_DIR", "ORIGIN"]

GEN_VERSION = 1  # bump when the generated content changes: cached ledgers are keyed by it
DEFAULT_CACHE_DIR = HERE / "out"
ORIGIN = "waybill.bench/lookup"
BATCH = MAX_BATCH  # 1000

T_CREATE = datetime(2025, 12, 1, 8, 0, 0, tzinfo=timezone.utc)     # ledger genesis
T_PARTIES = T_CREATE + timedelta(days=1)                           # parties registered
T_START = int(datetime(2026, 1, 5, 6, 0, 0, tzinfo=timezone.utc).timestamp())  # first lot (epoch seconds)
LOT_INTERVAL = 120    # simulated seconds between two lot starts
HOUR = 3600
DAY = 24 * HOUR

# --- the network ------------------------------------------------------------------------------------------

# id, name, country, roles, GS1 company prefixes, site
PARTIES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("acme-cn", "Acme Manufacturing Shenzhen", "CN", ("manufacturer",), ("950600",), "Acme Plant 2, Bao'an, Shenzhen"),
    ("lotus-vn", "Lotus Textiles", "VN", ("manufacturer",), ("893123",), "Lotus Mill, Binh Duong"),
    ("kowloon-hk", "Kowloon Precision Instruments", "HK", ("manufacturer",), ("489123",),
     "Kowloon Precision, Kwun Tong Assembly Hall 3"),
    ("rheinwerk-de", "Rheinwerk Tools", "DE", ("manufacturer",), ("400555",), "Rheinwerk Werk Nord, Ludwigshafen"),
    ("lyon-cosmetiques", "Lyon Cosmetiques", "FR", ("manufacturer",), ("360123",), "Usine de Vaise, Lyon"),
    ("pearl-export", "Pearl River Export", "CN", ("exporter",), (), "Yantian Port Terminal, Shenzhen"),
    ("saigon-export", "Saigon Export Co.", "VN", ("exporter",), (), "Cat Lai Terminal, Ho Chi Minh City"),
    ("victoria-export", "Victoria Harbour Forwarding", "HK", ("exporter",), (), "Kwai Tsing Terminal 9, Hong Kong"),
    ("de-customs", "German Customs Hamburg", "DE", ("customs",), (), "Zollamt Waltershof, Hamburg"),
    ("us-customs", "US Customs Newark", "US", ("customs",), (), "CBP Port Newark, NJ"),
    ("fr-customs", "French Customs Le Havre", "FR", ("customs",), (), "Bureau de douane du Havre Port"),
    ("hh-warehouse", "Hamburg Logistics", "DE", ("warehouse",), (), "Hamburg Logistics Hub, Altenwerder"),
    ("nj-warehouse", "Newark Fulfilment", "US", ("warehouse",), (), "Newark Fulfilment Center, Elizabeth NJ"),
    ("havre-warehouse", "Le Havre Entrepots", "FR", ("warehouse",), (), "Entrepot Port 2000, Le Havre"),
    ("rhein-express", "Rhein Express", "DE", ("courier",), (), "Rhein Express Depot, Koeln"),
    ("liberty-courier", "Liberty Courier", "US", ("courier",), (), "Liberty Courier Hub, Secaucus NJ"),
    ("seine-express", "Seine Express", "FR", ("courier",), (), "Seine Express, Gennevilliers"),
    ("berlin-shop", "Berlin Retail", "DE", ("retailer",), (), "Berlin Retail, Friedrichstrasse"),
    ("munich-shop", "Munich Electronics", "DE", ("retailer",), (), "Munich Electronics, Kaufingerstrasse"),
    ("koeln-shop", "Koeln Kaufhaus", "DE", ("retailer",), (), "Koeln Kaufhaus, Hohe Strasse"),
    ("brooklyn-shop", "Brooklyn Goods", "US", ("retailer",), (), "Brooklyn Goods, Atlantic Ave"),
    ("boston-shop", "Boston Outfitters", "US", ("retailer",), (), "Boston Outfitters, Newbury St"),
    ("chicago-shop", "Chicago Supply", "US", ("retailer",), (), "Chicago Supply, State St"),
    ("paris-shop", "Paris Boutique", "FR", ("retailer",), (), "Paris Boutique, Rue de Rivoli"),
    ("lyon-shop", "Lyon Marche", "FR", ("retailer",), (), "Lyon Marche, Rue de la Republique"),
)
DEVICES = 2
COUNTRY = {p[0]: p[2] for p in PARTIES}
SITE = {p[0]: p[5] for p in PARTIES}

# manufacturer -> (weight, exporter or None, [(gtin body without check digit, product name)], {destination: weight})
MAKERS: dict[str, tuple[int, str | None, list[tuple[str, str]], dict[str, int]]] = {
    "acme-cn": (30, "pearl-export", [("0950600013435", "Aurora wireless earbuds"),
                                     ("0950600013436", "Aurora charging case"),
                                     ("0950600013437", "Aurora smart watch")], {"DE": 4, "US": 5, "FR": 2}),
    "lotus-vn": (20, "saigon-export", [("0893123000101", "Lotus merino sweater"),
                                       ("0893123000102", "Lotus silk scarf")], {"US": 5, "FR": 3, "DE": 2}),
    "kowloon-hk": (15, "victoria-export", [("0489123000011", "Digital torque wrench 40-200 Nm"),
                                           ("0489123000012", "Vernier caliper 0-150 mm")], {"US": 3, "DE": 2}),
    "rheinwerk-de": (20, None, [("0400555000021", "Rheinwerk cordless drill"),
                                ("0400555000022", "Rheinwerk impact driver")], {"DE": 5, "FR": 2, "US": 2}),
    "lyon-cosmetiques": (15, None, [("0360123000051", "Eau de parfum 50 ml"),
                                    ("0360123000052", "Hydrating face cream 75 ml")], {"FR": 4, "DE": 3, "US": 1}),
}
# destination -> (warehouse, customs, courier, retailers)
DESTINATIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "DE": ("hh-warehouse", "de-customs", "rhein-express", ("berlin-shop", "munich-shop", "koeln-shop")),
    "US": ("nj-warehouse", "us-customs", "liberty-courier", ("brooklyn-shop", "boston-shop", "chicago-shop")),
    "FR": ("havre-warehouse", "fr-customs", "seine-express", ("paris-shop", "lyon-shop")),
}
P_PALLET = 0.30        # lots packed on a pallet
P_COURIER = 0.30       # deliveries via a courier rather than straight to the retailer
P_SELL = 0.60          # items sold to a consumer (the rest stay in the shop)
P_HELD = 0.02          # border crossings held by customs before release
P_HELD_FOREVER = 0.003  # ... and never released


def _gtin(body: str) -> str:
    return body + str(gs1_check_digit(body))


def _ts(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


def _dt(sec: int) -> datetime:
    return datetime.fromtimestamp(sec, tz=timezone.utc)


# --- results ----------------------------------------------------------------------------------------------

@dataclass
class GenStats:
    events: int = 0                  # supply-chain statements appended
    ledger_size: int = 0             # events + genesis + parties
    lots: int = 0
    items: int = 0
    pallets: int = 0
    seconds: float = 0.0
    sign_seconds: float = 0.0        # building + signing statements
    append_seconds: float = 0.0      # Ledger.append_batch
    seed: int = 0
    mode: str = "append"             # append (Ledger.append_batch) or import (Ledger.import_envelopes)
    gen_version: int = GEN_VERSION
    path_hist: dict[int, int] = field(default_factory=dict)   # path length -> items
    states: dict[str, int] = field(default_factory=dict)      # final state -> items

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class CachedLedger:
    url: str
    db_path: Path
    manifest_path: Path
    stats: GenStats
    reused: bool


# --- progress --------------------------------------------------------------------------------------------

class _Progress:
    """One updating line on stderr (\\r on a terminal; on a pipe a line every ~5 % or 15 s)."""

    def __init__(self, label: str) -> None:
        self.label, self.t0, self.tty = label, time.perf_counter(), sys.stderr.isatty()
        self._next_frac, self._next_t = 0.0, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        frac = done / total if total else 1.0
        if not self.tty and frac < self._next_frac and now < self._next_t and done < total:
            return
        self._next_frac, self._next_t = frac + 0.05, now + 15
        el = now - self.t0
        rate = done / el if el > 0 else 0.0
        eta = (total - done) / rate if rate else 0.0
        line = f"  {self.label}: {done:>9,}/{total:,} ({frac:6.1%})  {rate:8,.0f} ev/s  eta {eta:5.0f}s"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if done >= total else ""))
            sys.stderr.flush()
        else:
            print(line, file=sys.stderr, flush=True)


# --- the workload ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Step:
    t: int                      # epoch seconds
    type: str
    actor: str
    keys: list[str]             # what the statement's `items` lists
    container: str | None = None
    to: str | None = None
    ship_step: int | None = None  # receive: index of its ship step in the lot plan
    decision: str | None = None
    product: dict[str, str] | None = None


@dataclass(slots=True)
class _Lot:
    seq: int
    items: list[str]
    pallet: str | None
    plan: list[_Step]
    state: dict[str, str]       # item -> final state if the plan completes
    pos: int = 0
    eids: list[str] = field(default_factory=list)


class _Planner:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.makers = list(MAKERS)
        self.maker_w = [MAKERS[m][0] for m in self.makers]
        self.ssccs: set[str] = set()

    def _hours(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * HOUR)

    def lot(self, seq: int, start: int) -> _Lot:
        rng = self.rng
        maker = rng.choices(self.makers, self.maker_w)[0]
        _, exporter, products, dests = MAKERS[maker]
        body, pname = products[(seq // 25) % len(products)]  # production runs of 25 lots per product
        gtin = _gtin(body)
        dest = rng.choices(list(dests), list(dests.values()))[0]
        warehouse, customs, courier, shops = DESTINATIONS[dest]
        palletised = rng.random() < P_PALLET
        n = rng.randint(4, 12) if palletised else rng.choices((1, 2, 3, 4, 6), (30, 25, 20, 15, 10))[0]
        items = [f"01/{gtin}/21/L{seq:07d}S{i:02d}" for i in range(n)]
        pallet = None
        if palletised:
            label = f"bench:{seq}"
            sscc = make_sscc(label, prefix=MAKERS_PREFIX[maker])
            while sscc in self.ssccs:  # make_sscc keeps ~10 digits of a hash: avoid the odd collision
                label += "+"
                sscc = make_sscc(label, prefix=MAKERS_PREFIX[maker])
            self.ssccs.add(sscc)
            pallet = "00/" + sscc
        plan: list[_Step] = []
        state = {k: "stock" for k in items}
        t = start
        plan.append(_Step(t, "commission", maker, items,
                          product={"gtin": gtin, "name": pname, "lot": f"LOT{seq:07d}",
                                   "expiry": f"{2027 + seq % 3}-{1 + seq % 12:02d}-28"}))
        if pallet:
            t += self._hours(0.5, 3)
            plan.append(_Step(t, "aggregate", maker, items, container=pallet))
        unit = [pallet] if pallet else items
        holder = maker
        if exporter:
            t += self._hours(4, 30)
            plan.append(_Step(t, "ship", maker, unit, to=exporter))
            t += self._hours(10, 48)
            plan.append(_Step(t, "receive", exporter, unit, ship_step=len(plan) - 1))
            holder = exporter
        t += self._hours(6, 48)
        plan.append(_Step(t, "ship", holder, unit, to=warehouse))
        ship_idx = len(plan) - 1
        if COUNTRY[holder] != dest:
            t += self._hours(24 * 3, 24 * 21) if COUNTRY[holder] in ("CN", "VN", "HK") else self._hours(12, 60)
            r = rng.random()
            if r < P_HELD:
                plan.append(_Step(t, "inspect", customs, unit, decision="held"))
                if r < P_HELD_FOREVER:
                    return _Lot(seq=seq, items=items, pallet=pallet, plan=plan, state=dict.fromkeys(items, "held"))
                t += self._hours(24, 24 * 6)
            plan.append(_Step(t, "inspect", customs, unit, decision="released"))
            t += self._hours(2, 30)
        else:
            t += self._hours(8, 36)
        plan.append(_Step(t, "receive", warehouse, unit, ship_step=ship_idx))
        if pallet:
            t += self._hours(2, 12)
            plan.append(_Step(t, "disaggregate", warehouse, items, container=pallet))
        # split into 1-3 deliveries
        order = items[:]
        rng.shuffle(order)
        k = min(len(order), rng.choices((1, 2, 3), (50, 35, 15))[0])
        cuts = sorted(rng.sample(range(1, len(order)), k - 1)) if k > 1 else []
        groups = [order[a:b] for a, b in zip([0] + cuts, cuts + [len(order)])]
        for g in groups:
            tg = t + self._hours(6, 96)
            shop = rng.choice(shops)
            if rng.random() < P_COURIER:
                plan.append(_Step(tg, "ship", warehouse, g, to=courier))
                tg += self._hours(2, 12)
                plan.append(_Step(tg, "receive", courier, g, ship_step=len(plan) - 1))
                tg += self._hours(4, 36)
                plan.append(_Step(tg, "ship", courier, g, to=shop))
            else:
                plan.append(_Step(tg, "ship", warehouse, g, to=shop))
            tg += self._hours(6, 72)
            plan.append(_Step(tg, "receive", shop, g, ship_step=len(plan) - 1))
            for item in g:
                if rng.random() < P_SELL:
                    plan.append(_Step(tg + self._hours(2, 24 * 40), "sell", shop, [item]))
                    state[item] = "sold"
        # time order within the lot (stable: a receive always follows its ship, both are on one track)
        order_idx = sorted(range(len(plan)), key=lambda i: plan[i].t)
        remap = {old: new for new, old in enumerate(order_idx)}
        plan = [plan[i] for i in order_idx]
        for st in plan:
            if st.ship_step is not None:
                st.ship_step = remap[st.ship_step]
        return _Lot(seq=seq, items=items, pallet=pallet, plan=plan, state=state)


MAKERS_PREFIX = {p[0]: p[4][0] for p in PARTIES if p[4]}


class _Signer:
    """The parties' device keys and locations."""

    def __init__(self, key_seed: str) -> None:
        self.keys = {p[0]: [party_key(p[0], n, seed=key_seed) for n in range(DEVICES)] for p in PARTIES}
        self.loc = {p[0]: {"name": p[5], "country": p[2]} for p in PARTIES}


def _events(total: int, rng: random.Random, signer: _Signer, stats: GenStats,
            manifest: list[tuple[str, int, str]]) -> Iterator[tuple[Any, int]]:
    """Yield (signed Envelope, statement epoch seconds) in ledger order, exactly ``total`` of them."""
    planner = _Planner(rng)
    heap: list[tuple[int, int, _Lot]] = []
    heads: dict[str, str] = {}
    contents: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    planned = 0
    seq = 0
    next_start = T_START
    keys, loc = signer.keys, signer.loc
    choice = rng.random
    while True:
        if planned < total and (not heap or next_start <= heap[0][0]):
            lot = planner.lot(seq, next_start)
            if planned + len(lot.plan) > total:
                lot.plan = lot.plan[:total - planned]
                # items whose plan was cut: their final state is whatever the cut plan leaves
                lot.state = dict.fromkeys(lot.items, "cut")
            planned += len(lot.plan)
            stats.lots += 1
            stats.items += len(lot.items)
            stats.pallets += lot.pallet is not None
            for k in lot.items:
                counts[k] = 0
            heapq.heappush(heap, (lot.plan[0].t, seq, lot))
            seq += 1
            next_start += LOT_INTERVAL + int(rng.uniform(-30, 30))
            continue
        if not heap:
            break
        _, lseq, lot = heapq.heappop(heap)
        st = lot.plan[lot.pos]
        touched = ([st.container] if st.container else []) + st.keys
        doc: dict[str, Any] = {"v": 1, "type": st.type, "actor": st.actor, "time": _ts(st.t),
                               "location": loc[st.actor]}
        if st.type != "commission":
            doc["prev"] = {k: heads[k] for k in touched if k in heads}
        if st.container:
            doc["container"] = st.container
        doc["items"] = st.keys
        if st.type == "commission":
            doc["product"] = st.product
        elif st.type == "ship":
            doc["to"] = st.to
        elif st.type == "receive":
            ship = lot.plan[st.ship_step]
            doc["from"] = ship.actor
            doc["ship"] = lot.eids[st.ship_step]
        elif st.type == "inspect":
            doc["decision"] = st.decision
            if st.decision == "held":
                # only the salted commitment is signed (tracker/notes.py); the note itself stays off the ledger
                doc["note_commitment"] = commit_note("Documents incomplete: held for physical inspection",
                                                     salt=hashlib.sha256(statement_bytes(doc)).digest()[:16])[0]
        payload = statement_bytes(doc)
        eid = event_id_of(payload)
        device = keys[st.actor][0 if choice() < 0.7 else 1]
        env = sign_envelope(payload, [device])
        lot.eids.append(eid)
        # heads and path lengths (an item inside a container follows the container's events)
        on_path: set[str] = set()
        for k in touched:
            heads[k] = eid
            inside = contents.get(k)
            if inside is not None:
                for item in inside:
                    heads[item] = eid
                on_path.update(inside)
            elif k[1] == "1":  # "01/..." an item
                on_path.add(k)
        for item in on_path:
            counts[item] += 1
        if st.type == "aggregate":
            contents[st.container] = list(st.keys)
        elif st.type == "disaggregate":
            contents.pop(st.container, None)
        yield env, st.t
        lot.pos += 1
        if lot.pos < len(lot.plan):
            heapq.heappush(heap, (lot.plan[lot.pos].t, lseq, lot))
        else:  # lot done: forget its heads, record its items
            for k in lot.items:
                heads.pop(k, None)
                n = counts.pop(k)
                state = lot.state[k]
                manifest.append((k, n, state))
                stats.path_hist[n] = stats.path_hist.get(n, 0) + 1
                stats.states[state] = stats.states.get(state, 0) + 1
            if lot.pallet:
                heads.pop(lot.pallet, None)
                contents.pop(lot.pallet, None)


# --- building --------------------------------------------------------------------------------------------

def _party_envelopes(signer: _Signer, admin_key) -> list[Any]:
    out = []
    for i, (pid, name, country, roles, prefixes, site) in enumerate(PARTIES):
        doc = party_statement(
            admin="admin", time=T_PARTIES + timedelta(minutes=i), location={"name": "Waybill registry", "country": "DE"},
            party_id=pid, name=name, country=country, roles=roles,
            keys=[{"public_key": k.public_key_b64, "not_before": format_time(T_PARTIES)} for k in signer.keys[pid]],
            gs1_prefixes=prefixes)
        out.append(sign_statement(doc, admin_key))
    return out


def _batches(events: int, seed: int, key_seed: str, stats: GenStats,
             manifest: list[tuple[str, int, str]]) -> Iterator[tuple[list[tuple[bytes, str, bytes]], int]]:
    """Signed statements in batches of BATCH as (payload, keyid, signature) triples, with the batch's last
    statement time. Fills ``stats`` (lots, items, histograms, sign_seconds) and ``manifest`` as it goes."""
    rng = random.Random(seed)
    batch: list[tuple[bytes, str, bytes]] = []
    last_t = T_START
    t = time.perf_counter()
    for env, last_t in _events(events, rng, _Signer(key_seed), stats, manifest):
        sig = env.signatures[0]
        batch.append((env.payload, sig.keyid, sig.sig))
        if len(batch) >= BATCH:
            stats.sign_seconds += time.perf_counter() - t
            yield batch, last_t
            batch = []
            t = time.perf_counter()
    stats.sign_seconds += time.perf_counter() - t
    if batch:
        yield batch, last_t


def _producer(q: Any, events: int, seed: int, key_seed: str) -> None:  # runs in a child process
    try:
        stats, manifest = GenStats(seed=seed), []
        for item in _batches(events, seed, key_seed, stats, manifest):
            q.put(("batch", *item))
        q.put(("done", stats, manifest))
    except BaseException:  # noqa: BLE001 - report anything to the parent
        import traceback

        q.put(("error", traceback.format_exc(), None))


def _from_producer(events: int, seed: int, key_seed: str, stats: GenStats,
                   manifest: list[tuple[str, int, str]]) -> Iterator[tuple[list[tuple[bytes, str, bytes]], int]]:
    """Like _batches, but generated and signed in a child process (overlapping with append_batch here)."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("fork")
    q = ctx.Queue(maxsize=8)
    proc = ctx.Process(target=_producer, args=(q, events, seed, key_seed), name="ledger-gen-producer", daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, a, b = q.get(timeout=5)
            except queue_mod.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the generator process died (exit code {proc.exitcode})") from None
                continue
            if kind == "batch":
                yield a, b
            elif kind == "done":
                child: GenStats = a
                for f in ("lots", "items", "pallets", "sign_seconds", "path_hist", "states"):
                    setattr(stats, f, getattr(child, f))
                manifest.extend(b)
                break
            else:
                raise RuntimeError(f"the generator process failed:\n{a}")
        proc.join(timeout=30)
    finally:
        if proc.is_alive():
            proc.terminate()  # only on an error path: the process we started above
            proc.join(timeout=5)
        q.close()


def build_ledger(url: str, events: int, *, seed: int = 1,
                 progress: bool | Callable[[int, int], None] | None = True,
                 manifest_path: str | os.PathLike[str] | None = None, mode: str = "append",
                 workers: int | None = None) -> GenStats:
    """Create a ledger in the empty database at ``url`` and append ``events`` supply-chain statements
    (plus genesis and the party registrations). Deterministic for a given ``seed``: the same seed gives the
    same bytes, hence the same Merkle root, whatever ``mode`` or ``workers``.

    ``progress``: True for a progress line on stderr, a callable(done, total), or None/False.
    ``manifest_path``: where to write the items manifest (TSV: key, path length, final state).
    ``mode``: "append" (default) admits every statement through Ledger.append_batch -- signature, role, clock
    and reference checks, as a server would; "import" stores the very same envelopes through
    Ledger.import_envelopes (shape checks only), a few times faster, for when the generator is trusted.
    ``workers``: 1 generates and signs in a child process while this one appends (helps on an idle multi-core
    machine); 0 (default) does everything in this process.
    Returns the generation statistics."""
    from tracker.dsse import PAYLOAD_TYPE, Envelope, Signature

    if events < 1:
        raise ValueError("events must be >= 1")
    if mode not in ("append", "import"):
        raise ValueError("mode is 'append' or 'import'")
    if workers is None:
        workers = 0
    report = _Progress(f"generate {events:,} ({mode})") if progress is True else (progress or None)
    key_seed = f"waybill-bench-{seed}"
    stats = GenStats(seed=seed, mode=mode)
    manifest: list[tuple[str, int, str]] = []
    t0 = time.perf_counter()
    store = open_store(url)
    source = None
    try:
        with store.read() as txn:
            if txn.tree_size():
                raise RuntimeError(f"{url} already holds a ledger; build_ledger needs an empty database")
        admin_key = party_key("admin", seed=key_seed)
        ledger = Ledger.create(store, origin=ORIGIN, ledger_key=party_key("ledger", seed=key_seed),
                               admin_key=admin_key, now=T_CREATE)
        for r in ledger.append_batch(_party_envelopes(_Signer(key_seed), admin_key),
                                     now=T_PARTIES + timedelta(hours=1)):
            if isinstance(r, Exception):
                raise r
        append = ledger.append_batch if mode == "append" else ledger.import_envelopes
        source = (_from_producer if workers else _batches)(events, seed, key_seed, stats, manifest)
        done = 0
        for raw, last_t in source:
            batch = [Envelope(payload_type=PAYLOAD_TYPE, payload=p, signatures=(Signature(keyid=k, sig=sg),))
                     for p, k, sg in raw]
            t = time.perf_counter()
            results = append(batch, now=_dt(last_t + 60))
            stats.append_seconds += time.perf_counter() - t
            for env, r in zip(batch, results):
                if isinstance(r, Exception) or not r.created:
                    raise RuntimeError(f"generator bug: event {env.event_id} was refused or duplicated: {r!r}\n"
                                       f"{env.payload.decode()}")
            done += len(batch)
            if report:
                report(done, events)
        stats.events = done
        stats.ledger_size = ledger.size()
    finally:
        if source is not None:
            source.close()
        store.close()
    stats.seconds = time.perf_counter() - t0
    stats.path_hist = dict(sorted(stats.path_hist.items()))
    if manifest_path is not None:
        with open(manifest_path, "w") as fh:
            fh.write("# key\tpath_length\tstate\n")
            fh.writelines(f"{k}\t{n}\t{s}\n" for k, n, s in manifest)
    return stats


def read_manifest(path: str | os.PathLike[str]) -> list[tuple[str, int, str]]:
    """The items manifest: (item key, path length in events, final state)."""
    out = []
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            k, n, s = line.rstrip("\n").split("\t")
            out.append((k, int(n), s))
    return out


def cache_name(events: int, seed: int) -> str:
    return f"ledger-{events}-s{seed}-v{GEN_VERSION}"


def cached_ledger(events: int, *, seed: int = 1, cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
                  progress: bool | Callable[[int, int], None] | None = True, rebuild: bool = False,
                  mode: str = "append", workers: int | None = None) -> CachedLedger:
    """A SQLite ledger of ``events`` statements for ``seed`` under ``cache_dir``: reused when a complete build
    is there, otherwise generated (into a temporary name, renamed when complete)."""
    cache = Path(cache_dir).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    name = cache_name(events, seed)
    db, man, meta = cache / f"{name}.db", cache / f"{name}.items.tsv", cache / f"{name}.json"
    if not rebuild and db.exists() and man.exists() and meta.exists():
        info = json.loads(meta.read_text())
        stats = GenStats(**{k: v for k, v in info.items() if k in GenStats.__dataclass_fields__})
        stats.path_hist = {int(k): v for k, v in stats.path_hist.items()}
        return CachedLedger(url=f"sqlite:///{db}", db_path=db, manifest_path=man, stats=stats, reused=True)
    tmp = cache / f".{name}.{os.getpid()}.tmp"
    for p in (tmp.with_suffix(".db"), tmp.with_suffix(".db-wal"), tmp.with_suffix(".db-shm"), tmp.with_suffix(".tsv")):
        p.unlink(missing_ok=True)
    tmp_db, tmp_man = tmp.with_suffix(".db"), tmp.with_suffix(".tsv")
    try:
        stats = build_ledger(f"sqlite:///{tmp_db}", events, seed=seed, progress=progress, manifest_path=tmp_man,
                             mode=mode, workers=workers)
    except BaseException:
        for p in (tmp_db, Path(str(tmp_db) + "-wal"), Path(str(tmp_db) + "-shm"), tmp_man):
            p.unlink(missing_ok=True)
        raise
    for suffix in ("-wal", "-shm"):  # store.close() checkpoints the WAL; leftovers would be stale
        Path(str(tmp_db) + suffix).unlink(missing_ok=True)
    os.replace(tmp_db, db)
    os.replace(tmp_man, man)
    meta.write_text(json.dumps({**asdict(stats), "rate": stats.rate, "built_at": datetime.now(timezone.utc)
                                .strftime("%Y-%m-%dT%H:%M:%SZ")}, indent=1) + "\n")
    return CachedLedger(url=f"sqlite:///{db}", db_path=db, manifest_path=man, stats=stats, reused=False)


def describe(stats: GenStats) -> str:
    hist = " ".join(f"{k}:{v}" for k, v in stats.path_hist.items())
    mean = (sum(k * v for k, v in stats.path_hist.items()) / max(sum(stats.path_hist.values()), 1))
    return (f"{stats.events:,} events (ledger size {stats.ledger_size:,}), {stats.lots:,} lots, {stats.items:,} items, "
            f"{stats.pallets:,} pallets; {stats.seconds:.1f}s = {stats.rate:,.0f} ev/s "
            f"(generate+sign {stats.sign_seconds:.1f}s, "
            f"{'append_batch' if stats.mode == 'append' else 'import_envelopes'} {stats.append_seconds:.1f}s)\n"
            f"  item path length: mean {mean:.2f}; histogram {hist}\n"
            f"  final states: {stats.states}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="supply-chain statements (default 100000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="where cached ledgers live (default bench/out/)")
    ap.add_argument("--rebuild", action="store_true", help="regenerate even if a cached build exists")
    ap.add_argument("--db", help="build into this (empty) database URL instead of the cache")
    ap.add_argument("--manifest", help="with --db: write the items manifest here")
    ap.add_argument("--mode", choices=("append", "import"), default="append",
                    help="append: full admission via Ledger.append_batch (default); import: the same envelopes via "
                         "Ledger.import_envelopes (shape checks only, faster; identical ledger)")
    ap.add_argument("--workers", type=int, choices=(0, 1), default=None,
                    help="1: generate+sign in a child process while appending; 0: one process (default)")
    args = ap.parse_args(argv)
    if args.db:
        stats = build_ledger(args.db, args.events, seed=args.seed, progress=True, manifest_path=args.manifest,
                             mode=args.mode, workers=args.workers)
        print(f"built {args.db}: {describe(stats)}")
        return 0
    built = cached_ledger(args.events, seed=args.seed, cache_dir=args.cache_dir, progress=True, rebuild=args.rebuild,
                          mode=args.mode, workers=args.workers)
    print(f"{'reused' if built.reused else 'built'} {built.db_path}: {describe(built.stats)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
