"""A mirror catches up with a 100k-entry ledger (built by the bench generator) over HTTP tiles, verifying
every entry's hash and signature, and ends with the same root and the same answers to lookups."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.c2sp.procs import REPO, free_port
from tests.conftest import fixed_key
from tracker import provenance
from tracker.identifiers import parse_code
from tracker.ledger import Ledger
from tracker.mirror import Mirror
from tracker.store import open_store
from web import create_app
from web.mirror_cli import HttpTileSource

pytestmark = pytest.mark.slow
EVENTS = 100_000


def test_mirror_copies_a_100k_ledger(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from ledger_gen import build_ledger, read_manifest

    src_url = f"sqlite:///{tmp_path / 'source.db'}"
    build_ledger(src_url, EVENTS, seed=3, progress=False, mode="import", manifest_path=tmp_path / "items.tsv")
    store = open_store(src_url, create=False)
    source = Ledger(store)
    port = free_port()
    server = make_server("127.0.0.1", port, create_app({"LEDGER": source, "WAYBILL_WITNESSING": "0"}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mstore = open_store(f"sqlite:///{tmp_path / 'mirror.db'}")
    try:
        m = Mirror(mstore, log=source.note_verifier, name="mirror.test/big", key=fixed_key("big-mirror"))
        t = time.perf_counter()
        result = m.sync(HttpTileSource(f"http://127.0.0.1:{port}/tlog"))
        seconds = time.perf_counter() - t
        print(f"mirrored {result.size} entries in {seconds:.1f} s ({result.size / seconds:,.0f} entries/s)")
        assert result.size == source.size() > EVENTS
        copy = m.ledger()
        assert copy.verified_checkpoint().root_hash == source.verified_checkpoint().root_hash
        items = [k for k, n, _ in read_manifest(tmp_path / "items.tsv") if n >= 6][:20]
        for key in items:
            item = parse_code(key)
            assert provenance.lookup(copy, item).to_json() == provenance.lookup(source, item).to_json()
    finally:
        server.shutdown()
        server.server_close()
        mstore.close()
        store.close()
