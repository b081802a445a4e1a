"""Web fixtures: ``app`` and ``client`` over a fresh temporary SQLite ledger per test.

The ledger is built once per session with ``Ledger.create`` and ``Network`` playing a few scenarios
(genuine, suspicious and counterfeit), then copied file-for-file for each test: every test gets its own
database, and the suite does not pay for re-signing the same history a hundred times.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from tests.conftest import T0, fixed_key
from tracker.dsse import Envelope
from tracker.ledger import Ledger
from tracker.scenarios import Network, load_scenarios, party_key
from tracker.signing import new_statement, sign_statement
from tracker.store import open_store
from web import create_app

ORIGIN = "waybill.test/ledger"
SCENARIOS = ("genuine-cross-border", "genuine-pallet", "held-by-customs", "custody-gap", "in-transit")
SUFFIX = "W"
GTIN = "09506000134352"


@dataclass(frozen=True)
class World:
    """What the template ledger holds: scenario name -> item key, and the expected verdicts."""
    items: Mapping[str, str]
    verdicts: Mapping[str, str]
    codes: Mapping[str, tuple[str, ...]]
    db_file: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("template-ledger")
    db_file = directory / "ledger.db"
    store = open_store(f"sqlite:///{db_file}")
    ledger = Ledger.create(store, origin=ORIGIN, ledger_key=fixed_key("ledger"), admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    by_name = {s.name: s for s in load_scenarios()}
    items, verdicts, codes = {}, {}, {}
    for name in SCENARIOS:
        scenario = by_name[name]
        items[name] = scenario.play(net, n=SUFFIX)
        verdicts[name] = scenario.verdict
        codes[name] = scenario.codes
    store.close()
    return World(items=items, verdicts=verdicts, codes=codes, db_file=db_file)


@pytest.fixture
def ledger(world: World, tmp_path: Path) -> Iterator[Ledger]:
    for f in world.db_file.parent.glob(world.db_file.name + "*"):
        shutil.copy(f, tmp_path / f.name)
    store = open_store(f"sqlite:///{tmp_path / world.db_file.name}", create=False)
    yield Ledger(store, signing_key=fixed_key("ledger"))
    store.close()


def make_app(ledger: Ledger, **overrides: Any):
    config = {"TESTING": True, "LEDGER": ledger, "SECRET_KEY": "test-secret", "RATELIMIT_ENABLED": False}
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app(ledger: Ledger):
    return make_app(ledger)


@pytest.fixture
def client(app):
    return app.test_client()


# --- signing what a device would post ------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def sign(stype: str, actor: str, *, device: int = 0, at: datetime | None = None, **fields: Any) -> Envelope:
    from tracker.demo import PARTIES

    country = next((c for pid, _name, c, _roles, _prefixes in PARTIES if pid == actor), "CN")  # where it operates
    location = {"name": f"Site of {actor}", "country": country}
    doc = new_statement(stype, actor=actor, time=at or now() - timedelta(seconds=5), location=location, **fields)
    return sign_statement(doc, party_key(actor, device))


def commission(serials: list[str], *, actor: str = "acme-cn", gtin: str = GTIN, **kw: Any) -> Envelope:
    return sign("commission", actor, items=[f"01/{gtin}/21/{s}" for s in serials],
                product={"gtin": gtin, "name": "Aurora wireless earbuds"}, **kw)


def admin_party(party_id: str, *, roles: list[str], country: str = "NL") -> Envelope:
    from tracker.signing import party_statement
    from tracker.statements import format_time

    key = party_key(party_id)
    doc = party_statement(admin="admin", time=now() - timedelta(seconds=5), location={"name": "Registry", "country": "ZZ"},
                          party_id=party_id, name=party_id.title(), country=country, roles=roles,
                          keys=[{"public_key": key.public_key_b64, "not_before": format_time(now() - timedelta(days=1))}])
    return sign_statement(doc, fixed_key("admin"))


@pytest.fixture
def openapi(client):
    from tests.web.openapi_check import OpenApi

    return OpenApi(client.get("/api/v1/openapi.json").get_json())


def item_path(key: str) -> tuple[str, str]:
    """(gtin, serial) of a canonical item key."""
    _, gtin, _, serial = key.split("/", 3)
    return gtin, serial
