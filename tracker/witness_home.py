"""A witness installation: a directory with ``witness.json`` (name, logs), ``keys/witness.key`` and the
witness database (``witness.db``, or ``database_url`` in the config for PostgreSQL)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .checkpoint import is_valid_key_name, parse_vkey
from .cosignature import cosigner_vkey
from .errors import InvalidInput, NotFound
from .keys import generate_keypair, read_key_file, write_key_file
from .witness import Witness

__all__ = ["WitnessInit", "init_witness", "open_witness", "witness_dir"]

CONFIG = "witness.json"


def witness_dir(value: str | os.PathLike[str] | None = None) -> Path:
    return Path(value or os.environ.get("WAYBILL_WITNESS_HOME") or "./.waybill-witness").resolve()


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessInit:
    directory: Path
    name: str
    vkey: str
    logs: tuple[str, ...]
    created: bool


def _config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG
    if not path.is_file():
        raise NotFound(f"no witness at {directory}: run `tracker witness init` first", code="not_initialised")
    return json.loads(path.read_text())


def init_witness(directory: Path, *, name: str | None, logs: Sequence[str], passphrase: str | None = None,
                 database_url: str | None = None) -> WitnessInit:
    """Create the witness (key, config, database) or add logs to an existing one. Idempotent."""
    for vkey in logs:
        parse_vkey(vkey)  # each log is an Ed25519 note key whose name is its origin
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "keys" / "witness.key"
    path = directory / CONFIG
    created = not path.exists()
    if created:
        if not name or not is_valid_key_name(name):
            raise InvalidInput("a witness needs --name: a key name such as witness.example.org/w1 (no spaces or '+')",
                               code="invalid_name")
        key_path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key_path.parent, 0o700)
        key = generate_keypair()
        write_key_file(key_path, key, passphrase=passphrase)
        conf: dict[str, Any] = {"name": name, "logs": [], "database_url": database_url or f"sqlite:///{directory / 'witness.db'}"}
    else:
        conf = _config(directory)
        if name and name != conf["name"]:
            raise InvalidInput(f"this witness is already named {conf['name']}", code="invalid_name")
        key = read_key_file(key_path, passphrase=passphrase)
    by_origin = {parse_vkey(v).name: v for v in conf["logs"]}
    by_origin.update({parse_vkey(v).name: v for v in logs})
    conf["logs"] = sorted(by_origin.values())
    path.write_text(json.dumps(conf, indent=1) + "\n")
    return WitnessInit(directory=directory, name=conf["name"], vkey=cosigner_vkey(conf["name"], key.public_key),
                       logs=tuple(conf["logs"]), created=created)


def open_witness(directory: Path, *, passphrase: str | None = None) -> Witness:
    from .store.witness_db import open_witness_db

    conf = _config(directory)
    key = read_key_file(directory / "keys" / "witness.key", passphrase=passphrase)
    state = open_witness_db(conf.get("database_url") or f"sqlite:///{directory / 'witness.db'}")
    return Witness(name=conf["name"], key=key, logs=[parse_vkey(v) for v in conf["logs"]], state=state)
