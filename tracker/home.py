"""The operator's installation: ``WAYBILL_HOME`` (config, keys) plus the ledger database.

``init`` is idempotent; ``open_ledger`` is what the CLI and the web app call to get a ready Ledger.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .config import Config, load_config
from .errors import KeyFileError, NotFound
from .keys import KeyPair, generate_keypair, read_key_file, write_key_file
from .ledger import Ledger
from .store import open_store, sqlite_file

__all__ = ["InitResult", "init", "open_ledger", "read_passphrase"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InitResult:
    ledger: Ledger
    created: bool
    admin_key_path: Path | None
    admin_keyid: str


def read_passphrase(passphrase_file: str | os.PathLike[str] | None = None) -> str | None:
    """From a file (first line) or WAYBILL_KEY_PASSPHRASE; never from the command line, where ps would show it."""
    if passphrase_file:
        lines = Path(passphrase_file).read_text().splitlines()
        return lines[0] if lines else ""
    return os.environ.get("WAYBILL_KEY_PASSPHRASE") or None


def init(config: Config | None = None, *, admin_key_file: str | os.PathLike[str] | None = None,
         now: datetime, passphrase: str | None = None) -> InitResult:
    """Create the ledger, its signing key and the genesis admin statement. On an existing ledger, changes nothing."""
    config = config or load_config()
    config.keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.keys_dir, 0o700)
    if config.ledger_key_path.exists():
        ledger_key = read_key_file(config.ledger_key_path, passphrase=passphrase)
    else:
        ledger_key = generate_keypair()
    store = open_store(config.database_url)
    with store.read() as txn:
        existing = txn.meta().get("origin")
    if existing:
        if not config.ledger_key_path.exists():
            raise KeyFileError(f"the ledger at {config.database_url} exists but its key {config.ledger_key_path} "
                               "is missing: point WAYBILL_HOME at the installation that created it")
        ledger = Ledger(store, signing_key=ledger_key)
        return InitResult(ledger=ledger, created=False, admin_key_path=None,
                          admin_keyid=ledger.party("admin").keys[0].keyid)
    admin_path: Path | None
    if admin_key_file:
        admin_key = read_key_file(admin_key_file, passphrase=passphrase)
        admin_path = Path(admin_key_file)
    elif config.admin_key_path.exists():
        admin_key, admin_path = read_key_file(config.admin_key_path, passphrase=passphrase), config.admin_key_path
    else:
        admin_key, admin_path = generate_keypair(), config.admin_key_path
        write_key_file(admin_path, admin_key, passphrase=passphrase)
    if not config.ledger_key_path.exists():
        write_key_file(config.ledger_key_path, ledger_key, passphrase=passphrase)
    if not config.config_path.exists():
        config.config_path.write_text(json.dumps({"origin": config.origin, "resolver": config.resolver}, indent=1))
    ledger = Ledger.create(store, origin=config.origin, ledger_key=ledger_key, admin_key=admin_key, now=now)
    return InitResult(ledger=ledger, created=True, admin_key_path=admin_path, admin_keyid=admin_key.keyid)


def open_ledger(config: Config | None = None, *, writable: bool = True, passphrase: str | None = None) -> Ledger:
    """The initialised ledger; with ``writable`` it carries the ledger's signing key for appends."""
    config = config or load_config()
    db_file = sqlite_file(config.database_url)
    if db_file is not None and not db_file.exists():  # don't leave an empty database behind a typo'd home
        raise NotFound(f"no ledger at {db_file}: run `tracker init` first (or set WAYBILL_HOME)",
                       code="not_initialised")
    store = open_store(config.database_url)
    key: KeyPair | None = None
    if writable:
        if not config.ledger_key_path.exists():
            store.close()
            raise NotFound(f"no ledger key at {config.ledger_key_path}: run `tracker init` first",
                           code="not_initialised")
        key = read_key_file(config.ledger_key_path, passphrase=passphrase)
    try:
        return Ledger(store, signing_key=key)
    except NotFound:
        store.close()
        raise
