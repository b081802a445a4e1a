"""A mirror (c2sp.org/tlog-mirror): a verified copy of a ledger, kept in its own database, read through the
ledger's tiles, cosigned by the mirror once it holds every entry a checkpoint covers.

What the mirror checks before it keeps anything: the checkpoint's log signature (and, with a policy, the
witness quorum); that it extends what the mirror already holds (its own stored tree, grown by the new
leaves, must reach the new root: a history rewritten anywhere fails here); every entry against the source's
level-0 tiles (so the first bad entry is named); and every entry's signature and signer, replaying the
registry exactly as ``tracker verify`` does. A sync step is one transaction: anything wrong and nothing of
it is kept, and the mirror stops with a ``SplitView`` or ``IntegrityError`` saying what it saw.

The mirror database is an ordinary ledger store (same tables), so the web app serves the same consumer
lookups and API from it, read-only. Fetching is the caller's (``web/mirror_cli.py``): this module sees a
``TileSource``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, cast

from . import merkle
from .checkpoint import Checkpoint, NoteVerifier, b64encode, parse_note
from .cosignature import Cosigner, cosign, cosignature_timestamp, open_cosigned_checkpoint
from .errors import IntegrityError, TrackerError, VerificationError
from .keys import KeyPair
from .ledger import Ledger, party_from_record
from .policy import Policy, check_checkpoint
from .statements import PartyRecord
from .store.base import CosignWriteTxn, Store, StoredCheckpoint, StoredCosignature
from .tiles import TILE_WIDTH, TileRef, split_bundle

__all__ = ["SplitView", "TileSource", "SyncResult", "Mirror", "open_mirror_store"]


def open_mirror_store(url: str) -> Store:
    """The mirror's own database (migrated): an ordinary ledger store."""
    from .store import open_store

    return open_store(url)


CHUNK = 4096  # entries checked (and their signatures verified in bulk) at a time


class SplitView(IntegrityError):
    """The source showed a history that contradicts one the mirror already verified."""

    code = "split_view"


