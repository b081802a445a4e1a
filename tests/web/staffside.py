"""Fixtures and helpers for the staff side (accounts, devices, customs, admin).

The session template is the web ``world`` ledger plus users and approved browser devices (deterministic keys
standing in for the browsers' WebCrypto keys); each test gets its own copy. Import the fixtures with
``from tests.web.staffside import client, staff_app, staff_ledger, staff_world``.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from tests.conftest import fixed_key
from tests.web.conftest import World, make_app
from web import accounts
from tracker.dsse import Envelope
from tracker.keys import KeyPair
from tracker.ledger import Ledger
from tracker.signing import new_statement, sign_statement
from tracker.store import open_store

__all__ = ["USERS", "PASSWORD", "staff_world", "staff_ledger", "staff_app", "client", "device_key", "csrf", "login",
           "logged_in", "signed", "now", "StaffWorld", "json_post"]

PASSWORD = "correct horse battery"
# username -> (party, role, has an approved device)
USERS: Mapping[str, tuple[str, str, bool]] = {
    "admin": ("admin", "admin", True),
    "hh-staff": ("hh-warehouse", "staff", True),
    "hh-new": ("hh-warehouse", "staff", False),
    "berlin-staff": ("berlin-shop", "staff", True),
    "pearl-staff": ("pearl-export", "staff", True),
    "customs-de": ("de-customs", "customs", True),
}


@dataclass(frozen=True)
class StaffWorld:
    world: World
    db_dir: Path


def device_key(username: str) -> KeyPair:
    """The key a user's browser would hold (WebCrypto in real life)."""
    return fixed_key(f"device:{username}")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="session")
def staff_world(world: World, tmp_path_factory: pytest.TempPathFactory) -> StaffWorld:
    directory = tmp_path_factory.mktemp("staff-ledger")
    for f in world.db_file.parent.glob(world.db_file.name + "*"):
        shutil.copy(f, directory / f.name)
    store = open_store(f"sqlite:///{directory / world.db_file.name}")
    ledger = Ledger(store, signing_key=fixed_key("ledger"))
    stamp = now() - timedelta(minutes=10)
    for username, (party, role, approved) in USERS.items():
        user = accounts.create_user(ledger, username=username, password=PASSWORD, party_id=party, role=role, now=stamp)
        if approved:
            device = accounts.request_device(ledger, user, public_key=device_key(username).public_key_b64,
                                             label=f"{username} phone", now=stamp)
            accounts.approve_device_with_key(ledger, device.id, admin_key=fixed_key("admin"), now=stamp)
    store.close()
    return StaffWorld(world=world, db_dir=directory)


@pytest.fixture
def staff_ledger(staff_world: StaffWorld, tmp_path: Path) -> Iterator[Ledger]:
    name = staff_world.world.db_file.name
    for f in staff_world.db_dir.glob(name + "*"):
        shutil.copy(f, tmp_path / f.name)
    store = open_store(f"sqlite:///{tmp_path / name}", create=False)
    yield Ledger(store, signing_key=fixed_key("ledger"))
    store.close()


@pytest.fixture
def staff_app(staff_ledger: Ledger):
    return make_app(staff_ledger)


@pytest.fixture
def client(staff_app):
    return staff_app.test_client()


_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" type="hidden" value="([^"]+)"')


def csrf(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    found = _TOKEN.search(html)
    assert found, f"no CSRF token on {path}"
    return found.group(1) or found.group(2)


def login(client, username: str, password: str = PASSWORD, *, next_url: str | None = None):
    form = {"csrf_token": csrf(client), "username": username, "password": password}
    if next_url is not None:
        form["next"] = next_url
    return client.post("/login", data=form)


def logged_in(client, username: str):
    response = login(client, username)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def json_post(client, path: str, body: Any, *, token: str | None = "auto", page: str = "/account"):
    headers = {"Accept": "application/json"}
    if token == "auto":
        token = csrf(client, page)
    if token:
        headers["X-CSRFToken"] = token
    return client.post(path, json=body, headers=headers)


def signed(stype: str, actor: str, key: KeyPair, *, country: str = "DE", at: datetime | None = None,
           **fields: Any) -> Envelope:
    """A statement as the browser builds and signs it."""
    doc = new_statement(stype, actor=actor, time=at or now() - timedelta(seconds=5),
                        location={"name": f"Site of {actor}", "country": country}, **fields)
    return sign_statement(doc, key)
