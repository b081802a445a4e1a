"""The consumer's phone checks the proof bundle itself: the page's script verifies the ledger's signature,
the witnesses' cosignatures, every inclusion proof and every statement signature, and says so; change one
byte of the bundle and it says the check failed."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest

from tests.c2sp.servers import ThreadWitness
from tests.conftest import T0, fixed_key
from tests.e2e.conftest import _chromium_or_skip, shot
from tracker.cosigning import cosigned_note
from tracker.ledger import Ledger
from tracker.policy import check_checkpoint, parse_policy
from tracker.scenarios import Network, load_scenarios
from tracker.store import open_store

pytestmark = pytest.mark.e2e


def _key_with_plus(prefix: str, name: str, sig_type: int):
    """A deterministic key whose vkey's base64 holds a '+' (a vkey is split at its first two '+' only)."""
    from tests.c2sp import ref

    for i in range(1000):
        key = fixed_key(f"{prefix}-{i}")
        if "+" in ref.vkey(name, sig_type, key.public_key).split("+", 2)[2]:
            return key
    raise AssertionError("no such key")


@pytest.fixture(scope="module")
def witnessed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    _chromium_or_skip()
    from werkzeug.serving import make_server

    from web import create_app

    d = tmp_path_factory.mktemp("proof-e2e")
    store = open_store(f"sqlite:///{d / 'ledger.db'}")
    ledger = Ledger.create(store, origin="waybill.e2e/proofs",
                           ledger_key=_key_with_plus("e2e-ledger", "waybill.e2e/proofs", 1),
                           admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    item = {s.name: s for s in load_scenarios()}["genuine-cross-border"].play(net, n="P")
    ws = [ThreadWitness(d / f"w{i}", name=f"w{i}.e2e/witness", key=_key_with_plus(f"e2e-w{i}", f"w{i}.e2e/witness", 4),
                        log_vkeys=[ledger.vkey]).start() for i in (1, 2)]
    policy = parse_policy(f"log {ledger.vkey}\n" + "".join(f"witness w{i} {w.vkey} {w.url}\n" for i, w in
                                                           enumerate(ws, 1)) + "group both all w1 w2\nquorum both\n")
    app = create_app({"LEDGER": ledger, "SECRET_KEY": "e2e", "RATELIMIT_ENABLED": False,
                      "WAYBILL_WITNESS_POLICY": policy})
    deadline = time.monotonic() + 30
    while not check_checkpoint(cosigned_note(ledger), policy).quorum_met:
        assert time.monotonic() < deadline, "the witnesses never cosigned"
        time.sleep(0.05)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _, gtin, _, serial = item.split("/", 3)
    try:
        yield f"http://127.0.0.1:{server.server_port}", f"/01/{gtin}/21/{serial}"
    finally:
        server.shutdown()
        app.extensions["waybill_collector"].stop()
        for w in ws:
            w.close()
        store.close()


def test_phone_checks_the_bundle_then_refuses_a_changed_byte(witnessed_site, artifacts: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM

    base, path = witnessed_site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base + path)
            page.wait_for_selector("#device-check:not([data-state=pending])", timeout=20_000)
            state = page.get_attribute("#device-check", "data-state")
            result = page.inner_text("#device-check .device-check-result")
            shot(page, artifacts, "proof-check-ok")
            assert state == "ok", (result, page.inner_text("#device-check .device-check-detail"), errors)
            assert result == "Checked on this device against 2 of 2 witnesses"
            assert "commission by" in page.inner_text("#device-check .device-check-detail")

            changed: list[str] = []

            def tamper(route) -> None:
                html = route.fetch().text()
                at = html.index('"entry": "', html.index('id="proof-bundle"')) + len('"entry": "') + 40
                flipped = "B" if html[at] != "B" else "C"
                changed.append(f"{html[at]}->{flipped}")
                route.fulfill(status=200, content_type="text/html; charset=utf-8",
                              body=html[:at] + flipped + html[at + 1:])

            page2 = browser.new_page()
            page2.route(base + path, tamper)
            page2.goto(base + path)
            page2.wait_for_selector("#device-check:not([data-state=pending])", timeout=20_000)
            shot(page2, artifacts, "proof-check-tampered")
            assert changed
            assert page2.get_attribute("#device-check", "data-state") == "failed"
            assert page2.inner_text("#device-check .device-check-result") == "Check failed on this device"
            assert "not in the signed log" in page2.inner_text("#device-check .device-check-detail")
        finally:
            browser.close()
