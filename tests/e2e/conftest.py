"""Browser end-to-end fixtures: the real app on a loopback port (werkzeug in a thread) over a fresh ledger,
and Debian's Chromium driven by Playwright with a fake camera that shows a generated label.

Screenshots go to ``artifacts/e2e/`` (git-ignored). The tests skip, saying why, only when there is no
Chromium (``apt-get install -y chromium``) or no Playwright package (``pip install playwright``; never
``playwright install``: the system Chromium is used)."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import T0, fixed_key
from tests.e2e.camera import camera_frame, write_y4m
from web import accounts
from tracker.identifiers import ItemKey
from tracker.ledger import Ledger
from tracker.scenarios import Network, load_scenarios
from tracker.store import open_store

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("WAYBILL_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "e2e password 123"
USERS = (("admin", "admin", "admin"), ("hh-staff", "hh-warehouse", "staff"), ("customs-de", "de-customs", "customs"))
SCENARIOS = ("genuine-cross-border", "held-by-customs", "in-transit", "custody-gap", "genuine-pallet")
HLD = ItemKey(gtin="09506000134352", serial="HLDE")  # held by DE customs, shipped to hh-warehouse
TRN = ItemKey(gtin="09506000134352", serial="TRNE")  # on its way to hh-warehouse


@dataclass
class Site:
    base: str
    ledger: Ledger
    camera_file: Path

    def url(self, path: str) -> str:
        return self.base + path


def _chromium_or_skip() -> None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set WAYBILL_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401  (only checking it is there)
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; it drives the "
                    "system Chromium, no `playwright install` needed)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _chromium_or_skip()
    from werkzeug.serving import make_server

    from scanners.labels import render_png
    from web import create_app

    directory = tmp_path_factory.mktemp("e2e")
    store = open_store(f"sqlite:///{directory / 'ledger.db'}")
    ledger = Ledger.create(store, origin="waybill.e2e/ledger", ledger_key=fixed_key("ledger"),
                           admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    by_name = {s.name: s for s in load_scenarios()}
    for name in SCENARIOS:
        by_name[name].play(net, n="E")
    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    for username, party, role in USERS:
        accounts.create_user(ledger, username=username, password=PASSWORD, party_id=party, role=role, now=now)
    app = create_app({"LEDGER": ledger, "SECRET_KEY": "e2e-secret", "RATELIMIT_ENABLED": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="waybill-e2e-server", daemon=True)
    thread.start()
    label = render_png(HLD, resolver=base, box=8)
    camera_file = write_y4m(camera_frame(label), directory / "camera.y4m")
    try:
        yield Site(base=base, ledger=ledger, camera_file=camera_file)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={site.camera_file}"])
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: object, artifacts: Path, name: str) -> Path:
    """Save a full-page screenshot as an artifact of the run."""
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


__all__ = ["Site", "site", "browser", "artifacts", "shot", "PASSWORD", "HLD", "TRN"]
