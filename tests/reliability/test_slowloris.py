"""Slowloris: 500 connections that open and send nothing, held for 30 s, while a client reads checkpoints.

Run against real gunicorn with the shipped settings (``-c python:web.gunicorn_conf``: threaded workers that park
a silent connection in their event loop instead of holding a thread). With gunicorn's defaults every worker sat
on a silent connection and the checkpoint reads timed out. "Fast" is judged with a generous bound (a busy CI
machine): every read answers, and none takes longer than 3 s.
"""
from __future__ import annotations

import socket
import statistics
import time

import pytest
import requests

from tests.reliability.harness import Installation, Server

pytestmark = pytest.mark.slow

IDLE_CONNECTIONS = 500
HOLD_SECONDS = 30


def test_checkpoint_reads_stay_fast_under_500_idle_connections(tmp_path):
    inst = Installation(home=tmp_path / "home").init()
    server = Server(inst, workers=2, extra_args=("-c", "python:web.gunicorn_conf")).start()
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        latencies, failures = [], []
        session = requests.Session()
        end = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                response = session.get(f"{server.base}/api/v1/checkpoint", timeout=10)
                if response.status_code != 200:
                    failures.append(response.status_code)
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)
            latencies.append(time.monotonic() - started)
            time.sleep(0.25)
        print(f"\n{len(latencies)} checkpoint reads under {IDLE_CONNECTIONS} idle connections: "
              f"median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
              f"{len(failures)} failed")
        assert not failures, failures
        assert len(latencies) >= HOLD_SECONDS, "reads were too slow to get through"
        assert max(latencies) < 3.0, latencies
    finally:
        for sock in idle:
            sock.close()
        server.stop()
