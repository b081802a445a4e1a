"""Shared fixtures: a fresh ledger per test on SQLite, and on PostgreSQL too when
WAYBILL_TEST_POSTGRES_URL is set (each test gets its own schema, dropped afterwards)."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tracker.keys import KeyPair, keypair_from_seed
from tracker.ledger import Ledger
from tracker.store import open_store

VECTORS = Path(__file__).resolve().parent / "vectors"  # copied in with their sources: see vectors/README.md
PG_URL = os.environ.get("WAYBILL_TEST_POSTGRES_URL")
T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=timezone.utc)


def fixed_key(name: str) -> KeyPair:
    """Deterministic keys make failures reproducible."""
    import hashlib

    return keypair_from_seed(hashlib.sha256(b"waybill-test-key:" + name.encode()).digest())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url():
    if not PG_URL:
        pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(PG_URL, schema)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request):
    """Run the test once per backend (PostgreSQL only when configured)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger_key() -> KeyPair:
    return fixed_key("ledger")


@pytest.fixture
def admin_key() -> KeyPair:
    return fixed_key("admin")


@pytest.fixture
def ledger(db_url, ledger_key, admin_key):
    store = open_store(db_url)
    led = Ledger.create(store, origin="waybill.test/ledger", ledger_key=ledger_key, admin_key=admin_key, now=T0)
    yield led
    store.close()