class TileSource(Protocol):
    def checkpoint(self) -> str: ...
    def tile(self, path: str) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    old_size: int
    size: int
    seconds: float
    witnessed_by: tuple[str, ...]
    cosignature: str | None


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Mirror:
    """One mirrored log in ``store``. ``key``/``name``: the mirror's cosigner identity."""

    def __init__(self, store: Store, *, log: NoteVerifier, name: str, key: KeyPair,
                 policy: Policy | None = None, source_url: str = "") -> None:
        self.store, self.log, self.name, self.key, self.policy = store, log, name, key, policy
        self.cosigner = Cosigner.of(name, key.public_key)
        with store.write() as txn:
            meta = txn.meta()
            if meta.get("origin") and (meta["origin"] != log.name or meta.get("vkey") != log.vkey):
                raise TrackerError(f"this database mirrors {meta['origin']} ({meta.get('vkey')}), not {log.vkey}",
                                   code="wrong_mirror")
            if not meta.get("origin"):
                txn.set_meta({"origin": log.name, "vkey": log.vkey, "mirror_of": source_url, "mirror_name": name,
                              "created_at": _stamp()})

    def ledger(self) -> Ledger:
        """A read-only Ledger over the mirror's copy (what the web app serves)."""
        return Ledger(self.store)

    def size(self) -> int:
        with self.store.read() as txn:
            cp = txn.latest_checkpoint()
        return cp.size if cp else 0

    def _verify_checkpoint(self, note: str) -> tuple[Checkpoint, tuple[str, ...], list[str]]:
        """The checkpoint, the policy witnesses that cosigned it, and their verified lines."""
        if self.policy is None:
            cc = open_cosigned_checkpoint(note, self.log, [], origin=self.log.name)
            return cc.checkpoint, (), []
        check = check_checkpoint(note, self.policy, origin=self.log.name, log=self.log)
        if not check.quorum_met:
            raise VerificationError(f"the source's checkpoint {check.cosigned.checkpoint.size} does not meet the "
                                    f"witness policy ({check.summary()}; {check.quorum})", code="quorum_not_met")
        names = {w.cosigner.name for w in self.policy.witnesses}
        lines = [s.line for s in parse_note(note).signatures if s.name in set(check.cosigned.cosigners) & names]
        return check.cosigned.checkpoint, check.witnessed_by, lines

    def sync(self, source: TileSource, *, progress: Callable[[int, int], None] | None = None) -> SyncResult:
        t0 = time.perf_counter()
        note = source.checkpoint()
        cp, witnessed, witness_lines = self._verify_checkpoint(note)
        text = parse_note(note).text
        log_lines = [s.line for s in parse_note(note).signatures if s.name == self.log.name
                     and s.key_id == self.log.key_hash]
        with self.store.write() as txn:
            latest = txn.latest_checkpoint()
            have = latest.size if latest else 0
            if cp.size < have:
                raise SplitView(f"the source's checkpoint has {cp.size} entries, fewer than the {have} this mirror "
                                "verified: the log was rolled back, or this is another copy of it")
            frontier = merkle.CompactRange.from_store(have, txn.nodes)
            if cp.size == have:
                if latest is not None and frontier.root() != cp.root_hash:
                    raise SplitView(f"two different roots for size {have}: the source shows another history")
                if latest is not None and latest.note.split("\n\n")[0] == text.rstrip("\n"):
                    return SyncResult(old_size=have, size=have, seconds=time.perf_counter() - t0,
                                      witnessed_by=witnessed, cosignature=None)
            registry: dict[str, PartyRecord] = {pid: party_from_record(rec) for pid, rec in
                                                txn.party_records().items()}
            pending: list[tuple[int, list[bytes], bytes]] = []
            for start in range(have - have % TILE_WIDTH, cp.size, TILE_WIDTH):
                index, width = start // TILE_WIDTH, min(TILE_WIDTH, cp.size - start)
                part = None if width == TILE_WIDTH else width
                leaves = split_bundle(source.tile(TileRef(level=None, index=index, width=part).path))
                hashes = source.tile(TileRef(level=0, index=index, width=part).path)
                if len(leaves) != width or len(hashes) != width * merkle.HASH_SIZE:
                    raise IntegrityError(f"the source's entry bundle or tile {index} does not hold {width} entries")
                skip = max(0, have - start)
                pending.append((start + skip, leaves[skip:], hashes[skip * merkle.HASH_SIZE:]))
                if sum(len(p[1]) for p in pending) >= CHUNK or start + width >= cp.size:
                    self._take(txn, pending, frontier, registry)
                    pending = []
                if progress:
                    progress(start + width, cp.size)
            if frontier.root() != cp.root_hash:
                raise SplitView(f"the {cp.size} entries the source served do not hash to its signed root: they are "
                                f"not the history the checkpoint (and its witnesses) vouch for")
            stored_note = text + "\n" + "".join(f"{line}\n" for line in log_lines)
            if latest is None or latest.size != cp.size:
                txn.add_checkpoint(StoredCheckpoint(size=cp.size, root_hash=cp.root_hash, note=stored_note,
                                                    created_at=_stamp()))
            mine = cosign(text, name=self.name, key=self.key, timestamp=int(time.time()))
            c = cast(CosignWriteTxn, txn)
            for line in [*witness_lines, mine]:
                sig = parse_note(f"x\n\n{line}\n").signatures[0]
                c.add_cosignature(StoredCosignature(cosigner=sig.name, key_id=sig.key_id.hex(), tree_size=cp.size,
                                                    line=line, timestamp=cosignature_timestamp(line),
                                                    received_at=_stamp()))
        return SyncResult(old_size=have, size=cp.size, seconds=time.perf_counter() - t0, witnessed_by=witnessed,
                          cosignature=mine)

    @staticmethod
    def _take(txn: Any, pending: list[tuple[int, list[bytes], bytes]], frontier: merkle.CompactRange,
              registry: dict[str, PartyRecord]) -> None:
        """Check a run of consecutive entries (several bundles: signatures verify in bulk) and stage them."""
        nodes: list[tuple[int, int, bytes]] = []
        for first, leaves, tile in pending:
            for i, data in enumerate(leaves):
                h = merkle.leaf_hash(data)
                if h != tile[i * merkle.HASH_SIZE:(i + 1) * merkle.HASH_SIZE]:
                    raise IntegrityError(f"entry {first + i} served by the source does not match its hash in the "
                                         f"log's tree: the entry was edited (leaf hash {b64encode(h)})")
                nodes.extend(frontier.append(h))
        if not pending:
            return
        checked = Ledger.check_copied_entries(pending[0][0], [d for _, leaves, _ in pending for d in leaves], registry)
        txn.add_entries([row for row, _, _ in checked], ingested_at=_stamp())
        txn.add_nodes(nodes)
        txn.add_key_events([(k, row.leaf_index) for row, touched, _ in checked for k in touched])
        for row, _, record in checked:
            if record is not None:
                party = party_from_record(record)
                txn.put_party(party.id, record, row.leaf_index, [k.keyid for k in party.keys], party.gs1_prefixes)
