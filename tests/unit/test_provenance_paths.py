"""Path reconstruction through nested containers (SPEC §4 `path`, `holder`; `GET .../head`).

An item is packed into a pallet (SSCC), the pallet into a bigger container; the container crosses the border
from CN to DE, customs releases it, the warehouse receives it and unpacks twice, and the item goes on to a
shop and is sold. A second item is packed into the same pallet only after the pallet had already travelled.

The statements are built with explicit fields and explicit `prev` links computed by this test's own model of
"latest event per key" (so that `head()` is checked against an independent answer rather than feeding itself).
After every statement the test takes a snapshot of what a consumer would see.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from tracker.ledger import Ledger
from tracker.provenance import head, lookup
from tracker.scenarios import Network, make_sscc, party_key
from tracker.store import open_store

START = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)
GTIN = "09506000134352"
ITEM = f"01/{GTIN}/21/PATH1"  # the item followed through the whole journey
SIBLING = f"01/{GTIN}/21/PATH2"  # packed with it, stays at the warehouse
LATE = f"01/{GTIN}/21/LATE1"  # packed into the pallet after the pallet had travelled
PALLET = "00/" + make_sscc("paths:pallet")
CONTAINER = "00/" + make_sscc("paths:container")
WATCHED = (ITEM, SIBLING, LATE, PALLET, CONTAINER)

PARTIES = {
    "acme-cn": ("Acme Manufacturing", "CN", ["manufacturer"], ["950600"]),
    "pearl-export": ("Pearl River Export", "CN", ["exporter"], []),
    "de-customs": ("German Customs Hamburg", "DE", ["customs"], []),
    "hh-warehouse": ("Hamburg Logistics", "DE", ["warehouse"], []),
    "berlin-shop": ("Berlin Retail", "DE", ["retailer"], []),
}
COMMON_FIELDS = {"event_id", "type", "actor", "actor_name", "role", "time", "location"}
EXTRA_FIELDS = {"ship": {"to"}, "receive": {"from"}, "inspect": {"decision"}}


@dataclass(frozen=True)
class Snapshot:
    step: str  # our name for the statement just recorded
    event_id: str
    holder: dict[str, str | None]
    verdict: dict[str, str]
    codes: dict[str, set[str]]
    path: dict[str, list[str]]
    head: dict[str, str | None]


class Journey:
    def __init__(self, url: str, *, watch: bool = True) -> None:
        self.watch = watch
        admin = party_key("admin", seed="paths")
        self.store = open_store(url)
        ledger = Ledger.create(self.store, origin="waybill.test/ledger",
                               ledger_key=party_key("ledger", seed="paths"), admin_key=admin, now=START)
        self.net = Network(ledger, admin_key=admin, start=START, seed="paths")
        for pid, (name, country, roles, prefixes) in PARTIES.items():
            self.net.add_party(pid, name=name, country=country, roles=roles, gs1_prefixes=prefixes)
        self.ids: dict[str, str] = {}
        self.heads: dict[str, str] = {}  # our model: the latest event of each key, container moves included
        self.contents: dict[str, set[str]] = {}
        self.snapshots: list[Snapshot] = []

    def _members(self, key: str) -> set[str]:
        out: set[str] = set()
        for k in self.contents.get(key, ()):
            out |= {k} | self._members(k)
        return out

    def record(self, name: str, stype: str, actor: str, **fields) -> str:
        touched = list(fields.get("items", ())) + ([fields["container"]] if fields.get("container") else [])
        prev = None if stype == "commission" else {k: self.heads[k] for k in touched if k in self.heads}
        eid = self.net.record(stype, actor, prev=prev, **fields).event_id
        self.ids[name] = eid
        for k in touched:
            for affected in {k} | self._members(k):
                self.heads[affected] = eid
        if stype == "aggregate":
            self.contents.setdefault(fields["container"], set()).update(fields["items"])
        elif stype == "disaggregate":
            self.contents[fields["container"]] -= set(fields["items"])
        if self.watch:
            self.snapshot(name, eid)
        return eid

    def snapshot(self, name: str, eid: str) -> None:
        ledger = self.net.ledger
        answers = {k: lookup(ledger, k) for k in WATCHED}
        self.snapshots.append(Snapshot(
            step=name, event_id=eid,
            holder={k: a.holder for k, a in answers.items()},
            verdict={k: a.verdict for k, a in answers.items()},
            codes={k: {r.code for r in a.reasons} for k, a in answers.items()},
            path={k: [p["event_id"] for p in a.path] for k, a in answers.items()},
            head={k: head(ledger, k) for k in WATCHED}))

    def at(self, name: str) -> Snapshot:
        return next(s for s in self.snapshots if s.step == name)


def _play(j: Journey) -> None:
    both = [ITEM, SIBLING]
    j.record("commission", "commission", "acme-cn", items=[ITEM, SIBLING, LATE],
             product={"gtin": GTIN, "name": "Aurora wireless earbuds", "lot": "L7"})
    j.record("ship-to-exporter", "ship", "acme-cn", items=[ITEM, SIBLING, LATE], to="pearl-export")
    j.record("exporter-receives", "receive", "pearl-export", items=[ITEM, SIBLING, LATE], from_="acme-cn",
             ship=j.ids["ship-to-exporter"])
    j.record("pack-pallet", "aggregate", "pearl-export", container=PALLET, items=both)
    j.record("pack-container", "aggregate", "pearl-export", container=CONTAINER, items=[PALLET])
    j.record("ship-container", "ship", "pearl-export", items=[CONTAINER], to="hh-warehouse")
    j.record("customs-release", "inspect", "de-customs", items=[CONTAINER], decision="released")
    j.record("warehouse-receives", "receive", "hh-warehouse", items=[CONTAINER], from_="pearl-export",
             ship=j.ids["ship-container"])
    j.record("unpack-container", "disaggregate", "hh-warehouse", container=CONTAINER, items=[PALLET])
    j.record("unpack-pallet", "disaggregate", "hh-warehouse", container=PALLET, items=both)
    # the late item travels on its own, then goes into the (already travelled, now empty) pallet
    j.record("late-ship", "ship", "pearl-export", items=[LATE], to="hh-warehouse")
    j.record("late-release", "inspect", "de-customs", items=[LATE], decision="released")
    j.record("late-receive", "receive", "hh-warehouse", items=[LATE], from_="pearl-export",
             ship=j.ids["late-ship"])
    j.record("late-pack", "aggregate", "hh-warehouse", container=PALLET, items=[LATE])
    j.record("pallet-to-shop", "ship", "hh-warehouse", items=[PALLET], to="berlin-shop")
    # the followed item goes on to the shop by itself
    j.record("ship-to-shop", "ship", "hh-warehouse", items=[ITEM], to="berlin-shop")
    j.record("shop-receives", "receive", "berlin-shop", items=[ITEM], from_="hh-warehouse",
             ship=j.ids["ship-to-shop"])
    j.record("pallet-received", "receive", "berlin-shop", items=[PALLET], from_="hh-warehouse",
             ship=j.ids["pallet-to-shop"])
    j.record("late-unpack", "disaggregate", "berlin-shop", container=PALLET, items=[LATE])
    j.record("sold", "sell", "berlin-shop", items=[ITEM])


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> Journey:
    j = Journey(f"sqlite:///{tmp_path_factory.mktemp('paths') / 'ledger.db'}")
    _play(j)
    yield j
    j.store.close()


ITEM_PATH = ["commission", "ship-to-exporter", "exporter-receives", "pack-pallet", "pack-container",
             "ship-container", "customs-release", "warehouse-receives", "unpack-container", "unpack-pallet",
             "ship-to-shop", "shop-receives", "sold"]
LATE_PATH = ["commission", "ship-to-exporter", "exporter-receives", "late-ship", "late-release", "late-receive",
             "late-pack", "pallet-to-shop", "pallet-received", "late-unpack"]


# --- the path ---------------------------------------------------------------------------------------------

def test_path_interleaves_container_events_in_time_order(journey):
    answer = lookup(journey.net.ledger, ITEM)
    assert [p["event_id"] for p in answer.path] == [journey.ids[n] for n in ITEM_PATH]
    times = [p["time"] for p in answer.path]
    assert times == sorted(times) and len(set(times)) == len(times)
    by_name = dict(zip(ITEM_PATH, answer.path))
    assert by_name["ship-container"]["actor"] == "pearl-export" and by_name["ship-container"]["to"] == "hh-warehouse"
    assert by_name["customs-release"]["decision"] == "released"
    assert by_name["warehouse-receives"]["from"] == "pearl-export"
    assert answer.verdict == "genuine", answer.to_json()["reasons"]
    assert [r.code for r in answer.reasons] == ["sold"] and answer.holder is None


def test_item_packed_later_does_not_inherit_the_pallets_earlier_events(journey):
    answer = lookup(journey.net.ledger, LATE)
    assert [p["event_id"] for p in answer.path] == [journey.ids[n] for n in LATE_PATH]
    earlier = {journey.ids[n] for n in ("pack-pallet", "pack-container", "ship-container", "customs-release",
                                         "warehouse-receives", "unpack-container", "unpack-pallet")}
    assert not earlier & {p["event_id"] for p in answer.path}
    assert answer.verdict == "genuine", answer.to_json()["reasons"]
    assert answer.holder == "berlin-shop"


def test_item_leaving_the_pallet_does_not_inherit_its_later_events(journey):
    """ITEM and SIBLING were unpacked before the pallet was refilled and shipped on: those moves are not theirs."""
    for key in (ITEM, SIBLING):
        path = {p["event_id"] for p in lookup(journey.net.ledger, key).path}
        for later in ("late-pack", "pallet-to-shop", "pallet-received", "late-unpack"):
            assert journey.ids[later] not in path, (key, later)
    sibling = lookup(journey.net.ledger, SIBLING)
    assert [p["event_id"] for p in sibling.path] == [journey.ids[n] for n in ITEM_PATH[:10]]
    assert sibling.holder == "hh-warehouse" and sibling.verdict == "genuine"


def test_path_entries_have_exactly_the_spec_fields(journey):
    parties = PARTIES
    for key in (ITEM, LATE):
        answer = lookup(journey.net.ledger, key)
        for p in answer.path:
            assert set(p) == COMMON_FIELDS | EXTRA_FIELDS.get(p["type"], set()), p
            name, country, roles, _ = parties[p["actor"]]
            assert p["actor_name"] == name
            assert p["role"] in roles
            assert p["location"] == {"name": name, "country": country}
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["time"]), p["time"]
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", p["event_id"])
        assert set(answer.to_json()) == {"item", "gtin", "serial", "product", "verdict", "reasons", "holder",
                                         "path", "checkpoint"}
        assert answer.product == {"name": "Aurora wireless earbuds", "manufacturer": "acme-cn", "lot": "L7"}


# --- holder and head at every stage ----------------------------------------------------------------------

ITEM_HOLDER = {
    "commission": "acme-cn", "ship-to-exporter": "acme-cn", "exporter-receives": "pearl-export",
    "pack-pallet": "pearl-export", "pack-container": "pearl-export", "ship-container": "pearl-export",
    "customs-release": "pearl-export", "warehouse-receives": "hh-warehouse", "unpack-container": "hh-warehouse",
    "unpack-pallet": "hh-warehouse", "late-ship": "hh-warehouse", "late-pack": "hh-warehouse",
    "pallet-to-shop": "hh-warehouse", "ship-to-shop": "hh-warehouse", "shop-receives": "berlin-shop",
    "sold": None,
}
LATE_HOLDER = {
    "exporter-receives": "pearl-export", "ship-container": "pearl-export", "late-ship": "pearl-export",
    "late-receive": "hh-warehouse", "late-pack": "hh-warehouse", "pallet-to-shop": "hh-warehouse",
    "pallet-received": "berlin-shop", "late-unpack": "berlin-shop", "sold": "berlin-shop",
}


@pytest.mark.parametrize("step", list(ITEM_HOLDER))
def test_holder_of_the_item_at_each_stage(journey, step):
    snap = journey.at(step)
    assert snap.holder[ITEM] == ITEM_HOLDER[step]
    assert snap.verdict[ITEM] == "genuine", snap.codes[ITEM]
    assert snap.codes[ITEM] <= {"in_transit", "sold"}


@pytest.mark.parametrize("step", list(LATE_HOLDER))
def test_holder_of_the_late_item_at_each_stage(journey, step):
    snap = journey.at(step)
    assert snap.holder[LATE] == LATE_HOLDER[step]
    assert snap.verdict[LATE] == "genuine", snap.codes[LATE]


# A container has a life of its own: the aggregate that creates it makes its signer the first custodian, and a
# lookup by SSCC is judged by the same rules as an item. Before this, every genuine pallet was "likely
# counterfeit": its packer "repacked it without ever having received it".
PALLET_HOLDER = {
    "pack-pallet": "pearl-export", "pack-container": "pearl-export", "ship-container": "pearl-export",
    "customs-release": "pearl-export", "warehouse-receives": "hh-warehouse", "unpack-container": "hh-warehouse",
    "unpack-pallet": "hh-warehouse", "late-pack": "hh-warehouse", "pallet-to-shop": "hh-warehouse",
    "pallet-received": "berlin-shop", "late-unpack": "berlin-shop", "sold": "berlin-shop",
}
CONTAINER_HOLDER = {
    "pack-container": "pearl-export", "ship-container": "pearl-export", "customs-release": "pearl-export",
    "warehouse-receives": "hh-warehouse", "unpack-container": "hh-warehouse", "sold": "hh-warehouse",
}


@pytest.mark.parametrize("step", list(PALLET_HOLDER))
def test_a_genuine_pallet_is_genuine_at_every_stage(journey, step):
    snap = journey.at(step)
    assert snap.verdict[PALLET] == "genuine", snap.codes[PALLET]
    assert snap.codes[PALLET] <= {"in_transit"}
    assert snap.holder[PALLET] == PALLET_HOLDER[step]


@pytest.mark.parametrize("step", list(CONTAINER_HOLDER))
def test_a_genuine_container_holding_a_pallet_is_genuine_at_every_stage(journey, step):
    snap = journey.at(step)
    assert snap.verdict[CONTAINER] == "genuine", snap.codes[CONTAINER]
    assert snap.holder[CONTAINER] == CONTAINER_HOLDER[step]


def test_a_pallets_path_is_its_own_life(journey):
    """Packed, shipped inside the container, cleared, received, unpacked, refilled, shipped, received, unpacked."""
    path = journey.at("sold").path[PALLET]
    assert path == [journey.ids[n] for n in ("pack-pallet", "pack-container", "ship-container", "customs-release",
                                             "warehouse-receives", "unpack-container", "unpack-pallet", "late-pack",
                                             "pallet-to-shop", "pallet-received", "late-unpack")]


def test_in_transit_only_while_a_shipment_is_open(journey):
    assert "in_transit" in journey.at("ship-container").codes[ITEM]
    assert "in_transit" in journey.at("customs-release").codes[ITEM]
    assert "in_transit" not in journey.at("warehouse-receives").codes[ITEM]
    assert "in_transit" not in journey.at("unpack-pallet").codes[ITEM]


def test_head_follows_container_moves_at_every_stage(journey):
    for snap in journey.snapshots:
        assert snap.head[ITEM] == snap.path[ITEM][-1], snap.step
        assert snap.head[LATE] == snap.path[LATE][-1], snap.step
    ids = journey.ids
    assert journey.at("ship-container").head[ITEM] == ids["ship-container"]
    assert journey.at("customs-release").head[ITEM] == ids["customs-release"]
    assert journey.at("warehouse-receives").head[PALLET] == ids["warehouse-receives"]
    assert journey.at("unpack-container").head[ITEM] == ids["unpack-container"]
    # moves of the pallet after ITEM left it are not ITEM's
    assert journey.at("pallet-to-shop").head[ITEM] == ids["unpack-pallet"]
    # before LATE went into the pallet, the pallet's history was not LATE's
    assert journey.at("late-receive").head[LATE] == ids["late-receive"]
    assert journey.at("pallet-to-shop").head[LATE] == ids["pallet-to-shop"]
    assert journey.at("sold").head[ITEM] == ids["sold"]


def test_head_matches_the_independent_model(journey):
    """Replaying the snapshots against the model of 'latest event per key' kept while recording."""
    final = journey.snapshots[-1]
    for key in WATCHED:
        assert final.head[key] == journey.heads[key], key
    # and at each intermediate stage, for the watched keys that existed by then
    heads: dict[str, str] = {}
    contents: dict[str, set[str]] = {}
    ledger = journey.net.ledger
    for snap in journey.snapshots:
        _, st = ledger.get_event(snap.event_id)
        touched = list(st.items) + ([st.container] if st.container else [])

        def members(k: str) -> set[str]:
            out: set[str] = set()
            for m in contents.get(k, ()):
                out |= {m} | members(m)
            return out

        for k in touched:
            for affected in {k} | members(k):
                heads[affected] = snap.event_id
        if st.type == "aggregate":
            contents.setdefault(st.container, set()).update(st.items)
        elif st.type == "disaggregate":
            contents[st.container] -= set(st.items)
        for key in WATCHED:
            assert snap.head[key] == heads.get(key), (snap.step, key)


def test_head_of_an_unknown_key_is_none(journey):
    assert head(journey.net.ledger, f"01/{GTIN}/21/NEVERMADE") is None
    assert head(journey.net.ledger, "00/" + make_sscc("paths:never")) is None


# --- packing into a pallet that is already inside a container -----------------------------------------------

def test_item_packed_into_a_pallet_already_in_a_container_travels_with_the_container(tmp_path):
    """A top-up: the pallet is already loaded into the shipping container when one more item goes onto it. The
    container then crosses the border. The topped-up item was inside the container (through the pallet) for
    the crossing, so the container's moves are its moves: the warehouse holds it, head() is the container's
    receive, and unpacking it at the warehouse is no custody gap."""
    j = Journey(f"sqlite:///{tmp_path / 'ledger.db'}", watch=False)
    first, topup = f"01/{GTIN}/21/TOP1", f"01/{GTIN}/21/TOP2"
    try:
        j.record("commission", "commission", "acme-cn", items=[first, topup],
                 product={"gtin": GTIN, "name": "Aurora wireless earbuds"})
        j.record("ship", "ship", "acme-cn", items=[first, topup], to="pearl-export")
        j.record("receive", "receive", "pearl-export", items=[first, topup], from_="acme-cn", ship=j.ids["ship"])
        j.record("pack-pallet", "aggregate", "pearl-export", container=PALLET, items=[first])
        j.record("pack-container", "aggregate", "pearl-export", container=CONTAINER, items=[PALLET])
        j.record("top-up", "aggregate", "pearl-export", container=PALLET, items=[topup])
        j.record("ship-container", "ship", "pearl-export", items=[CONTAINER], to="hh-warehouse")
        j.record("release", "inspect", "de-customs", items=[CONTAINER], decision="released")
        j.record("warehouse-receives", "receive", "hh-warehouse", items=[CONTAINER], from_="pearl-export",
                 ship=j.ids["ship-container"])
        ledger = j.net.ledger
        moves = [j.ids[n] for n in ("ship-container", "release", "warehouse-receives")]
        control = lookup(ledger, first)
        assert [p["event_id"] for p in control.path][-3:] == moves and control.holder == "hh-warehouse"

        answer = lookup(ledger, topup)
        assert [p["event_id"] for p in answer.path][-4:] == [j.ids["top-up"]] + moves, \
            "the container's moves after the top-up are missing from the topped-up item's path"
        assert answer.holder == "hh-warehouse"
        assert head(ledger, topup) == j.ids["warehouse-receives"]

        j.record("unpack-container", "disaggregate", "hh-warehouse", container=CONTAINER, items=[PALLET])
        j.record("unpack-pallet", "disaggregate", "hh-warehouse", container=PALLET, items=[first, topup])
        after = lookup(ledger, topup)
        assert after.verdict == "genuine", after.to_json()["reasons"]
        assert after.holder == "hh-warehouse"
    finally:
        j.store.close()
