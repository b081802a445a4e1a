"""Reliability fixtures: ``installation`` (a fresh, initialised WAYBILL_HOME per test on each backend:
SQLite always, PostgreSQL when WAYBILL_TEST_POSTGRES_URL is set) and ``figures`` (numbers each test
reports, printed at the end of the session and appended to ``$WAYBILL_RELIABILITY_LOG`` if set, from
which docs/reliability.md is written)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.reliability.harness import PG_URL, Installation, PgSchemas

_FIGURES: list[dict[str, Any]] = []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    if request.param == "postgres" and not PG_URL:
        pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
    return request.param


@pytest.fixture
def make_installation(backend: str, tmp_path: Path) -> Callable[..., Installation]:
    """Factory: a new initialised installation on this test's backend each call."""
    schemas = PgSchemas(PG_URL) if backend == "postgres" else None
    made = 0

    def make(name: str = "") -> Installation:
        nonlocal made
        made += 1
        home = tmp_path / f"home{made}{name}"
        url = schemas.new() if schemas else None
        return Installation(home=home, database_url=url).init()

    yield make
    if schemas:
        schemas.close()


@pytest.fixture
def installation(make_installation) -> Installation:
    return make_installation()


@pytest.fixture
def figures(request) -> dict[str, Any]:
    """Numbers a test wants on the record (events posted, processes killed, cases tried...)."""
    record: dict[str, Any] = {"test": request.node.nodeid}
    started = time.monotonic()
    yield record
    record["seconds"] = round(time.monotonic() - started, 1)
    _FIGURES.append(record)
    log = os.environ.get("WAYBILL_RELIABILITY_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for record in _FIGURES:
        rest = {k: v for k, v in record.items() if k != "test"}
        terminalreporter.write_line(f"{record['test']}: {json.dumps(rest, sort_keys=True)}")
