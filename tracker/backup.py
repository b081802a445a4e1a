"""`tracker backup FILE` and `tracker restore FILE`: everything needed to bring an installation back.

A backup is one tar file:

- ``waybill-backup.json``, the manifest: format version, backend, the ledger's origin and verifier key,
  the copy's tree size and newest signed checkpoint, and a SHA-256 of every other member;
- the database copy (``ledger.sqlite3``, or ``ledger.pgdump`` from pg_dump), taken online from one snapshot
  (tracker/store/backup.py): writers go on while it is made, and the copy is exactly the ledger as of
  its checkpoint;
- ``home/config.json`` and ``home/keys/*.key``: without the ledger key a restored ledger could never append
  again. Key files are copied as they are (a passphrase-protected key stays protected). ``--no-keys`` leaves
  them out, e.g. for a copy an auditor only verifies. The file is written 0600 under a temporary name and
  renamed when complete, so a crash never leaves a half backup under the final name.

A restore goes into an empty ledger only (the database named by this home's configuration), never over an
existing one; it checks every checksum, that the keys it would install match the ledger's verifier key and
any key already in the home, and afterwards that the restored ledger serves the manifest's checkpoint.
``tracker verify`` then re-checks every signature and hash.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from .checkpoint import parse_vkey, verify_checkpoint
from .config import Config
from .errors import TrackerError
from .keys import read_key_file
from .statements import format_time
from .store import open_store, sqlite_file
from .store.backup import (Progress, Snapshot, copy_sqlite, dump_postgres, ledger_rows, restore_postgres,
                           restore_sqlite, safe_url)

__all__ = ["BackupInfo", "RestoreRefused", "backup", "restore", "read_manifest", "FORMAT"]

FORMAT = "waybill-backup"
VERSION = 1
MANIFEST = "waybill-backup.json"
_DB_MEMBER = {"sqlite": "ledger.sqlite3", "postgresql": "ledger.pgdump"}
_KEY_NAMES = ("ledger.key", "admin.key")


class RestoreRefused(TrackerError):
    """The restore would overwrite or mix up something: nothing was changed."""

    code = "restore_refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupInfo:
    backend: str
    origin: str
    vkey: str
    tree_size: int
    checkpoint: str | None
    created_at: str
    schema: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # name -> sha256 hex

    @property
    def has_keys(self) -> bool:
        return any(name.startswith("home/keys/") for name in self.members)

    def to_json(self) -> dict[str, object]:
        return {"format": FORMAT, "version": VERSION, "backend": self.backend, "origin": self.origin,
                "vkey": self.vkey, "tree_size": self.tree_size, "checkpoint": self.checkpoint,
                "created_at": self.created_at, "schema": self.schema, "members": self.members}


def _backend(url: str) -> str:
    return "sqlite" if sqlite_file(url) is not None or url.startswith("sqlite") else "postgresql"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _quiet(stage: str, done: int, total: int) -> None:
    pass


def backup(config: Config, dest: Path, *, now: datetime, include_keys: bool = True, overwrite: bool = False,
           progress: Progress = _quiet) -> BackupInfo:
    """Write a backup of the installation ``config`` describes to ``dest``."""
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise TrackerError(f"{dest} already exists (give another name, or --force to replace it)",
                           code="backup_exists")
    backend = _backend(config.database_url)
    db_file = sqlite_file(config.database_url)
    if backend == "sqlite" and (db_file is None or not db_file.exists()):
        raise TrackerError(f"no ledger at {db_file or config.database_url}: nothing to back up",
                           code="not_initialised")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".waybill-backup-", dir=dest.parent) as work:
        db_copy = Path(work) / _DB_MEMBER[backend]
        snap: Snapshot = (copy_sqlite(config.database_url, db_copy, progress=progress) if backend == "sqlite"
                          else dump_postgres(config.database_url, db_copy, progress=progress))
        if "origin" not in snap.meta:
            raise TrackerError("the database holds no initialised ledger: nothing to back up", code="not_initialised")
        files: dict[str, Path] = {db_copy.name: db_copy}
        if config.config_path.exists():
            files["home/config.json"] = config.config_path
        if include_keys:
            for name in _KEY_NAMES:
                if (config.keys_dir / name).exists():
                    files[f"home/keys/{name}"] = config.keys_dir / name
        progress("checksumming", 0, len(files))
        members = {name: _sha256(path) for name, path in files.items()}
        info = BackupInfo(backend=backend, origin=snap.meta["origin"], vkey=snap.meta["vkey"],
                          tree_size=snap.tree_size, checkpoint=snap.checkpoint, created_at=format_time(now),
                          schema=snap.schema, members=members)
        partial = Path(work) / "backup.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, json.dumps(info.to_json(), indent=1, sort_keys=True).encode())
            for done, (name, path) in enumerate(files.items(), 1):
                tar.add(str(path), arcname=name, recursive=False, filter=_plain)
                progress("writing archive", done, len(files))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, dest)
    return info


def _plain(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mode = 0o600
    return member


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = _plain(tarfile.TarInfo(name))
    member.size = len(data)
    tar.addfile(member, io.BytesIO(data))


def read_manifest(path: Path) -> BackupInfo:
    """The manifest of a backup file, checked for format and version (the members are checked on restore)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            fh = tar.extractfile(MANIFEST)
            if fh is None:
                raise KeyError(MANIFEST)
            doc = json.loads(fh.read())
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise RestoreRefused(f"{path} is not a Waybill backup ({exc})", code="not_a_backup") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RestoreRefused(f"{path} is not a Waybill backup", code="not_a_backup")
    if doc.get("version") != VERSION:
        raise RestoreRefused(f"{path} is backup format version {doc.get('version')}; this release reads "
                             f"version {VERSION}", code="unsupported_backup")
    try:
        return BackupInfo(backend=doc["backend"], origin=doc["origin"], vkey=doc["vkey"],
                          tree_size=int(doc["tree_size"]), checkpoint=doc.get("checkpoint"),
                          created_at=doc["created_at"], schema=doc.get("schema"), members=dict(doc["members"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RestoreRefused(f"{path} has a damaged manifest ({exc})", code="not_a_backup") from exc


def _extract(tar: tarfile.TarFile, name: str, into: Path, expected: str) -> Path:
    """One member into ``into`` (never outside it, whatever the member's name says), checked against its hash."""
    src = tar.extractfile(name)
    if src is None:
        raise RestoreRefused(f"the backup lacks {name}", code="backup_corrupt")
    out = into / hashlib.sha256(name.encode()).hexdigest()[:16]
    digest = hashlib.sha256()
    with open(out, "wb") as fh:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            fh.write(block)
    if digest.hexdigest() != expected:
        raise RestoreRefused(f"{name} in the backup does not match its checksum: the file is damaged",
                             code="backup_corrupt")
    return out


def _check_keys(config: Config, info: BackupInfo, extracted: dict[str, Path]) -> dict[Path, Path]:
    """Key files to install (target -> extracted copy). Refuses a ledger key that is not the ledger's, and any
    key file in the home that differs from the one in the backup."""
    verifier = parse_vkey(info.vkey)
    install: dict[Path, Path] = {}
    home_ledger_key = config.ledger_key_path
    for name in _KEY_NAMES:
        member = f"home/keys/{name}"
        target = config.keys_dir / name
        if member not in extracted:
            continue
        if name == "ledger.key":
            try:
                key = read_key_file(extracted[member], passphrase=os.environ.get("WAYBILL_KEY_PASSPHRASE") or None)
            except TrackerError:
                key = None  # protected by a passphrase we do not have: compared byte for byte below
            if key is not None and key.public_key != verifier.public_key:
                raise RestoreRefused("the ledger key in the backup does not match the ledger's verifier key",
                                     code="key_mismatch")
        if target.exists():
            if target.read_bytes() != extracted[member].read_bytes():
                raise RestoreRefused(f"{target} already exists and differs from the backup's copy: move it away "
                                     "or restore into an empty home", code="key_mismatch")
            continue
        install[target] = extracted[member]
    if "home/keys/ledger.key" not in extracted and home_ledger_key.exists():
        try:
            key = read_key_file(home_ledger_key, passphrase=os.environ.get("WAYBILL_KEY_PASSPHRASE") or None)
        except TrackerError:
            key = None
        if key is not None and key.public_key != verifier.public_key:
            raise RestoreRefused(f"{home_ledger_key} is not the key of the ledger in the backup", code="key_mismatch")
    return install


def restore(config: Config, source: Path, *, progress: Progress = _quiet) -> BackupInfo:
    """Restore the backup ``source`` into the empty ledger database (and home) ``config`` describes."""
    info = read_manifest(source)
    backend = _backend(config.database_url)
    if info.backend != backend:
        raise RestoreRefused(f"the backup is of a {info.backend} ledger and this home's database is {backend}: "
                             "restore into the same kind of database", code="backend_mismatch")
    rows = ledger_rows(config.database_url)
    if rows:
        raise RestoreRefused(f"the ledger database at {safe_url(config.database_url)} is not empty ({rows} rows): a "
                             "restore never overwrites a ledger; restore into an empty database",
                             code="ledger_not_empty")
    db_member = _DB_MEMBER[backend]
    if db_member not in info.members:
        raise RestoreRefused(f"the backup lacks {db_member}", code="backup_corrupt")
    config.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".waybill-restore-", dir=config.home) as work, \
            tarfile.open(source, mode="r:") as tar:
        progress("checking backup", 0, len(info.members))
        extracted = {name: _extract(tar, name, Path(work), digest) for name, digest in info.members.items()}
        install = _check_keys(config, info, extracted)
        if backend == "sqlite":
            restore_sqlite(extracted[db_member], config.database_url, progress=progress)
        else:
            restore_postgres(extracted[db_member], config.database_url, schema=info.schema or "public",
                             progress=progress)
        store = open_store(config.database_url)  # brings an older backup's schema up to this release
        store.close()
        config.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.keys_dir, 0o700)
        for target, copy in install.items():
            _write_private(target, copy.read_bytes())
        if "home/config.json" in extracted and not config.config_path.exists():
            config.config_path.write_bytes(extracted["home/config.json"].read_bytes())
    _check_restored(config, info)
    return info


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _check_restored(config: Config, info: BackupInfo) -> None:
    """The restored ledger is the backed-up one: same origin and key, and it serves the manifest's checkpoint."""
    from .ledger import Ledger

    store = open_store(config.database_url, create=False)
    try:
        ledger = Ledger(store)
        if ledger.origin != info.origin or ledger.vkey != info.vkey:
            raise TrackerError("the restored ledger's origin or key differs from the backup's manifest",
                               code="restore_failed")
        served = ledger.checkpoint() if info.checkpoint is not None else None
        if served != info.checkpoint or ledger.size() != info.tree_size:
            raise TrackerError("the restored ledger does not serve the checkpoint the backup recorded",
                               code="restore_failed")
        if served is not None:
            verify_checkpoint(served, ledger.note_verifier, origin=ledger.origin)
    finally:
        store.close()


def describe(info: BackupInfo) -> str:
    """One line for the operator."""
    keys = "with keys" if info.has_keys else "without keys"
    return f"{info.backend} ledger {info.origin}: {info.tree_size} entries, {keys}, taken {info.created_at}"


def write_progress(out: IO[str]) -> Progress:
    """A plain progress printer (one line per stage change and every tenth of the work)."""
    last: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if stage not in last or done == total or done - last[stage] >= step:
            last[stage] = done
            out.write(f"{stage}: {done}/{total}\n")
            out.flush()

    return show
