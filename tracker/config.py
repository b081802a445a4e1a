"""Where things live (SPEC §6): ``WAYBILL_HOME`` holds config and keys, ``WAYBILL_DATABASE_URL`` the ledger."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

__all__ = ["Config", "load_config"]

DEFAULT_ORIGIN = "waybill.local/ledger"
DEFAULT_RESOLVER = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    home: Path
    database_url: str
    origin: str
    resolver: str

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def ledger_key_path(self) -> Path:
        return self.keys_dir / "ledger.key"

    @property
    def admin_key_path(self) -> Path:
        return self.keys_dir / "admin.key"

    @property
    def config_path(self) -> Path:
        return self.home / "config.json"


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    home = Path(env.get("WAYBILL_HOME") or "./.waybill").resolve()
    stored: dict[str, str] = {}
    path = home / "config.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = {}
    url = env.get("WAYBILL_DATABASE_URL") or stored.get("database_url") or f"sqlite:///{home / 'ledger.db'}"
    return Config(home=home, database_url=url,
                  origin=env.get("WAYBILL_ORIGIN") or stored.get("origin") or DEFAULT_ORIGIN,
                  resolver=env.get("WAYBILL_RESOLVER") or stored.get("resolver") or DEFAULT_RESOLVER)
