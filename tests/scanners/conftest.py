"""Scanner fixtures: label images, a live Waybill server on 127.0.0.1 (the real web app over a real ledger,
served by werkzeug in a thread, stoppable and restartable on the same port), and a `scanner` runner.

The handheld tests talk to the server only over HTTP, as a device would; the ledger handle is there so a
test can check what was really stored.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import fixed_key
from tracker.keys import KeyPair, write_key_file

GTIN = "09506000134352"
RESOLVER = "https://id.example.com"


def item(serial: str) -> str:
    return f"01/{GTIN}/21/{serial}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingMiddleware:
    """Counts requests by (method, path prefix) and can fail the next N writes with 503 (a busy server)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self.fail_next_posts = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with self.lock:
            self.requests.append((method, path))
            fail = method == "POST" and self.fail_next_posts > 0
            if fail:
                self.fail_next_posts -= 1
        if fail:
            start_response("503 Service Unavailable", [("Content-Type", "application/json"), ("Retry-After", "0")])
            return [b'{"error": {"code": "unavailable", "message": "busy, try again"}}']
        return self.app(environ, start_response)

    def posts(self) -> list[str]:
        with self.lock:
            return [p for m, p in self.requests if m == "POST"]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # keep test output for failures


@dataclass
class LiveServer:
    """The web app over ``ledger`` on a fixed port; ``stop()``/``start()`` simulate the network going away."""

    ledger: Any
    net: Any
    port: int
    ship_event: str
    items: list[str]
    counter: CountingMiddleware | None = None
    _server: Any = None
    _thread: threading.Thread | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from web import create_app

        app = create_app(test_config={"LEDGER": self.ledger, "TESTING": True, "SECRET_KEY": "scanner-tests",
                                      "RATELIMIT_ENABLED": False, "WAYBILL_RESOLVER": RESOLVER})
        self.counter = CountingMiddleware(app.wsgi_app)
        app.wsgi_app = self.counter  # type: ignore[method-assign]
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if self._thread is not None:
                self._thread.join(timeout=5)

    def stored(self, event_id: str) -> bool:
        """Whether the ledger holds this event (event ids are unique: the ledger size tells how many entries)."""
        from tracker.errors import NotFound

        try:
            self.ledger.get_event(event_id)
        except NotFound:
            return False
        return True


def _build_ledger(tmp_path: Path) -> tuple[Any, Any, str, list[str]]:
    from tracker.ledger import Ledger
    from tracker.scenarios import Network
    from tracker.store import open_store

    now = datetime.now(timezone.utc).replace(microsecond=0)
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                           admin_key=fixed_key("admin"), now=now - timedelta(days=3))
    net = Network(ledger, admin_key=fixed_key("admin"), start=now - timedelta(days=2))
    net.add_party("acme-cn", name="Acme Manufacturing", country="CN", roles=["manufacturer"],
                  gs1_prefixes=["950600"])
    net.add_party("pearl-export", name="Pearl River Export", country="CN", roles=["exporter"])
    net.add_party("hh-warehouse", name="Hamburg Logistics", country="DE", roles=["warehouse"])
    net.add_party("de-customs", name="German Customs Hamburg", country="DE", roles=["customs"])
    items = [item(f"H{i}") for i in range(1, 13)]
    net.record("commission", "acme-cn", items=items,
               product={"gtin": GTIN, "name": "Aurora wireless earbuds", "lot": "L2026-11"})
    ship = net.record("ship", "acme-cn", items=items, to="pearl-export")
    return ledger, net, ship.event_id, items


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    ledger, net, ship_event, items = _build_ledger(tmp_path)
    server = LiveServer(ledger=ledger, net=net, port=free_port(), ship_event=ship_event, items=items)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ledger.store.close()


@pytest.fixture
def device_key(tmp_path: Path) -> tuple[Path, KeyPair]:
    """pearl-export's registered device key (tracker.scenarios.party_key), as the key file on the handheld."""
    from tracker.scenarios import party_key

    pair = party_key("pearl-export")
    path = write_key_file(tmp_path / "device" / "device.key", pair)
    return path, pair


@dataclass
class Scanner:
    """Runs `scanner ...` in-process with its own home (queue) and server."""

    home: Path
    server: str
    key: Path | None = None

    def __call__(self, *args: str, server: str | None = None) -> Result:
        from scanners.cli import cli

        env = {"WAYBILL_SCANNER_HOME": str(self.home), "WAYBILL_SERVER": server or self.server}
        pre = ["--key", str(self.key)] if self.key else []
        return CliRunner().invoke(cli, [*pre, *args], env=env, catch_exceptions=False)


@pytest.fixture
def scanner(tmp_path: Path, device_key: tuple[Path, KeyPair], live: LiveServer) -> Scanner:
    return Scanner(home=tmp_path / "scanner-home", server=live.url, key=device_key[0])
