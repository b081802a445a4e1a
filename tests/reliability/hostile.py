"""A ledger with hostile text in every field a signer controls, served by the real app factory, shared by the
hostile-input and access tests. Every response these tests see is checked: never a 5xx, never a stack trace,
every API rejection a 4xx with ``{"error": {"code", "message"}}``."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from tests.reliability.harness import (GTIN, PG_URL, Installation, PgSchemas, item_key, now, register_parties,
                                       statement)
from web import create_app

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\bsqlalchemy\.|psycopg\.|"
                   r"werkzeug\.exceptions\.|jinja2\.exceptions")

# What attackers write into free-text fields (each within that field's length rule).
XSS_SCRIPT = "<script>alert('w')</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
XSS_SVG = "<svg/onload=alert(3)>"
TRAVERSAL = "../../../../etc/passwd"
TEMPLATE = "{{7*7}}${7*7}<%= 7*7 %>"
# Serials: 1-20 characters of GS1 AI-82, which includes < > " ' & / and . — all of them hostile in HTML or paths.
SERIAL_HTML = "<i>&\"'x</i>"
SERIAL_PATH = "../../etc/pass"
RAW_MARKERS = ("<script>alert", "<img src=x", "<svg/onload", "<i>&", "\"><img")
PRIVATE_NOTE = "private customs note 7731"


@dataclass
class HostileWorld:
    inst: Installation
    app: Flask
    items: dict[str, str] = field(default_factory=dict)  # name -> item key
    events: dict[str, str] = field(default_factory=dict)  # name -> event id
    revoked_at: datetime | None = None

    def client(self) -> FlaskClient:
        return self.app.test_client()


def world_on(backend: str, home: Path) -> Iterator[HostileWorld]:
    """The body of the test modules' ``world`` fixtures: a world on SQLite or on a fresh PostgreSQL schema."""
    import pytest

    schemas = None
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
        schemas = PgSchemas(PG_URL)
    inst = Installation(home=home, database_url=schemas.new() if schemas else None).init()
    w = build_world(inst)
    w.backend = backend  # type: ignore[attr-defined]
    yield w
    w.app.extensions["waybill"].store.close()
    if schemas:
        schemas.close()


def build_world(inst: Installation) -> HostileWorld:
    revoked_at = now() - timedelta(minutes=10)
    register_parties(inst, {
        "acme": {"roles": ["manufacturer"], "name": "Acme <b>Corp</b>", "gs1_prefixes": ["950600"]},
        "rival": {"roles": ["manufacturer"]},
        "oldco": {"roles": ["manufacturer"], "revoked_at": revoked_at, "devices": 2},
        "evil-co": {"roles": ["warehouse", "retailer"], "name": XSS_SCRIPT + XSS_IMG},
        "de-customs": {"roles": ["customs"], "country": "DE", "name": f"Zoll {XSS_SVG}"},
    })
    app = create_app({"WAYBILL_CONFIG": inst.config, "RATELIMIT_ENABLED": False, "SECRET_KEY": "hostile-test"})
    world = HostileWorld(inst=inst, app=app, revoked_at=revoked_at)
    client = world.client()
    t = now() - timedelta(minutes=40)
    html_item, path_item = item_key(SERIAL_HTML), item_key(SERIAL_PATH)
    c1 = statement("commission", "acme", at=t, items=[html_item], place=XSS_IMG,
                   product={"gtin": GTIN, "name": XSS_SCRIPT + XSS_IMG + TEMPLATE, "lot": TRAVERSAL,
                            "expiry": XSS_SVG})
    c2 = statement("commission", "acme", at=t, items=[path_item], place=TRAVERSAL,
                   product={"gtin": GTIN, "name": TRAVERSAL + " " + XSS_SVG, "lot": XSS_IMG})
    s1 = statement("ship", "acme", at=t + timedelta(minutes=1), items=[html_item], to="evil-co", place=XSS_SCRIPT,
                   prev={html_item: c1.event_id})
    r1 = statement("receive", "evil-co", at=t + timedelta(minutes=2), items=[html_item], from_="acme", place=XSS_SVG,
                   ship=s1.event_id, prev={html_item: s1.event_id})
    i1 = statement("inspect", "de-customs", at=t + timedelta(minutes=3), country="DE", items=[html_item],
                   place=TEMPLATE,
                   decision="held", note=f"{PRIVATE_NOTE} {XSS_SCRIPT}", prev={html_item: r1.event_id})
    for env in (c1, c2, s1, r1):
        response = client.post("/api/v1/events", json=env.to_json())
        assert response.status_code == 201, response.get_data(as_text=True)
    # A plaintext note is refused at admission now (it would be public for ever); ledgers from before hold such
    # statements, so this one comes in as an operator's import of old records.
    refused = client.post("/api/v1/events", json=i1.to_json())
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_statement"
    (imported,) = app.extensions["waybill"].import_envelopes([i1], now=now())
    assert not isinstance(imported, Exception), imported
    world.items.update(html=html_item, path=path_item)
    world.events.update(c1=c1.event_id, c2=c2.event_id, s1=s1.event_id, r1=r1.event_id, i1=i1.event_id)
    return world


def page_path(key: str) -> str:
    _, gtin, _, serial = key.split("/", 3)
    return f"/01/{gtin}/21/{quote(serial, safe='')}"


def api_item_path(key: str) -> str:
    _, gtin, _, serial = key.split("/", 3)
    return f"/api/v1/items/{gtin}/{quote(serial, safe='')}"


def body_text(response: Any) -> str:
    """The body of a Flask test response, a requests response or a schemathesis response."""
    if hasattr(response, "get_data"):
        return response.get_data(as_text=True)
    return response.content.decode("utf-8", "replace")


def mimetype(response: Any) -> str:
    if hasattr(response, "mimetype"):
        return response.mimetype
    value = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.split(";")[0].strip()


def assert_no_server_error(response: Any, what: str) -> str:
    body = body_text(response)
    assert response.status_code < 500, f"{what}: {response.status_code} {body[:300]}"
    assert not TRACE.search(body), f"{what}: the answer shows internals: {body[:500]}"
    return body


def assert_api_error(response: Any, what: str, status: int | None = None, code: str | None = None) -> dict:
    body = assert_no_server_error(response, what)
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {body[:300]}"
    if status is not None:
        assert response.status_code == status, f"{what}: {response.status_code} {body[:300]}"
    assert mimetype(response) == "application/json", f"{what}: {mimetype(response)}"
    doc = json.loads(body)
    assert isinstance(doc, dict) and set(doc) == {"error"}, f"{what}: {doc}"
    err = doc["error"]
    assert set(err) == {"code", "message"} and SNAKE.match(err["code"]) and err["message"].strip(), f"{what}: {err}"
    if code is not None:
        assert err["code"] == code, f"{what}: {err}"
    return err


def assert_escaped(html: str, what: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{what}: raw {marker!r} in the page"
    # Executable inline scripts are forbidden; inert data blocks (the proof bundle's
    # <script type="application/json">, whose JSON escapes '<') are not scripts the browser runs.
    assert not re.search(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))", html, flags=re.I), \
        f"{what}: inline <script>"
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, flags=re.S | re.I):
        assert "<" not in block and json.loads(block), f"{what}: a data block holds '<' or is not JSON"
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, flags=re.I), f"{what}: inline event handler"
