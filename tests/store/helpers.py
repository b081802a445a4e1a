"""Building signed statements for the storage-level tests: a small cast of parties, item keys, and
statements of every type with plausible locations and times (all relative to ``T0``).

Everything a device would do is done here the way a device does it (``tracker.signing``); the tests
then hand the envelopes to the ledger and look at what it stored.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from tests.conftest import T0, fixed_key
from tracker.dsse import Envelope
from tracker.keys import KeyPair
from tracker.ledger import AppendResult, Ledger
from tracker.signing import new_statement, party_statement, sign_statement
from tracker.statements import format_time

GTIN = "09506000134352"
SSCC = "009506000134352008"
ADMIN_LOCATION = {"name": "Ledger administration", "country": "ZZ"}

# party id -> (roles, country, location name)
CAST: dict[str, tuple[tuple[str, ...], str, str]] = {
    "acme": (("manufacturer",), "CN", "Acme factory, Shenzhen"),
    "hk-export": (("exporter",), "HK", "Kwai Chung container terminal"),
    "hk-warehouse": (("warehouse",), "HK", "Tsing Yi bonded warehouse"),
    "de-customs": (("customs",), "DE", "Zollamt Hamburg-Waltershof"),
    "berlin-shop": (("retailer",), "DE", "Berlin Mitte store"),
}

CAST_PREFIXES = {"acme": ("950600",)}  # acme owns GTIN's company prefix: its commissions are its own brand

T_PARTIES = T0 + timedelta(minutes=1)  # when the cast is registered
T_EVENTS = T0 + timedelta(hours=1)  # supply-chain events start here
NOW = T0 + timedelta(days=1)  # the ledger's clock for appends unless a test says otherwise


def item_key(serial: str, gtin: str = GTIN) -> str:
    return f"01/{gtin}/21/{serial}"


def container_key(sscc: str = SSCC) -> str:
    return f"00/{sscc}"


def location(party_id: str) -> dict[str, str]:
    if party_id in CAST:
        _roles, country, name = CAST[party_id]
        return {"name": name, "country": country}
    return {"name": f"Site of {party_id}", "country": "NL"}


def key_of(party_id: str, device: int = 0) -> KeyPair:
    """The deterministic key of a party's device (device 0 is the party's first key)."""
    return fixed_key(party_id if device == 0 else f"{party_id}#device-{device}")


def key_entry(key: KeyPair, *, not_before: datetime = T0, revoked_at: datetime | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"public_key": key.public_key_b64, "not_before": format_time(not_before)}
    if revoked_at is not None:
        entry["revoked_at"] = format_time(revoked_at)
    return entry


def party_envelope(admin_key: KeyPair, party_id: str, *, roles: Sequence[str] | None = None,
                   keys: Iterable[KeyPair | Mapping[str, Any]] | None = None, country: str | None = None,
                   name: str | None = None, time: datetime = T_PARTIES, actor: str = "admin",
                   gs1_prefixes: Sequence[str] | None = None) -> Envelope:
    """A `party` statement signed by ``admin_key`` (as ``actor``) registering or updating ``party_id``.
    ``keys`` are KeyPairs (valid from T0) or ready key entries (see ``key_entry``)."""
    cast_roles, cast_country, _ = CAST.get(party_id, (("manufacturer",), "NL", ""))
    key_list = [key_of(party_id)] if keys is None else list(keys)
    doc = party_statement(
        admin=actor, time=time, location=ADMIN_LOCATION, party_id=party_id,
        name=name or f"{party_id} (test party)", country=country or cast_country,
        roles=list(roles) if roles is not None else list(cast_roles),
        keys=[key_entry(k) if isinstance(k, KeyPair) else dict(k) for k in key_list],
        gs1_prefixes=CAST_PREFIXES.get(party_id, ()) if gs1_prefixes is None else gs1_prefixes)
    return sign_statement(doc, admin_key)


def register_party(ledger: Ledger, admin_key: KeyPair, party_id: str, *, now: datetime = NOW,
                   **kwargs: Any) -> AppendResult:
    return ledger.append(party_envelope(admin_key, party_id, **kwargs), now=now)


def register_cast(ledger: Ledger, admin_key: KeyPair, *, now: datetime = NOW) -> list[AppendResult]:
    """Register every party of CAST (one batch, one commit); raises if any is refused."""
    results = ledger.append_batch([party_envelope(admin_key, pid) for pid in CAST], now=now)
    for r in results:
        if not isinstance(r, AppendResult):
            raise r
    return results  # type: ignore[return-value]


def heads(ledger: Ledger, keys: Iterable[str]) -> dict[str, str]:
    """The latest event id of each key as the ledger knows it: what a signer puts in ``prev``."""
    keys = list(keys)
    with ledger.store.read() as txn:
        leaves = txn.leaves_for_keys(keys)
        entries = txn.entries_at([ix[-1] for ix in leaves.values() if ix])
    return {k: entries[ix[-1]].event_id for k, ix in leaves.items() if ix}


# --- statements -----------------------------------------------------------------------------------

def commission_envelope(key: KeyPair, actor: str, serials: Sequence[str], *, time: datetime = T_EVENTS,
                        gtin: str = GTIN, product: str = "Rotary hammer drill", lot: str | None = "L1") -> Envelope:
    prod: dict[str, str] = {"gtin": gtin, "name": product}
    if lot:
        prod["lot"] = lot
    doc = new_statement("commission", actor=actor, time=time, location=location(actor),
                        items=[item_key(s, gtin) for s in serials], product=prod)
    return sign_statement(doc, key)


def ship_envelope(key: KeyPair, actor: str, items: Sequence[str], to: str, *, time: datetime,
                  prev: Mapping[str, str]) -> Envelope:
    doc = new_statement("ship", actor=actor, time=time, location=location(actor), prev=prev,
                        items=list(items), to=to)
    return sign_statement(doc, key)


def receive_envelope(key: KeyPair, actor: str, items: Sequence[str], from_: str, ship: str, *, time: datetime,
                     prev: Mapping[str, str]) -> Envelope:
    doc = new_statement("receive", actor=actor, time=time, location=location(actor), prev=prev,
                        items=list(items), from_=from_, ship=ship)
    return sign_statement(doc, key)


def inspect_envelope(key: KeyPair, actor: str, items: Sequence[str], decision: str = "released", *,
                     time: datetime, prev: Mapping[str, str], note: str | None = None) -> Envelope:
    doc = new_statement("inspect", actor=actor, time=time, location=location(actor), prev=prev,
                        items=list(items), decision=decision, note=note)
    return sign_statement(doc, key)


def sell_envelope(key: KeyPair, actor: str, items: Sequence[str], *, time: datetime,
                  prev: Mapping[str, str]) -> Envelope:
    doc = new_statement("sell", actor=actor, time=time, location=location(actor), prev=prev, items=list(items))
    return sign_statement(doc, key)


# --- appending them -------------------------------------------------------------------------------

def commission(ledger: Ledger, serials: Sequence[str], *, actor: str = "acme", key: KeyPair | None = None,
               time: datetime = T_EVENTS, now: datetime = NOW, **kwargs: Any) -> AppendResult:
    return ledger.append(commission_envelope(key or key_of(actor), actor, serials, time=time, **kwargs), now=now)


def ship(ledger: Ledger, items: Sequence[str], to: str, *, actor: str = "acme", key: KeyPair | None = None,
         time: datetime = T_EVENTS + timedelta(minutes=10), now: datetime = NOW) -> AppendResult:
    env = ship_envelope(key or key_of(actor), actor, items, to, time=time, prev=heads(ledger, items))
    return ledger.append(env, now=now)


def receive(ledger: Ledger, items: Sequence[str], from_: str, ship_id: str, *, actor: str,
            key: KeyPair | None = None, time: datetime = T_EVENTS + timedelta(hours=2),
            now: datetime = NOW) -> AppendResult:
    env = receive_envelope(key or key_of(actor), actor, items, from_, ship_id, time=time, prev=heads(ledger, items))
    return ledger.append(env, now=now)


def inspect(ledger: Ledger, items: Sequence[str], decision: str = "released", *, actor: str = "de-customs",
            key: KeyPair | None = None, time: datetime = T_EVENTS + timedelta(hours=3),
            now: datetime = NOW) -> AppendResult:
    env = inspect_envelope(key or key_of(actor), actor, items, decision, time=time, prev=heads(ledger, items))
    return ledger.append(env, now=now)


def sell(ledger: Ledger, items: Sequence[str], *, actor: str = "berlin-shop", key: KeyPair | None = None,
         time: datetime = T_EVENTS + timedelta(hours=5), now: datetime = NOW) -> AppendResult:
    env = sell_envelope(key or key_of(actor), actor, items, time=time, prev=heads(ledger, items))
    return ledger.append(env, now=now)


# --- a whole ledger -------------------------------------------------------------------------------

def journey(serial: str, start: datetime) -> list[Envelope]:
    """One item's full, well-formed journey: commission → ship → receive → ship → receive → inspect → sell.
    Event ids are known at signing time, so the whole chain (with ``prev``) is built up front."""
    item = item_key(serial)
    step = timedelta(minutes=7)
    out: list[Envelope] = []

    def add(env: Envelope) -> str:
        out.append(env)
        return env.event_id

    head = add(commission_envelope(key_of("acme"), "acme", [serial], time=start))
    ship1 = add(ship_envelope(key_of("acme"), "acme", [item], "hk-warehouse", time=start + step, prev={item: head}))
    head = add(receive_envelope(key_of("hk-warehouse"), "hk-warehouse", [item], "acme", ship1, time=start + 2 * step,
                                prev={item: ship1}))
    ship2 = add(ship_envelope(key_of("hk-warehouse"), "hk-warehouse", [item], "berlin-shop", time=start + 3 * step,
                              prev={item: head}))
    head = add(receive_envelope(key_of("berlin-shop"), "berlin-shop", [item], "hk-warehouse", ship2,
                                time=start + 4 * step, prev={item: ship2}))
    head = add(inspect_envelope(key_of("de-customs"), "de-customs", [item], "released", time=start + 5 * step,
                                prev={item: head}))
    add(sell_envelope(key_of("berlin-shop"), "berlin-shop", [item], time=start + 6 * step, prev={item: head}))
    return out


@dataclass
class BuiltLedger:
    """What the test itself signed, in leaf order (leaf 0, the genesis, is read back from the store)."""

    genesis: bytes
    envelopes: list[Envelope] = field(default_factory=list)
    commit_sizes: list[int] = field(default_factory=list)  # tree size after each commit, genesis included

    @property
    def leaf_data(self) -> list[bytes]:
        return [self.genesis] + [e.leaf_data() for e in self.envelopes]


def build_ledger(ledger: Ledger, admin_key: KeyPair, *, size: int, chunks: Sequence[int] = (1, 3, 2, 5, 1, 1, 4, 7, 2),
                 now: datetime = NOW) -> BuiltLedger:
    """Fill a freshly created ledger to exactly ``size`` entries with the cast and item journeys, appended
    in commits of the sizes in ``chunks`` (cycled), so there are many checkpoints of varied sizes. Commits run a
    second apart on the ledger's clock, so the checkpoint history (one per second, plus the latest) keeps
    every commit's checkpoint."""
    with ledger.store.read() as txn:
        assert txn.tree_size() == 1, "build_ledger expects a freshly created ledger"
        genesis = txn.entries_at([0])[0].leaf_data
    planned = [party_envelope(admin_key, pid) for pid in CAST]
    j = 0
    while len(planned) < size - 1:
        planned.extend(journey(f"J{j:03d}", T_EVENTS + timedelta(minutes=60 * j)))
        j += 1
    planned = planned[:size - 1]
    built = BuiltLedger(genesis=genesis, commit_sizes=[1])
    pos, c = 0, 0
    while pos < len(planned):
        batch = planned[pos:pos + chunks[c % len(chunks)]]
        c += 1
        results = ledger.append_batch(batch, now=now + timedelta(seconds=c))
        for env, r in zip(batch, results):
            if not isinstance(r, AppendResult) or not r.created:
                raise AssertionError(f"building the ledger: {env.event_id} was not admitted: {r!r}")
        built.envelopes.extend(batch)
        pos += len(batch)
        built.commit_sizes.append(1 + pos)
    return built


