"""Long journeys for the benchmarks: an item that has moved thousands of times and a container (pallet) of
thousands of items, built through the real admission path into a ledger of their own.

    item        commission, then ship / receive back and forth between two sites, every ``prev`` the event
                before: ``events`` events in all
    container   ``container_items`` items commissioned, packed into one SSCC in aggregates of 400 items (a
                statement holds at most 64 KiB), then shipped and received
    member      one item of that container (its path includes the container's events)

``python bench/long_journeys.py --home DIR`` builds (or reuses) the data set into a WAYBILL_HOME and prints its keys.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tracker.dsse import Envelope  # noqa: E402
from tracker.keys import KeyPair, read_key_file  # noqa: E402
from tracker.ledger import Ledger  # noqa: E402
from tracker.scenarios import make_sscc, party_key  # noqa: E402
from tracker.signing import new_statement, party_statement, sign_statement  # noqa: E402
from tracker.timefmt import format_time  # noqa: E402

GTIN = "09506000134352"
MAKER, SITE = "lj-maker", "lj-site"
PER_AGGREGATE = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class LongJourneys:
    item: str
    container: str
    member: str
    item_events: int
    container_items: int

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "container": self.container, "member": self.member,
                "item_events": self.item_events, "container_items": self.container_items}


def _loc(pid: str) -> dict[str, str]:
    return {"name": f"Site of {pid}", "country": "CN"}


def _append_all(ledger: Ledger, envs: list[Envelope], now: datetime) -> None:
    for i in range(0, len(envs), 200):
        for r in ledger.append_batch(envs[i:i + 200], now=now):
            if isinstance(r, Exception):
                raise SystemExit(f"building long journeys: {r.code}: {r}")


def build(ledger: Ledger, admin_key: KeyPair, *, events: int = 3000, container_items: int = 5000,
          tag: str = "LJ") -> LongJourneys:
    now = datetime.now(timezone.utc)
    t = now - timedelta(days=20)
    keys = {pid: party_key(pid, seed="long-journeys") for pid in (MAKER, SITE)}
    parties = []
    for pid, roles, prefixes in ((MAKER, ["manufacturer"], ["950600"]), (SITE, ["warehouse", "retailer"], [])):
        try:
            ledger.party(pid)
            continue
        except Exception:  # noqa: BLE001 - not registered yet
            pass
        doc = party_statement(admin="admin", time=t, location={"name": "Registry", "country": "ZZ"}, party_id=pid,
                              name=pid, country="CN", roles=roles,
                              keys=[{"public_key": keys[pid].public_key_b64,
                                     "not_before": format_time(t - timedelta(days=1))}], gs1_prefixes=prefixes)
        parties.append(sign_statement(doc, admin_key))
    if parties:
        _append_all(ledger, parties, now)

    def sign(stype: str, actor: str, at: datetime, **fields: Any) -> Envelope:
        return sign_statement(new_statement(stype, actor=actor, time=at, location=_loc(actor), **fields), keys[actor])

    # An item that moves back and forth, ``events`` events in all.
    item = f"01/{GTIN}/21/{tag}-LONG"
    at = t + timedelta(minutes=1)
    envs = [sign("commission", MAKER, at, items=[item], product={"gtin": GTIN, "name": "Well-travelled widget"})]
    holder, other = MAKER, SITE
    while len(envs) < events:
        at += timedelta(seconds=20)
        ship = sign("ship", holder, at, items=[item], to=other, prev={item: envs[-1].event_id})
        envs.append(ship)
        if len(envs) >= events:
            break
        at += timedelta(seconds=20)
        envs.append(sign("receive", other, at, items=[item], from_=holder, ship=ship.event_id,
                         prev={item: ship.event_id}))
        holder, other = other, holder
    _append_all(ledger, envs, now)

    # A container of ``container_items`` items.
    at += timedelta(minutes=5)
    members = [f"01/{GTIN}/21/{tag}-P{i:05d}" for i in range(container_items)]
    commissions = [sign("commission", MAKER, at, items=members[i:i + 1000],
                        product={"gtin": GTIN, "name": "Palletised widget"}) for i in range(0, len(members), 1000)]
    made = {k: c.event_id for c in commissions for k in json.loads(c.payload)["items"]}
    sscc = make_sscc(f"{tag}-pallet")
    container = f"00/{sscc}"
    packs: list[Envelope] = []
    for i in range(0, len(members), PER_AGGREGATE):
        at += timedelta(seconds=10)
        part = members[i:i + PER_AGGREGATE]
        prev = {k: made[k] for k in part}
        if packs:
            prev[container] = packs[-1].event_id
        packs.append(sign("aggregate", MAKER, at, container=container, items=part, prev=prev))
    at += timedelta(minutes=5)
    ship = sign("ship", MAKER, at, items=[container], to=SITE, prev={container: packs[-1].event_id})
    recv = sign("receive", SITE, at + timedelta(minutes=30), items=[container], from_=MAKER, ship=ship.event_id,
                prev={container: ship.event_id})
    _append_all(ledger, commissions + packs + [ship, recv], now)
    return LongJourneys(item=item, container=container, member=members[len(members) // 2], item_events=events,
                        container_items=container_items)


def ensure(home: Path, *, events: int = 3000, container_items: int = 5000,
           database_url: str | None = None) -> tuple[dict[str, str], LongJourneys]:
    """A WAYBILL_HOME holding the long journeys (built once; its keys are kept in long-journeys.json)."""
    from tracker.config import load_config
    from tracker.home import init

    env = {"WAYBILL_HOME": str(home)}
    if database_url:
        env["WAYBILL_DATABASE_URL"] = database_url
    marker = home / "long-journeys.json"
    if marker.exists():
        return env, LongJourneys(**json.loads(marker.read_text()))
    config = load_config(env)
    ledger = init(config, now=datetime.now(timezone.utc) - timedelta(days=30)).ledger
    try:
        built = build(ledger, read_key_file(config.admin_key_path), events=events, container_items=container_items)
    finally:
        ledger.store.close()
    marker.write_text(json.dumps(built.to_json()))
    return env, built


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--container-items", type=int, default=5000)
    args = ap.parse_args()
    _, built = ensure(Path(args.home), events=args.events, container_items=args.container_items)
    print(json.dumps(built.to_json(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
