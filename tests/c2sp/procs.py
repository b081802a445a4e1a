"""Witness (and other) processes on loopback for tests and benchmarks: started with the real CLI, killed
by process group."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracker(*args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
    run_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "tracker.cli", *args], cwd=REPO, env=run_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tracker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


class Proc:
    """A long-running ``tracker ...`` command (its own session, so kill() takes the whole group)."""

    def __init__(self, args: list[str], *, port: int, ready_path: str, env: dict[str, str] | None = None,
                 log: Path) -> None:
        self.args, self.port, self.ready_path, self.env, self.log = args, port, ready_path, env or {}, log
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60) -> "Proc":
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", *self.args], cwd=REPO,
                                         env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + wait
        while True:
            try:
                if requests.get(self.base + self.ready_path, timeout=2).status_code < 500:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.args} did not come up:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def witness_proc(directory: Path, port: int | None = None) -> Proc:
    port = port or free_port()
    return Proc(["witness", "serve", "--dir", str(directory), "--port", str(port)], port=port, ready_path="/",
                log=directory / f"serve-{port}.log")
