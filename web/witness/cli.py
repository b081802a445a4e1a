"""``tracker witness init|serve``: run a C2SP tlog-witness for a list of logs (registered through the
``waybill.cli`` entry point group)."""
from __future__ import annotations

import click

from tracker.errors import TrackerError

__all__ = ["witness"]

_dir_opt = click.option("--dir", "directory", type=click.Path(file_okay=False),
                        help="Witness directory (default WAYBILL_WITNESS_HOME or ./.waybill-witness).")


@click.group("witness")
def witness() -> None:
    """Run a C2SP tlog-witness: cosign a log's checkpoints only when they extend what it cosigned before."""


@witness.command("init")
@_dir_opt
@click.option("--name", help="The witness's key name, e.g. witness.example.org/w1 (first time only).")
@click.option("--log", "logs", multiple=True, help="A log's verifier key (origin+keyhash+key); repeatable.")
@click.option("--database-url", help="PostgreSQL URL for the witness state (default SQLite in the directory).")
def witness_init(directory: str | None, name: str | None, logs: tuple[str, ...], database_url: str | None) -> None:
    """Create the witness (key, config, database), or add logs to it. Prints the witness's verifier key."""
    from tracker.home import read_passphrase
    from tracker.witness_home import init_witness, witness_dir

    try:
        result = init_witness(witness_dir(directory), name=name, logs=logs, passphrase=read_passphrase(),
                              database_url=database_url)
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"witness {'created' if result.created else 'updated'} at {result.directory}")
    click.echo(f"name: {result.name}")
    click.echo(f"vkey: {result.vkey}")
    for log in result.logs:
        click.echo(f"log: {log}")


@witness.command("serve")
@_dir_opt
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7380, show_default=True, type=click.IntRange(1, 65535))
def witness_serve(directory: str | None, host: str, port: int) -> None:
    """Serve POST /add-checkpoint and GET /<origin hash>/checkpoint."""
    from tracker.home import read_passphrase
    from tracker.witness_home import open_witness, witness_dir
    from web.cli import _check_port, _serve_forever

    from . import create_witness_app

    _check_port(host, port)
    try:
        w = open_witness(witness_dir(directory), passphrase=read_passphrase())
    except TrackerError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"witness {w.name} for {len(w.logs)} log(s) on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    _serve_forever(create_witness_app(w), host, port)
