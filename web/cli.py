"""``tracker serve``: the web app and API on Flask's threaded server (registered into the ``tracker``
command through the ``waybill.cli`` entry point group).

For production use gunicorn instead::

    WAYBILL_HOME=/srv/waybill gunicorn -c python:web.gunicorn_conf -b 127.0.0.1:8000 'web:create_app()'
"""
from __future__ import annotations

import socket
import sys
from typing import Any

import click

from tracker.config import Config, load_config
from tracker.errors import TrackerError

__all__ = ["serve", "user", "note"]


def _check_port(host: str, port: int) -> None:
    """Fail early, in one line, if we cannot listen (port taken, unknown host) instead of a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except PermissionError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: permission denied "
                                       "(ports below 1024 need privileges; pick another with --port)") from exc
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: port {port} is already in use "
                                       "(stop the other server or pick another with --port)") from exc


def _demo(config: Config, resolver: str) -> None:
    try:
        from tracker.demo import ensure_demo
    except ImportError as exc:
        raise click.ClickException("this installation has no demo builder (tracker.demo)") from exc

    def progress(done: int, total: int) -> None:
        click.echo(f"\rbuilding the demo network: {done}/{total} lots", nl=done >= total, err=True)

    from datetime import datetime, timezone

    from tracker.home import open_ledger

    from .accounts import DEMO_USERS, ensure_demo_users

    summary = ensure_demo(config, progress=progress)
    led = open_ledger(config, writable=False)
    try:
        ensure_demo_users(led, now=datetime.now(timezone.utc))
        registered = {p.id for p in led.parties()}
    finally:
        led.store.close()
    click.echo(summary.describe(resolver))
    # Staff accounts are the web side's: the demo sign-ins are created and listed here, not by tracker.demo.
    click.echo("  demo sign-ins (/login), for a local demo only:")
    for username, password, party, role in DEMO_USERS:
        if party in registered:
            click.echo(f"    {username:<14} {password:<16} {role} of {party}")


def _demo_witnesses(config: Config) -> list[Any]:
    """Two local witnesses for the demo (another process each, on loopback) and the policy that names them,
    unless the installation already has its own policy. Returns the processes to stop on exit."""
    import subprocess

    from tracker.cosigning import POLICY_FILE
    from tracker.home import open_ledger
    from tracker.witness_home import init_witness

    policy_path = config.home / POLICY_FILE
    marker = "# demo witnesses (tracker serve --demo)\n"
    if policy_path.exists() and not policy_path.read_text().startswith(marker):
        return []
    ledger = open_ledger(config, writable=False)
    lines, procs = [marker, f"log {ledger.vkey}\n"], []
    for i in (1, 2):
        directory = config.home / "demo-witnesses" / f"w{i}"
        result = init_witness(directory, name=f"witness{i}.demo.waybill/w", logs=[ledger.vkey])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = open(directory / "serve.log", "a")
        procs.append(subprocess.Popen([sys.executable, "-m", "tracker.cli", "witness", "serve", "--dir",
                                       str(directory), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT))
        lines.append(f"witness w{i} {result.vkey} http://127.0.0.1:{port}\n")
    ledger.store.close()
    policy_path.write_text("".join(lines) + "group both all w1 w2\nquorum both\n")
    click.echo(f"demo witnesses: {', '.join(f'pid {p.pid}' for p in procs)} (policy: {policy_path})", err=True)
    import time as _time

    _time.sleep(1.0)  # let them bind before the first checkpoint goes out (the collector retries anyway)
    return procs


def _serve_forever(app: Any, host: str, port: int) -> None:
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--demo", is_flag=True, help="Build the demo supply-chain network first (once) and list sample items.")
def serve(host: str, port: int, demo: bool) -> None:
    """Serve the consumer pages and the JSON API (/api/v1) on Flask's threaded server.

    For production, run gunicorn: gunicorn -c python:web.gunicorn_conf -b 127.0.0.1:8000 'web:create_app()'
    """
    from web import create_app

    _check_port(host, port)
    config = load_config()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    witnesses: list[Any] = []
    try:
        if demo:
            _demo(config, base)
            witnesses = _demo_witnesses(config)
        app = create_app({"WAYBILL_CONFIG": config})
    except TrackerError as exc:
        for proc in witnesses:
            proc.terminate()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Waybill is serving {config.database_url.split('://', 1)[0]} ledger {config.home} "
               f"on {base}/ (Ctrl+C to stop)", err=True)
    if witnesses:  # a SIGTERM must still stop the demo witnesses
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _serve_forever(app, host, port)
    finally:
        for proc in witnesses:
            proc.terminate()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve())


# --- `tracker user ...`: staff accounts and device approvals (web.accounts) ---------------------------
# Registered through the `waybill.cli` entry point group as `user = "web.cli:user"`.

def _ledger_for_cli() -> Any:
    from tracker.home import open_ledger, read_passphrase

    try:
        return open_ledger(load_config(), passphrase=read_passphrase())
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc


def _now(led: Any) -> Any:
    """Never behind what the ledger already recorded (tracker/clock.py)."""
    from tracker.clock import ledger_clock

    return ledger_clock(led.store).now()


def _read_password(password_file: str | None, *, confirm: bool = True) -> str:
    if password_file:
        from pathlib import Path

        lines = Path(password_file).read_text().splitlines()
        return lines[0] if lines else ""
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@click.group("user")
def user() -> None:
    """Staff accounts (sign-in for the staff, customs and admin pages) and browser device approvals."""


@user.command("create")
@click.argument("username")
@click.option("--party", "party_id", required=True, help="Party the user acts for (must be registered).")
@click.option("--role", type=click.Choice(["staff", "customs", "admin"]), required=True,
              help="staff (supply-chain party), customs (customs party) or admin (party admin).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the password from the first line of this file instead of prompting.")
def user_create(username: str, party_id: str, role: str, password_file: str | None) -> None:
    """Create a user bound to a party and a role."""
    from . import accounts

    led = _ledger_for_cli()
    try:
        created = accounts.create_user(led, username=username, password=_read_password(password_file),
                                       party_id=party_id, role=role, now=_now(led))
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"created {created.username}: {created.role} of {created.party_id}")


@user.command("list")
def user_list() -> None:
    """List users and their devices."""
    from . import accounts

    led = _ledger_for_cli()
    devices = accounts.list_devices(led)
    for u in accounts.list_users(led):
        state = " (disabled)" if u.disabled else ""
        click.echo(f"{u.username}\t{u.role}\t{u.party_id}{state}")
        for d in devices:
            if d.user_id == u.id:
                click.echo(f"  device {d.keyid}\t{d.status}\t{d.label}")


@user.command("passwd")
@click.argument("username")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
def user_passwd(username: str, password_file: str | None) -> None:
    """Set a user's password (ends the user's other sessions)."""
    from . import accounts

    led = _ledger_for_cli()
    try:
        accounts.set_password(led, username, _read_password(password_file))
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"password of {username} changed")


@user.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
def user_disable(username: str, enable: bool) -> None:
    """Disable (or with --enable, re-enable) a user: a disabled user cannot sign in."""
    from . import accounts

    led = _ledger_for_cli()
    try:
        found = next(u for u in accounts.list_users(led) if u.username == username.lower())
    except StopIteration:
        raise click.ClickException(f"no user {username!r}") from None
    accounts.set_disabled(led, found.id, not enable)
    click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@user.command("approve")
@click.argument("keyid")
@click.option("--admin-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The registry admin key file (WAYBILL_HOME/keys/admin.key).")
def user_approve(keyid: str, admin_key: str) -> None:
    """Approve a pending browser device key with the admin key file.

    This is how the first admin browser is approved; after that, admins approve devices in the browser."""
    from . import accounts
    from tracker.home import read_passphrase
    from tracker.keys import read_key_file

    led = _ledger_for_cli()
    pending = [d for d in accounts.list_devices(led, status="pending") if d.keyid == keyid.lower()]
    if not pending:
        raise click.ClickException(f"no pending device with key id {keyid} (see `tracker user list`)")
    try:
        key = read_key_file(admin_key, passphrase=read_passphrase())
        result = accounts.approve_device_with_key(led, pending[0].id, admin_key=key, now=_now(led))
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"approved {keyid} for {pending[0].party_id}: {result.event_id}")


# --- `tracker note ...`: private customs notes (web.notes) ------------------------------------------------
# Registered through the `waybill.cli` entry point group as `note = "web.cli:note"`.

@click.group("note")
def note() -> None:
    """Private customs notes: kept off the public ledger, readable by customs of that country and the admin."""


@note.command("add")
@click.argument("event_id")
@click.option("--salt", required=True, help="The salt (hex) printed by `tracker record inspect --note`.")
@click.option("--note-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the note from this file instead of standard input.")
def note_add(event_id: str, salt: str, note_file: str | None) -> None:
    """Store the note behind an inspect statement's note_commitment (the salt and note must open it)."""
    from pathlib import Path

    from .notes import store_note

    text = Path(note_file).read_text() if note_file else sys.stdin.read()
    led = _ledger_for_cli()
    try:
        stored = store_note(led, event_id=event_id, note=text.rstrip("\n"), salt=salt, now=_now(led))
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        led.store.close()
    click.echo(f"note for {event_id} {'stored' if stored else 'was already stored'}")
