"""``tracker serve`` (web/cli.py): one-line errors, the demo hook, and a real threaded server."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from click.testing import CliRunner

from tracker.config import load_config
from tracker.home import init
from web import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("WAYBILL_HOME", str(home))
    monkeypatch.delenv("WAYBILL_DATABASE_URL", raising=False)
    return home


@pytest.fixture
def initialised(home: Path) -> Path:
    init(load_config(), now=datetime.now(timezone.utc))
    return home


def run(*args: str):
    return CliRunner().invoke(cli.serve, list(args))


def test_serve_is_registered_as_a_tracker_command():
    found = [ep for ep in entry_points(group="waybill.cli") if ep.name == "serve"]
    assert found and found[0].value == "web.cli:serve"
    assert found[0].load() is cli.serve


def test_help_lists_the_options():
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--demo", "gunicorn"):
        assert option in result.output


def test_uninitialised_ledger_is_a_one_line_error(home):
    result = run("--port", str(free_port()))
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "tracker init" in lines[0]
    assert "Traceback" not in result.output
    assert not (home / "web-secret.key").exists()


def test_port_in_use_is_a_one_line_error(initialised):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("--port", str(port))
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "already in use" in lines[0] and "--port" in lines[0]


def test_bad_port_and_host(initialised):
    assert run("--port", "0").exit_code == 2
    result = run("--host", "no-such-host.invalid", "--port", str(free_port()))
    assert result.exit_code == 1 and "cannot listen" in result.output


def test_serve_builds_the_app_and_serves_it(initialised, monkeypatch):
    served = {}
    monkeypatch.setattr(cli, "_serve_forever", lambda app, host, port: served.update(app=app, host=host, port=port))
    port = free_port()
    result = run("--port", str(port))
    assert result.exit_code == 0, result.output
    assert served["host"] == "127.0.0.1" and served["port"] == port
    client = served["app"].test_client()
    assert client.get("/api/v1/checkpoint").status_code == 200
    assert f"http://127.0.0.1:{port}/" in result.output


def test_demo_flag_prints_the_summary(initialised, monkeypatch):
    import tracker.demo

    calls = []

    def fake_ensure_demo(config, **kwargs):
        calls.append(config)
        return SimpleNamespace(describe=lambda resolver: f"Demo ledger: 3 items\n  genuine:\n    {resolver}/01/x/21/y")

    monkeypatch.setattr(tracker.demo, "ensure_demo", fake_ensure_demo)
    monkeypatch.setattr(cli, "_serve_forever", lambda app, host, port: None)
    port = free_port()
    result = run("--demo", "--port", str(port))
    assert result.exit_code == 0, result.output
    assert calls and calls[0].home == initialised
    assert f"http://127.0.0.1:{port}/01/x/21/y" in result.output
    # the sign-ins are the web side's (web.accounts): created and listed by `serve --demo`, not by tracker.demo
    assert "admin          waybill-admin" in result.output


def test_serve_demo_creates_the_demo_sign_ins_of_the_readme(home, monkeypatch):
    """`tracker serve --demo` (web side) creates the users README.md lists, and they can sign in."""
    import tracker.demo
    from tests.web.conftest import make_app
    from tracker.home import open_ledger
    from web import accounts

    real = tracker.demo.ensure_demo
    monkeypatch.setattr(tracker.demo, "ensure_demo", lambda config, **kw: real(config, items=40, **kw))
    monkeypatch.setattr(cli, "_serve_forever", lambda app, host, port: None)
    result = run("--demo", "--port", str(free_port()))
    assert result.exit_code == 0, result.output
    listed = {line.split()[0]: line.split()[1] for line in result.output.partition("demo sign-ins")[2].splitlines()[1:]
              if line.strip() and not line.startswith("Waybill")}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in ("admin", "customs-de", "customs-us", "hh-staff", "berlin-staff", "pearl-staff"):
        assert f"`{name}`" in readme and name in listed, (name, result.output)
        assert f"`{listed[name]}`" in readme
    led = open_ledger(load_config(), writable=False)
    try:
        assert accounts.authenticate(led, username="customs-de", password=listed["customs-de"],
                                     now=datetime.now(timezone.utc)).party_id == "de-customs"
        client = make_app(led).test_client()
        from tests.web.staffside import csrf
        response = client.post("/login", data={"username": "hh-staff", "password": listed["hh-staff"],
                                               "csrf_token": csrf(client, "/login")})
        assert response.status_code == 303 and response.headers["Location"] == "/staff/"
    finally:
        led.store.close()


def test_demo_flag_without_a_demo_builder(initialised, monkeypatch):
    monkeypatch.setitem(sys.modules, "tracker.demo", None)  # import fails as if the module did not exist
    result = run("--demo", "--port", str(free_port()))
    assert result.exit_code == 1 and "demo" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_serve_runs_a_real_threaded_server(initialised):
    port = free_port()
    env = {**os.environ, "WAYBILL_HOME": str(initialised)}
    proc = subprocess.Popen([sys.executable, "-c", "from web.cli import serve; serve()", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/v1/checkpoint", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.status_code == 200 and response.text.startswith("waybill.local/ledger\n")
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and page.headers["X-Frame-Options"] == "DENY"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_session_secret_is_shared_by_every_worker(initialised, monkeypatch):
    from web import create_app

    monkeypatch.delenv("WAYBILL_SECRET_KEY", raising=False)
    first, second = create_app(), create_app()
    assert first.config["SECRET_KEY"] and first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    secret_file = initialised / "web-secret.key"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("WAYBILL_SECRET_KEY", "from-the-environment")
    assert create_app().config["SECRET_KEY"] == "from-the-environment"


def test_settings_from_the_environment():
    from web.settings import DEFAULT_LOOKUP_LIMIT, from_environment

    defaults = from_environment({})
    assert defaults["RATELIMIT_ENABLED"] is True and defaults["WAYBILL_LOOKUP_LIMIT"] == DEFAULT_LOOKUP_LIMIT
    assert defaults["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024 and defaults["SESSION_COOKIE_SECURE"] is False
    custom = from_environment({"WAYBILL_RATELIMIT_ENABLED": "0", "WAYBILL_LOOKUP_LIMIT": "5 per second",
                               "WAYBILL_PROXY_HOPS": "2", "WAYBILL_SECURE_COOKIES": "1",
                               "WAYBILL_RATELIMIT_STORAGE_URI": "redis://cache:6379"})
    assert custom["RATELIMIT_ENABLED"] is False and custom["WAYBILL_LOOKUP_LIMIT"] == "5 per second"
    assert custom["WAYBILL_PROXY_HOPS"] == 2 and custom["SESSION_COOKIE_SECURE"] is True
    assert custom["RATELIMIT_STORAGE_URI"] == "redis://cache:6379"
