"""The demo network: a realistic multi-country supply chain with thousands of genuine items and a known
share of counterfeit cases from the scenario library. Built once into the configured ledger; idempotent."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from .config import Config, load_config
from .errors import InvalidInput, TrackerError
from .home import init
from .identifiers import digital_link, gs1_check_digit
from .keys import read_key_file
from .scenarios import Network, load_scenarios, make_sscc
from .provenance import lookup

__all__ = ["DemoSummary", "ensure_demo", "build_demo", "PARTIES"]

# id, name, country, roles, GS1 company prefixes
PARTIES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("acme-cn", "Acme Manufacturing", "CN", ("manufacturer",), ("950600",)),
    ("lotus-vn", "Lotus Textiles", "VN", ("manufacturer",), ("893123",)),
    ("rheinwerk-de", "Rheinwerk Tools", "DE", ("manufacturer",), ("400555",)),
    ("pearl-export", "Pearl River Export", "CN", ("exporter",), ()),
    ("saigon-export", "Saigon Export Co.", "VN", ("exporter",), ()),
    ("de-customs", "German Customs Hamburg", "DE", ("customs",), ()),
    ("us-customs", "US Customs Newark", "US", ("customs",), ()),
    ("hh-warehouse", "Hamburg Logistics", "DE", ("warehouse",), ()),
    ("nj-warehouse", "Newark Fulfilment", "US", ("warehouse",), ()),
    ("rhein-express", "Rhein Express", "DE", ("courier",), ()),
    ("liberty-courier", "Liberty Courier", "US", ("courier",), ()),
    ("berlin-shop", "Berlin Retail", "DE", ("retailer",), ()),
    ("munich-shop", "Munich Electronics", "DE", ("retailer",), ()),
    ("brooklyn-shop", "Brooklyn Goods", "US", ("retailer",), ()),
)
# manufacturer -> (gtin body without check digit, product, exporter or None, destination country)
_LINES = {
    "acme-cn": [("0950600013435", "Aurora wireless earbuds"), ("0950600013436", "Aurora charging case")],
    "lotus-vn": [("0893123000101", "Lotus merino sweater"), ("0893123000102", "Lotus silk scarf")],
    "rheinwerk-de": [("0400555000021", "Rheinwerk cordless drill")],
}
_ROUTES = {
    "DE": ("hh-warehouse", "de-customs", "rhein-express", ("berlin-shop", "munich-shop")),
    "US": ("nj-warehouse", "us-customs", "liberty-courier", ("brooklyn-shop",)),
}
_EXPORTER = {"acme-cn": "pearl-export", "lotus-vn": "saigon-export", "rheinwerk-de": None}
_DEMO_FILE = "demo.json"
_SAMPLE_LABELS = {"pallet": "genuine pallets (by SSCC)"}
_EXPECTED = {"pallet": "genuine"}  # sample kind -> the verdict every sample of it must get
_SKIP_SCENARIOS = {"bad-signature", "unauthorized-signer"}  # imports: they would make `tracker verify` fail


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSummary:
    created: bool
    items: int
    events: int
    samples: dict[str, list[str]] = field(default_factory=dict)

    def describe(self, resolver: str) -> str:
        lines = [f"Demo ledger: {self.items} items, {self.events} events"
                 + (" (built now)" if self.created else " (already built)")]
        for kind in ("genuine", "pallet", "suspicious", "likely_counterfeit", "unknown"):
            keys = self.samples.get(kind, [])
            if keys:
                lines.append(f"  {_SAMPLE_LABELS.get(kind, kind)}:")
                lines.extend(f"    {digital_link(k, resolver=resolver)}" for k in keys[:5])
        return "\n".join(lines)


def _gtin(body: str) -> str:
    return body + str(gs1_check_digit(body))


def build_demo(net: Network, *, items: int = 3000, lot_size: int = 40, seed: int = 7,
               progress: Callable[[int, int], None] | None = None) -> dict[str, list[str]]:
    """Play genuine lots and counterfeit scenarios into ``net``; returns sample item keys by verdict."""
    rng = random.Random(seed)
    for pid, name, country, roles, prefixes in PARTIES:
        net.add_party(pid, name=name, country=country, roles=roles, gs1_prefixes=prefixes, devices=2)
    start = net.clock
    lots = max(1, items // lot_size)
    genuine: list[str] = []
    pallets: list[str] = []
    for lot in range(lots):
        net.clock = start + timedelta(hours=10 * lot)
        maker = rng.choice(sorted(_LINES))
        body, product = rng.choice(_LINES[maker])
        gtin = _gtin(body)
        dest = "US" if maker == "lotus-vn" or (maker == "rheinwerk-de" and lot % 3 == 0) else "DE"
        warehouse, customs, courier, shops = _ROUTES[dest]
        keys = [f"01/{gtin}/21/L{lot:04d}S{i:03d}" for i in range(lot_size)]
        pallet = "00/" + make_sscc(f"demo-lot-{lot}")
        head: dict[str, str] = {}

        def rec(stype: str, actor: str, touched: list[str], hours: float = 1.0, **fields: Any) -> str:
            prev = {k: head[k] for k in touched if k in head}
            eid = net.record(stype, actor, at=net.tick(hours), prev=prev if stype != "commission" else None,
                             **fields).event_id
            for k in touched:
                head[k] = eid
            return eid

        def moved(container: str, eid: str) -> None:
            head[container] = eid
            for k in keys:
                head[k] = eid

        rec("commission", maker, keys, items=keys, product={"gtin": gtin, "name": product, "lot": f"LOT{lot:04d}"})
        rec("aggregate", maker, keys + [pallet], container=pallet, items=keys)
        holder = maker
        exporter = _EXPORTER[maker]
        if exporter:
            sid = rec("ship", maker, [pallet], hours=4, items=[pallet], to=exporter)
            moved(pallet, sid)
            moved(pallet, rec("receive", exporter, [pallet], hours=20, items=[pallet], **{"from_": maker, "ship": sid}))
            holder = exporter
        sid = rec("ship", holder, [pallet], hours=6, items=[pallet], to=warehouse)
        moved(pallet, sid)
        crossing = net.parties[holder]["country"] != dest
        stage = rng.random()
        if crossing:
            if lot >= lots - 4 and stage < 0.5:
                continue  # still at sea: inbound for the customs dashboard
            decision = "held" if lot >= lots - 4 else "released"
            moved(pallet, rec("inspect", customs, [pallet], hours=rng.uniform(24, 240), items=[pallet],
                              decision=decision))
            if decision == "held":
                continue
        moved(pallet, rec("receive", warehouse, [pallet], hours=6, items=[pallet], **{"from_": holder, "ship": sid}))
        rec("disaggregate", warehouse, keys + [pallet], hours=2, container=pallet, items=keys)
        pallets.append(pallet)
        half = lot_size // len(shops)
        for n, shop in enumerate(shops):
            part = keys[n * half:(n + 1) * half] if n < len(shops) - 1 else keys[n * half:]
            s1 = rec("ship", warehouse, part, hours=3, items=part, to=courier)
            rec("receive", courier, part, hours=2, items=part, **{"from_": warehouse, "ship": s1})
            s2 = rec("ship", courier, part, hours=5, items=part, to=shop)
            rec("receive", shop, part, hours=1, items=part, **{"from_": courier, "ship": s2})
            sold = part[: len(part) // 3]
            if sold:
                rec("sell", shop, sold, hours=rng.uniform(24, 200), items=sold)
        genuine.extend(keys[:1])
        if progress:
            progress(lot + 1, lots)
    samples: dict[str, list[str]] = {"genuine": genuine[:5], "pallet": pallets[:3], "suspicious": [],
                                     "likely_counterfeit": [], "unknown": ["01/09506000134352/21/NEVERMADE1"]}
    scen_start = start + timedelta(hours=10 * lots + 24)
    scenarios = sorted((s for s in load_scenarios() if s.name not in _SKIP_SCENARIOS and s.kind != "genuine"),
                       key=lambda s: s.name == "revoked-key")  # revocation last: it retires a key others use
    for k, sc in enumerate(scenarios):
        for copy in range(1 if sc.name == "revoked-key" else 3):
            net.clock = scen_start + timedelta(hours=k * 3 + copy)
            item = sc.play(net, n=f"D{copy}")
            samples.setdefault(sc.verdict, []).append(item)
    return samples


def _read_summary(config: Config) -> dict | None:
    path = config.home / _DEMO_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None
    return None


def ensure_demo(config: Config | None = None, *, now: datetime | None = None, items: int = 3000,
                progress: Callable[[int, int], None] | None = None) -> DemoSummary:
    """Initialise the ledger if needed and build the demo network once. Safe to run again."""
    config = config or load_config()
    now = now or datetime.now(timezone.utc)
    result = init(config, now=now - timedelta(days=120))
    ledger = result.ledger
    done = _read_summary(config)
    if done is not None:
        return DemoSummary(created=False, items=done["items"], events=ledger.size(), samples=done["samples"])
    try:
        ledger.party("acme-cn")
        built = True
    except TrackerError:
        built = False
    admin_key = read_key_file(config.admin_key_path)
    start = now - timedelta(days=100)
    if not built:
        admin = ledger.party("admin").key(admin_key.keyid)
        if admin is None or admin.not_before > start:
            # The demo's history spans the last 100 days and is registered by this admin key: a home set up
            # earlier without the demo has an admin key too new to have signed it (and it holds real data).
            raise InvalidInput(f"{config.home} already holds a ledger that was not built for the demo; run the demo "
                               "in an empty WAYBILL_HOME (e.g. WAYBILL_HOME=./demo tracker serve --demo)",
                               code="not_a_demo_home")
    net = Network(ledger, admin_key=admin_key, start=start)
    samples: dict[str, list[str]] = {"genuine": [], "unknown": []}
    if not built:
        samples = build_demo(net, items=items, progress=progress)
    for kind, keys in samples.items():
        checked = [k for k in keys if kind == "unknown" or lookup(ledger, k).verdict == _EXPECTED.get(kind, kind)]
        samples[kind] = checked
    summary = {"items": items, "samples": samples}
    (config.home / _DEMO_FILE).write_text(json.dumps(summary, indent=1))
    return DemoSummary(created=not built, items=items, events=ledger.size(), samples=samples)
