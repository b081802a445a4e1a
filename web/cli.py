"""``tracker serve``: the web app and API on Flask's threaded server (registered into the ``tracker``
command through the ``waybill.cli`` entry point group).

For production use gunicorn instead::

    WAYBILL_HOME=/srv/waybill gunicorn -w 4 -b 127.0.0.1:8000 'web:create_app()'
"""
from __future__ import annotations

import socket
import sys
from typing import Any

import click

from tracker.config import Config, load_config
from tracker.errors import TrackerError

__all__ = ["serve"]


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

    summary = ensure_demo(config, progress=progress)
    click.echo(summary.describe(resolver))


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

    For production, run gunicorn: gunicorn -w 4 -b 127.0.0.1:8000 'web:create_app()'
    """
    from web import create_app

    _check_port(host, port)
    config = load_config()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    try:
        if demo:
            _demo(config, base)
        app = create_app({"WAYBILL_CONFIG": config})
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Waybill is serving {config.database_url.split('://', 1)[0]} ledger {config.home} "
               f"on {base}/ (Ctrl+C to stop)", err=True)
    _serve_forever(app, host, port)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve())
