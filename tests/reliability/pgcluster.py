"""A throw-away PostgreSQL cluster for tests that must stop and restart the database server.

The shared server on 127.0.0.1:5432 is used by other people at the same time and is never restarted. This
starts a private cluster instead: ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, a data
directory in a temp dir, a free loopback port, and a private socket directory. ``initdb`` refuses to run as
root, so when the tests run as root (CI does) every server command runs as the ``postgres`` OS user through
``runuser -u postgres --``.

``unavailable_reason()`` says exactly why a private cluster cannot be started on this machine, so a test can
skip with that reason (a skip is never a pass).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.reliability.harness import free_port


def _bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory that has initdb and pg_ctl."""
    found = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            try:
                found.append((float(path.parent.name), path))
            except ValueError:
                continue
    return max(found)[1] if found else None


def _as_postgres() -> bool:
    return os.geteuid() == 0


def unavailable_reason() -> str | None:
    """None when a private cluster can be started here, else the precise reason it cannot."""
    if _bindir() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin"
    if _as_postgres():
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` OS user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root, and `runuser` (util-linux) is not installed to run initdb as postgres"
    return None


class PrivateCluster:
    """initdb + pg_ctl in a temp dir. ``stop(mode)`` / ``start()`` restart it; ``destroy()`` removes it."""

    def __init__(self) -> None:
        bindir = _bindir()
        assert bindir is not None, unavailable_reason()
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="waybill-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.restarts = 0
        if _as_postgres():
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if _as_postgres():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base)

    def init(self) -> "PrivateCluster":
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--no-sync", "--no-instructions")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return self

    def start(self, wait: float = 60) -> None:
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=60"
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", str(int(wait)),
                         "start", timeout=wait + 30)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()[-300:]}\n"
                               f"{self.tail()}")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: sessions are terminated, a clean shutdown. ``immediate``: no shutdown checkpoint, crash
        recovery at the next start (what a kill -9 of the postmaster or a power cut leaves)."""
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m {mode} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        self.restarts += 1

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", timeout=30).returncode == 0

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def destroy(self) -> None:
        try:
            if self.data.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def wait_ready(self, wait: float = 30) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the private cluster did not accept connections in {wait} s:\n{self.tail()}")
