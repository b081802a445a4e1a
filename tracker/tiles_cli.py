"""`tracker tiles export DIR`: the ledger's tiles as static files (tracker/tiles_export.py).

Exit codes: 0 exported; 1 refused (DIR holds another ledger's export, a larger or a diverging tree); 3 other
errors.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import EXIT_REFUSED, _fail
from .errors import InvalidInput, TrackerError
from .home import open_ledger

__all__ = ["tiles"]


@click.group()
def tiles() -> None:
    """The ledger as a C2SP tiled log (also served live under /tlog/ by `tracker serve`)."""


@tiles.command("export")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write the latest checkpoint (with its witnesses' cosignatures), its hash tiles and entry bundles into
    DIR, to be served as <base>/tlog/ by any static web server or CDN (`tracker mirror --from <base>` reads it).
    A re-run writes only new tiles, and the checkpoint last. Progress goes to stderr."""
    from .tiles_export import export_tiles

    ledger = open_ledger()
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth != shown[0] or done == total:
            shown[0] = tenth
            click.echo(f"tiles: {done}/{total}", err=True)

    try:
        result = export_tiles(ledger, directory, progress=progress)
    except InvalidInput as exc:
        _fail(exc, EXIT_REFUSED)
    except TrackerError as exc:
        _fail(exc)
    click.echo(f"exported checkpoint of {result.size} entries to {directory}: {result.written} tiles written, "
               f"{result.kept} already there, {result.removed} partial tiles removed ({result.seconds:.1f} s)")
    click.echo(f"serve {directory} as <base>/tlog/; tiles are immutable (cache them forever), the checkpoint "
               "is not (a few seconds)", err=True)
    sys.stdout.flush()