def snapshot(ledger: Ledger) -> dict[str, Any]:
    """Everything an append could change: compare before/after to prove nothing was half-written."""
    with ledger.store.read() as txn:
        counts = {t: txn.conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                  for t in ("entries", "merkle_nodes", "key_events", "parties", "party_keys", "checkpoints")}
        return {"size": txn.tree_size(), "latest_checkpoint": txn.latest_checkpoint(),
                "parties": txn.party_records(), "meta": dict(txn.meta()), **counts}


# --- multi-process workers (module level so 'spawn' children can import them) ---------------------

def append_commissions_worker(url: str, worker: int, count: int, barrier: Any, out: Any) -> None:
    """Open an own store and Ledger, wait for the others, then append ``count`` commissions one by one.
    Puts (worker, [(event_id, leaf_index, created), ...]) or (worker, 'error', traceback) on ``out``."""
    try:
        from tracker.store import open_store

        store = open_store(url, create=False)  # an existing ledger, as a server worker opens it
        try:
            ledger = Ledger(store, signing_key=fixed_key("ledger"))
            key = key_of("acme", device=worker + 1)
            envs = [commission_envelope(key, "acme", [f"P{worker}-{i:03d}"], time=T_EVENTS + timedelta(seconds=i))
                    for i in range(count)]
            barrier.wait(timeout=120)
            results = []
            for env in envs:
                r = ledger.append(env, now=NOW)
                results.append((r.event_id, r.leaf_index, r.created))
        finally:
            store.close()
        out.put((worker, results))
    except BaseException:  # report, don't hang the parent
        out.put((worker, "error", traceback.format_exc()))


