"""Witnesses served on loopback from threads (one werkzeug server each), for tests that need real HTTP but
not a separate process."""
from __future__ import annotations

import threading
from pathlib import Path

from werkzeug.serving import make_server

from tests.c2sp.procs import free_port
from tracker.checkpoint import parse_vkey
from tracker.cosignature import cosigner_vkey
from tracker.keys import KeyPair
from tracker.store.witness_db import open_witness_db
from tracker.witness import Witness
from web.witness import create_witness_app


class ThreadWitness:
    def __init__(self, directory: Path, *, name: str, key: KeyPair, log_vkeys: list[str], port: int | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.db = open_witness_db(f"sqlite:///{directory / 'witness.db'}")
        self.witness = Witness(name=name, key=key, logs=[parse_vkey(v) for v in log_vkeys], state=self.db)
        self.name, self.key = name, key
        self.port = port or free_port()
        self.server = None
        self.thread: threading.Thread | None = None

    @property
    def vkey(self) -> str:
        return cosigner_vkey(self.name, self.key.public_key)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadWitness":
        self.server = make_server("127.0.0.1", self.port, create_witness_app(self.witness), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self) -> None:
        self.stop()
        self.db.close()
