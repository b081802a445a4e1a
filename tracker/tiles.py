"""The ledger as a C2SP tiled transparency log (c2sp.org/tlog-tiles): hash tiles and entry bundles.

Nothing new is stored: the tile at level L, index N is hashes ``(8L, N*256 + i)`` of the perfect subtrees the
ledger already keeps (table merkle_nodes), and an entry bundle is the stored ``leaf_data`` of 256
consecutive entries, each with a big-endian uint16 length. Only what a signed checkpoint covers is served,
so every response is immutable and can be cached (or exported to a static host) forever.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Iterator

from .errors import IntegrityError, InvalidInput, NotFound
from .ledger import Ledger
from .merkle import HASH_SIZE

__all__ = ["TileRef", "parse_tile_path", "tile_path", "read_tile", "split_bundle", "tiles_for_size",
           "TILE_WIDTH", "MAX_ENTRY_BYTES"]

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRY_BYTES = 0xFFFF
_PATH = re.compile(r"(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


@dataclass(frozen=True, slots=True, kw_only=True)
class TileRef:
    level: int | None  # None: an entry bundle
    index: int
    width: int | None  # None: a full tile

    @property
    def count(self) -> int:
        return self.width or TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def tile_path(level: int | None, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (``tile/entries/...`` for level None), N in 'x'-prefixed 3-digit groups."""
    groups = f"{index:d}"
    groups = "0" * (-len(groups) % 3) + groups
    parts = [groups[i:i + 3] for i in range(0, len(groups), 3)]
    encoded = "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])
    head = "entries" if level is None else str(level)
    return f"tile/{head}/{encoded}" + (f".p/{width}" if width is not None else "")


def parse_tile_path(rest: str) -> TileRef:
    """``<L>/<N>[.p/<W>]`` as it follows ``tile/``; raises InvalidInput on anything else."""
    m = _PATH.fullmatch(rest)
    if not m or (m.group(3) and int(m.group(3)) >= TILE_WIDTH):
        raise InvalidInput("not a tile path: tile/<level>/<index>[.p/<width>]", code="invalid_tile_path")
    level = None if m.group(1) == "entries" else int(m.group(1))
    if level is not None and level > 63:
        raise InvalidInput("tile level must be 0-63", code="invalid_tile_path")
    groups = m.group(2).split("/")
    if len(groups) > 1 and groups[0] == "x000":
        raise InvalidInput("tile index has a leading zero group", code="invalid_tile_path")
    index = int("".join(g.lstrip("x") for g in groups))
    if index >= 1 << 62:
        raise InvalidInput("tile index too large", code="invalid_tile_path")
    return TileRef(level=level, index=index, width=int(m.group(3)) if m.group(3) else None)


def _covered(ref: TileRef, size: int) -> bool:
    """Whether every hash or entry of the tile lies within a tree of ``size`` leaves."""
    span = 1 << (TILE_HEIGHT * (ref.level or 0))
    return (ref.index * TILE_WIDTH + ref.count) * span <= size


def read_tile(ledger: Ledger, ref: TileRef) -> bytes:
    """The tile's bytes, if the latest signed checkpoint covers all of it; NotFound otherwise."""
    with ledger.store.read() as txn:
        cp = txn.latest_checkpoint()
        size = cp.size if cp else 0
        if not _covered(ref, size):
            raise NotFound(f"{ref.path} is beyond the latest checkpoint ({size} entries)", code="tile_not_found")
        first = ref.index * TILE_WIDTH
        if ref.level is None:
            rows = txn.entries_at(range(first, first + ref.count))
            out = bytearray()
            for i in range(first, first + ref.count):
                entry = rows.get(i)
                if entry is None:
                    raise IntegrityError(f"entry {i} is missing from the ledger below its signed size")
                if len(entry.leaf_data) > MAX_ENTRY_BYTES:
                    raise IntegrityError(f"entry {i} is {len(entry.leaf_data)} bytes: more than an entry bundle's "
                                         "uint16 length can carry", code="entry_too_large")
                out += struct.pack(">H", len(entry.leaf_data)) + entry.leaf_data
            return bytes(out)
        level = TILE_HEIGHT * ref.level
        nodes = txn.nodes_between([(level, first, first + ref.count - 1)])
        hashes = [nodes.get((level, i)) for i in range(first, first + ref.count)]
        if any(h is None or len(h) != HASH_SIZE for h in hashes):
            raise IntegrityError(f"the stored tree lacks a node of {ref.path}")
        return b"".join(h for h in hashes if h is not None)


def split_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle; raises InvalidInput if the lengths do not add up."""
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise InvalidInput("entry bundle ends inside a length prefix", code="invalid_bundle")
        (n,) = struct.unpack_from(">H", data, i)
        if i + 2 + n > len(data):
            raise InvalidInput("entry bundle ends inside an entry", code="invalid_bundle")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


def tiles_for_size(size: int) -> Iterator[TileRef]:
    """Every hash tile and entry bundle a tree of ``size`` leaves is served as (full, then partial)."""
    full, rest = divmod(size, TILE_WIDTH)
    for n in range(full):
        yield TileRef(level=None, index=n, width=None)
    if rest:
        yield TileRef(level=None, index=full, width=rest)
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        full, rest = divmod(count, TILE_WIDTH)
        for n in range(full):
            yield TileRef(level=level, index=n, width=None)
        if rest:
            yield TileRef(level=level, index=full, width=rest)
        level += 1
