"""Production serving: real gunicorn, 2 worker processes, one SQLite ledger, signed events posted over
HTTP from several threads at once. Every 201 must be in the ledger exactly once, leaf indexes must have
no gaps, and the full audit must pass."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tracker.config import load_config
from tracker.home import init, open_ledger
from tracker.keys import read_key_file
from tracker.scenarios import party_key
from tracker.signing import new_statement, party_statement, sign_statement
from tracker.statements import format_time

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GTIN = "09506000134352"
THREADS = 8
PER_THREAD = 12
BATCH = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    home = tmp_path / "waybill"
    env = {**os.environ, "WAYBILL_HOME": str(home), "WAYBILL_RATELIMIT_ENABLED": "0"}
    env.pop("WAYBILL_DATABASE_URL", None)
    config = load_config(env)
    init(config, now=datetime.now(timezone.utc) - timedelta(hours=1))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
         "web:create_app()"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/api/v1/checkpoint", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            assert proc.poll() is None, f"gunicorn exited: {proc.stdout.read()}"
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield base, config
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    assert proc.returncode is not None


def commission(serial: str):
    now = datetime.now(timezone.utc) - timedelta(seconds=2)
    doc = new_statement("commission", actor="gun-maker", time=now, location={"name": "Plant", "country": "CN"},
                        items=[f"01/{GTIN}/21/{serial}"], product={"gtin": GTIN, "name": "Load-tested widget"})
    return sign_statement(doc, party_key("gun-maker")).to_json()


def register_maker(base: str, config) -> None:
    admin = read_key_file(config.admin_key_path)
    key = party_key("gun-maker")
    now = datetime.now(timezone.utc) - timedelta(seconds=30)
    party = party_statement(admin="admin", time=now, location={"name": "Registry", "country": "ZZ"},
                            party_id="gun-maker", name="Gun Maker", country="CN", roles=["manufacturer"],
                            keys=[{"public_key": key.public_key_b64, "not_before": format_time(now - timedelta(days=1))}])
    response = requests.post(f"{base}/api/v1/events", json=sign_statement(party, admin).to_json(), timeout=10)
    assert response.status_code == 201, response.text


def test_concurrent_posts_through_gunicorn(server):
    base, config = server
    register_maker(base, config)

    def single_poster(n: int) -> list[tuple[int, dict]]:
        out = []
        with requests.Session() as http:
            for i in range(PER_THREAD):
                envelope = commission(f"T{n:02d}N{i:03d}")
                r = http.post(f"{base}/api/v1/events", json=envelope, timeout=30)
                out.append((r.status_code, r.json()))
                if i == 0:  # the same envelope again: 200 with the same ids, never a second leaf
                    again = http.post(f"{base}/api/v1/events", json=envelope, timeout=30)
                    assert again.status_code == 200 and again.json() == r.json()
        return out

    def batch_poster() -> list[tuple[int, dict]]:
        envelopes = [commission(f"BATCH{i:03d}") for i in range(BATCH)]
        r = requests.post(f"{base}/api/v1/events/batch", json={"envelopes": envelopes}, timeout=60)
        assert r.status_code == 200, r.text
        return [(201, result) for result in r.json()["results"]]

    with ThreadPoolExecutor(max_workers=THREADS + 1) as pool:
        futures = [pool.submit(single_poster, n) for n in range(THREADS)] + [pool.submit(batch_poster)]
        results = [item for f in futures for item in f.result()]

    assert all(status == 201 for status, _ in results), [r for r in results if r[0] != 201][:3]
    created = [body for _, body in results]
    assert all("error" not in body for body in created), created[:3]
    assert len(created) == THREADS * PER_THREAD + BATCH
    assert len({b["event_id"] for b in created}) == len(created)
    indexes = sorted(b["leaf_index"] for b in created)
    assert indexes == list(range(2, 2 + len(created)))  # 0: genesis, 1: gun-maker; then no gaps, no repeats

    ledger = open_ledger(config, writable=False)
    try:
        assert ledger.size() == 2 + len(created)
        with ledger.store.read() as txn:
            counts = Counter(entry.event_id for entry in txn.iter_entries())
        for body in created:
            assert counts[body["event_id"]] == 1
            entry, _ = ledger.get_event(body["event_id"])
            assert entry.leaf_index == body["leaf_index"]
        report = ledger.audit()
        assert report.entries == 2 + len(created)
        assert ledger.verified_checkpoint().size == report.entries
    finally:
        ledger.store.close()
    note = requests.get(f"{base}/api/v1/checkpoint", timeout=5).text
    assert note.splitlines()[1] == str(2 + len(created))


def test_gs1_paths_read_raw_through_gunicorn(server):
    """gunicorn passes RAW_URI: %2F stays inside a serial and a real '/' separates segments, on the consumer
    page and in the API alike."""
    base, config = server
    register_maker(base, config)
    for serial in ("A/B", "A"):
        assert requests.post(f"{base}/api/v1/events", json=commission(serial), timeout=10).status_code == 201
    json_only = {"Accept": "application/json"}
    for path in (f"/01/{GTIN}/21/A%2FB", f"/dl/01/{GTIN}/21/A%2FB", f"/api/v1/items/{GTIN}/A%2FB"):
        response = requests.get(base + path, headers=json_only, timeout=10)
        assert response.status_code == 200 and response.json()["serial"] == "A/B", (path, response.text[:300])
    for path in (f"/01/{GTIN}/21/A/B", f"/api/v1/items/{GTIN}/A/B"):
        response = requests.get(base + path, headers=json_only, timeout=10)
        assert response.status_code == 400 and "%2F" in response.json()["error"]["message"], path
    wrong_order = requests.get(f"{base}/01/01234565/21/12345/10/4512", headers=json_only, timeout=10)
    assert wrong_order.status_code == 400 and "lot after the serial" in wrong_order.json()["error"]["message"]
