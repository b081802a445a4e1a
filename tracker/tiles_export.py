"""`tracker tiles export DIR`: the ledger's C2SP tlog-tiles tree as plain files, for a static host or a CDN.

A directory served as ``<base>/tlog/`` answers every read a tlog client (and ``tracker mirror``) makes:
``checkpoint``, ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``. Tiles are immutable, so a re-run
writes only what is new. The checkpoint is written last and atomically (like every file here: a temporary
file renamed into place), so a reader never sees a checkpoint whose tiles are not there yet; partial tiles
whose full tile exists are removed after it, as c2sp.org/tlog-tiles allows.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checkpoint import Checkpoint, verify_checkpoint
from .cosigning import cosigned_note
from .errors import InvalidInput, VerificationError
from .ledger import Ledger
from .merkle import HASH_SIZE, verify_consistency
from .tiles import TILE_WIDTH, TileRef, read_tile, tiles_for_size

__all__ = ["ExportResult", "export_tiles"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ExportResult:
    size: int
    written: int  # tiles and bundles written by this run
    kept: int  # already there (immutable: not rewritten)
    removed: int  # partial ones dropped because their full tile is there
    seconds: float


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # files for a web server to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _exported_checkpoint(ledger: Ledger, directory: Path) -> Checkpoint | None:
    """The checkpoint an earlier export left in ``directory``; refuses another log's or a larger tree."""
    path = directory / "checkpoint"
    if not path.is_file():
        return None
    try:
        return verify_checkpoint(path.read_bytes(), ledger.note_verifier, origin=ledger.origin)
    except VerificationError as exc:
        raise InvalidInput(f"{path} is not a checkpoint of this ledger ({exc.message}): export into an empty "
                           "directory or this ledger's own export", code="foreign_export", field="DIR") from exc


def _check_consistent(ledger: Ledger, before: Checkpoint, cp: Checkpoint, directory: Path) -> None:
    """The exported tree must be a prefix of this one: the tiles already there are kept as they are, so an
    export left by another history signed with the same key (a split view) is refused, not mixed in."""
    try:
        if before.size == cp.size:
            if before.root_hash != cp.root_hash:
                raise VerificationError("same size, different root hash")
        elif before.size > 0:
            proof = ledger.consistency_proof(before.size, cp.size)
            verify_consistency(before.size, cp.size, before.root_hash, cp.root_hash, proof)
    except VerificationError as exc:
        raise InvalidInput(f"{directory} holds a checkpoint of {before.size} entries that this ledger's history "
                           f"does not extend ({exc.message}): a split view, or another ledger with the same key",
                           code="export_diverged", field="DIR") from exc


def _exported(ref: TileRef, path: Path) -> bool:
    """Already in ``directory``: tiles are immutable (a partial tile of a given width too) and written
    atomically, so one that is there is whole; a full hash tile must also have its 256 hashes, a full bundle
    some bytes."""
    if not path.is_file():
        return False
    if ref.width is not None:
        return True
    size = path.stat().st_size
    return size == TILE_WIDTH * HASH_SIZE if ref.level is not None else size > 0


def _prune_partials(directory: Path) -> int:
    """Drop ``<N>.p/`` directories whose full tile ``<N>`` has been exported."""
    removed = 0
    tiles = directory / "tile"
    if not tiles.is_dir():
        return 0
    for partial_dir in tiles.rglob("*.p"):
        if partial_dir.is_dir() and (partial_dir.parent / partial_dir.name[:-2]).is_file():
            removed += sum(1 for p in partial_dir.iterdir() if p.is_file())
            shutil.rmtree(partial_dir)
    return removed


def export_tiles(ledger: Ledger, directory: Path, *, progress: Progress | None = None) -> ExportResult:
    """Write the tiles of the latest checkpoint (with its cosignatures) into ``directory``."""
    started = time.monotonic()
    note = cosigned_note(ledger)
    cp = verify_checkpoint(note, ledger.note_verifier, origin=ledger.origin)
    directory.mkdir(parents=True, exist_ok=True)
    before = _exported_checkpoint(ledger, directory)
    if before is not None and before.size > cp.size:
        raise InvalidInput(f"{directory} holds a checkpoint of {before.size} entries, more than this ledger's "
                           f"{cp.size}: refusing to roll an export back", code="export_ahead", field="DIR")
    if before is not None:
        _check_consistent(ledger, before, cp, directory)
    refs = list(tiles_for_size(cp.size))
    written = kept = 0
    for done, ref in enumerate(refs, start=1):
        path = directory / ref.path
        if _exported(ref, path):
            kept += 1
        else:
            _write_atomically(path, read_tile(ledger, ref))
            written += 1
        if progress is not None:
            progress(done, len(refs))
    _write_atomically(directory / "checkpoint", note.encode("utf-8"))
    removed = _prune_partials(directory)
    return ExportResult(size=cp.size, written=written, kept=kept, removed=removed,
                        seconds=time.monotonic() - started)