def race_batches_worker(url: str, worker: int, rounds: int, per_batch: int, barrier: Any, out: Any) -> None:
    """Each round: wait for the other process, then append one batch of ``per_batch`` own commissions plus
    one envelope both processes sign identically (same key, same bytes). Puts (worker, [[(eid, idx, created)...]
    per round]) or an error on ``out``."""
    try:
        from tracker.store import open_store

        store = open_store(url, create=False)  # an existing ledger, as a server worker opens it
        try:
            ledger = Ledger(store, signing_key=fixed_key("ledger"))
            key = key_of("acme", device=worker + 1)
            shared_key = key_of("acme")
            rounds_out = []
            for r in range(rounds):
                own = [commission_envelope(key, "acme", [f"R{r:02d}-{worker}-{i}"], time=T_EVENTS)
                       for i in range(per_batch)]
                shared = commission_envelope(shared_key, "acme", [f"R{r:02d}-shared"], time=T_EVENTS)
                batch = own[: per_batch // 2] + [shared] + own[per_batch // 2:]
                barrier.wait(timeout=120)
                results = ledger.append_batch(batch, now=NOW)
                row = []
                for res in results:
                    if not isinstance(res, AppendResult):
                        raise AssertionError(f"round {r}: refused {res.code}: {res}")
                    row.append((res.event_id, res.leaf_index, res.created))
                rounds_out.append(row)
        finally:
            store.close()
        out.put((worker, rounds_out))
    except BaseException:
        out.put((worker, "error", traceback.format_exc()))


def group_append_worker(url: str, worker: int, threads: int, per_thread: int, barrier: Any, out: Any) -> None:
    """Like append_commissions_worker, but ``threads`` threads append single commissions at once, as a server
    worker's request threads do, so they share group commits. Puts (worker, [(eid, idx, created), ...],
    (groups, requests)) -- or an error -- on ``out``."""
    try:
        import threading

        from tracker.store import open_store

        store = open_store(url, create=False)
        try:
            ledger = Ledger(store, signing_key=fixed_key("ledger"))
            assert ledger.group is not None
            key = key_of("acme", device=worker + 1)
            results: list[tuple[str, int, bool]] = []
            start = threading.Barrier(threads)

            def run(t: int) -> None:
                envs = [commission_envelope(key, "acme", [f"G{worker}-{t}-{i:03d}"],
                                            time=T_EVENTS + timedelta(seconds=i)) for i in range(per_thread)]
                start.wait(timeout=60)
                for env in envs:
                    r = ledger.append(env, now=NOW)
                    results.append((r.event_id, r.leaf_index, r.created))

            pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
            barrier.wait(timeout=120)
            for th in pool:
                th.start()
            for th in pool:
                th.join()
            stats = (ledger.group.groups, ledger.group.requests)
        finally:
            store.close()
        out.put((worker, (results, stats)))
    except BaseException:
        out.put((worker, "error", traceback.format_exc()))
