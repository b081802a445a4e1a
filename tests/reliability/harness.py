"""What the reliability suite runs against: a real installation (``WAYBILL_HOME`` initialised with
``tracker.home.init``, on SQLite or PostgreSQL), real gunicorn servers on free loopback ports, the
``tracker`` command line in a subprocess (what an operator runs), and signed traffic built the way a
device builds it.

Everything here is bounded: every server start, request and subprocess has a timeout, and servers are
killed by process group (the group the test itself started, never by name).
"""
from __future__ import annotations

import base64
import bisect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import requests

from tracker import merkle
from tracker.checkpoint import Checkpoint, parse_vkey, verify_checkpoint
from tracker.config import Config, load_config
from tracker.dsse import Envelope
from tracker.home import init, open_ledger
from tracker.keys import KeyPair, read_key_file
from tracker.ledger import Ledger
from tracker.scenarios import party_key
from tracker.signing import new_statement, party_statement, sign_statement
from tracker.statements import format_time

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("WAYBILL_TEST_POSTGRES_URL")
SOAK = os.environ.get("WAYBILL_SOAK", "") not in ("", "0")
GTIN = "09506000134352"
SEED = "reliability"  # party_key seed: every process derives the same device keys


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device_key(party_id: str, device: int = 0) -> KeyPair:
    return party_key(party_id, device, seed=SEED)


def item_key(serial: str, gtin: str = GTIN) -> str:
    return f"01/{gtin}/21/{serial}"


# --- databases ------------------------------------------------------------------------------------

def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


class PgSchemas:
    """Fresh PostgreSQL schemas, dropped at ``close``."""

    def __init__(self, base: str) -> None:
        import sqlalchemy as sa

        self.base = base
        self.engine = sa.create_engine(base, pool_size=1)
        self.schemas: list[str] = []

    def new(self) -> str:
        schema = "rl_" + uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return pg_schema_url(self.base, schema)

    def close(self) -> None:
        with self.engine.begin() as conn:
            # Connections of killed servers may linger for a moment: never wait on their locks.
            conn.exec_driver_sql("SET lock_timeout = '20s'")
            for schema in self.schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.engine.dispose()


# --- an installation ------------------------------------------------------------------------------

@dataclass
class Installation:
    """One WAYBILL_HOME and its database; ``database_url`` None means the default SQLite file in the home."""

    home: Path
    database_url: str | None = None

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url and self.database_url.startswith("postgresql") else "sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAYBILL_") or k == "WAYBILL_SOAK"}
        env.update({"WAYBILL_HOME": str(self.home), "WAYBILL_RATELIMIT_ENABLED": "0",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
        if self.database_url:
            env["WAYBILL_DATABASE_URL"] = self.database_url
        env.update(extra)
        return env

    @property
    def config(self) -> Config:
        return load_config(self.env())

    def init(self) -> "Installation":
        result = init(self.config, now=now() - timedelta(hours=2))
        result.ledger.store.close()
        return self

    def admin_key(self) -> KeyPair:
        return read_key_file(self.config.admin_key_path)

    def open(self, *, writable: bool = False) -> Ledger:
        """A Ledger handle (close its store when done): what the CLI opens."""
        return open_ledger(self.config, writable=writable)

    def tracker(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the `tracker` command line as an operator would."""
        exe = Path(sys.executable).with_name("tracker")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from tracker.cli import main; main()"]
        return subprocess.run(cmd + list(args), env=self.env(), cwd=self.home, capture_output=True, text=True,
                              timeout=timeout)


def verify_cli(inst: Installation) -> tuple[int, str]:
    """`tracker verify`: (exit code, stdout + stderr)."""
    done = inst.tracker("verify")
    return done.returncode, done.stdout + done.stderr


def register_parties(inst: Installation, parties: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Register parties directly through the ledger (before any server runs). ``parties``: id ->
    {roles, country, devices, revoked_at?}. Returns the event ids, in leaf order."""
    admin = inst.admin_key()
    t = now() - timedelta(hours=1)
    envelopes = []
    for pid, spec in parties.items():
        keys = []
        for d in range(spec.get("devices", 1)):
            entry = {"public_key": device_key(pid, d).public_key_b64, "not_before": format_time(t - timedelta(days=1))}
            if spec.get("revoked_at") and d == 0:
                entry["revoked_at"] = format_time(spec["revoked_at"])
            keys.append(entry)
        doc = party_statement(admin="admin", time=t, location={"name": "Registry", "country": "ZZ"}, party_id=pid,
                              name=spec.get("name", pid.title()), country=spec.get("country", "CN"),
                              roles=list(spec["roles"]), keys=keys, gs1_prefixes=spec.get("gs1_prefixes", ()))
        envelopes.append(sign_statement(doc, admin))
    ledger = inst.open(writable=True)
    try:
        results = ledger.append_batch(envelopes, now=now())
    finally:
        ledger.store.close()
    for r in results:
        assert not isinstance(r, Exception), r
    return [r.event_id for r in results]


class RawDb:
    """Plain SQL on the ledger database, no Waybill code involved (``?`` placeholders): an attacker with
    database access, or a test watching what is committed."""

    def __init__(self, inst: Installation) -> None:
        url = inst.config.database_url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)

    def run(self, sql: str, params: tuple = ()) -> Any:
        return self.conn.execute(sql if self.is_sqlite else sql.replace("?", "%s"), params)

    def one(self, sql: str, params: tuple = ()) -> Any:
        row = self.run(sql, params).fetchone()
        value = None if row is None else row[0]
        return bytes(value) if isinstance(value, memoryview) else value

    def close(self) -> None:
        self.conn.close()


# --- gunicorn -------------------------------------------------------------------------------------

class Server:
    """gunicorn serving ``web:create_app()`` for an installation. Killed by process group."""

    def __init__(self, inst: Installation, *, workers: int = 4, port: int | None = None, log: Path | None = None,
                 timeout: int = 60, extra_args: tuple[str, ...] = ()) -> None:
        self.inst = inst
        self.extra_args = extra_args
        self.workers = workers
        self.port = port or free_port()
        self.log = log or inst.home / f"gunicorn-{self.port}.log"
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 90) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
                 "--graceful-timeout", "5", "--timeout", str(self.timeout), *self.extra_args, "web:create_app()"],
                cwd=REPO, env=self.inst.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + wait
        while True:
            try:
                if requests.get(f"{self.base}/api/v1/checkpoint", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gunicorn did not come up in {wait} s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9 of the master and every worker at once: a crash, not a shutdown."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.kills += 1

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True,
                             timeout=10).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "Server":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- signed traffic -------------------------------------------------------------------------------

def statement(stype: str, actor: str, *, at: datetime, country: str = "CN", device: int = 0,
              key: KeyPair | None = None, place: str | None = None, **fields: Any) -> Envelope:
    doc = new_statement(stype, actor=actor, time=at, location={"name": place or f"Site of {actor}", "country": country},
                        **fields)
    return sign_statement(doc, key or device_key(actor, device))


def journey(maker: str, holder: str, serial: str, start: datetime, *, device: int = 0) -> list[Envelope]:
    """commission → ship → receive → sell of one item: a linear chain, every ``prev`` the event before."""
    item = item_key(serial)
    c = statement("commission", maker, at=start, device=device, items=[item],
                  product={"gtin": GTIN, "name": "Reliability widget", "lot": "R1"})
    s = statement("ship", maker, at=start + timedelta(seconds=1), device=device, items=[item], to=holder,
                  prev={item: c.event_id})
    r = statement("receive", holder, at=start + timedelta(seconds=2), device=device, items=[item], from_=maker,
                  ship=s.event_id, prev={item: s.event_id})
    x = statement("sell", holder, at=start + timedelta(seconds=3), device=device, items=[item],
                  prev={item: r.event_id})
    return [c, s, r, x]


def post_json(http: requests.Session | Any, url: str, doc: Any, *, timeout: float = 60) -> requests.Response:
    return http.post(url, data=json.dumps(doc), headers={"Content-Type": "application/json"}, timeout=timeout)


# --- what the ledger holds ------------------------------------------------------------------------

@dataclass
class LedgerState:
    entries: list[tuple[int, str]]  # (leaf_index, event_id) in leaf order
    checkpoint: Checkpoint
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.entries)

    @property
    def by_event(self) -> dict[str, int]:
        return {eid: i for i, eid in self.entries}


def ledger_state(inst: Installation) -> LedgerState:
    ledger = inst.open()
    try:
        with ledger.store.read() as txn:
            entries = [(e.leaf_index, e.event_id) for e in txn.iter_entries()]
            counts = {t: txn.conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                      for t in ("entries", "merkle_nodes", "key_events", "checkpoints")}
        cp = ledger.verified_checkpoint()
    finally:
        ledger.store.close()
    return LedgerState(entries=entries, checkpoint=cp, counts=counts)


def assert_dense_and_acknowledged(state: LedgerState, acks: Mapping[str, int], *, others: Iterable[str] = ()) -> None:
    """Leaf indexes are exactly 0..n-1; every acknowledged event is there exactly once at the index it was told;
    and nothing is there that nobody was told about (``others``: the genesis and set-up events)."""
    indexes = [i for i, _ in state.entries]
    assert indexes == list(range(len(indexes))), f"leaf indexes have a gap or a duplicate: {_first_gap(indexes)}"
    counts = Counter(eid for _, eid in state.entries)
    dup = [eid for eid, n in counts.items() if n > 1]
    assert not dup, f"{len(dup)} events stored twice, e.g. {dup[0]}"
    by_event = state.by_event
    lost = [eid for eid in acks if eid not in by_event]
    assert not lost, f"{len(lost)} acknowledged events are missing, e.g. {lost[0]}"
    moved = [(eid, i, by_event[eid]) for eid, i in acks.items() if by_event[eid] != i]
    assert not moved, f"{len(moved)} events are not where the answer said, e.g. {moved[0]}"
    phantom = set(by_event) - set(acks) - set(others)
    assert not phantom, f"{len(phantom)} stored events were never acknowledged, e.g. {sorted(phantom)[0]}"
    assert state.checkpoint.size == state.size, \
        f"the latest checkpoint covers {state.checkpoint.size} of {state.size} entries"


def _first_gap(indexes: Sequence[int]) -> str:
    for want, got in enumerate(indexes):
        if want != got:
            return f"expected {want}, found {got}"
    return "none"


def verify_consistent(inst: Installation, seen: Sequence[tuple[int, bytes]]) -> None:
    """Every checkpoint a client saw is a prefix of the next larger one (one root per size): the log never forked."""
    ledger = inst.open()
    try:
        for (s1, r1), (s2, r2) in zip(seen, seen[1:]):
            assert s1 <= s2, f"checkpoint went backwards: {s1} then {s2}"
            proof = ledger.consistency_proof(s1, s2) if s1 != s2 else []
            merkle.verify_consistency(s1, s2, r1, r2, proof)
    finally:
        ledger.store.close()


class CheckpointWatcher:
    """A client that verifies every checkpoint it fetches and remembers the distinct (size, root) pairs.

    Fetches may overlap (a poller thread beside the test's own), and two fetches in flight at once can come
    back in either order. The rule checked is the one a client can rely on: a checkpoint is at least as large
    as every checkpoint whose fetch had completed before this fetch started."""

    def __init__(self, inst: Installation) -> None:
        ledger = inst.open()
        try:
            self.verifier, self.origin = parse_vkey(ledger.vkey), ledger.origin
        finally:
            ledger.store.close()
        self._lock = threading.Lock()
        self._completed_at: list[float] = []  # when each observed fetch completed (rising) ...
        self._largest: list[int] = []  # ... and the largest size observed up to then
        self._seen: set[tuple[int, bytes]] = set()

    @property
    def seen(self) -> list[tuple[int, bytes]]:
        """Every distinct checkpoint observed, smallest first (consistency is checked between neighbours)."""
        with self._lock:
            return sorted(self._seen)

    def observe(self, note: str, *, started: float | None = None) -> Checkpoint:
        cp = verify_checkpoint(note, self.verifier, origin=self.origin)
        with self._lock:
            start = time.monotonic() if started is None else started
            done_before = bisect.bisect_right(self._completed_at, start)
            floor = self._largest[done_before - 1] if done_before else 0
            assert cp.size >= floor, f"checkpoint went backwards: {floor} then {cp.size}"
            self._completed_at.append(time.monotonic())
            self._largest.append(max(cp.size, self._largest[-1] if self._largest else 0))
            self._seen.add((cp.size, cp.root_hash))
        return cp

    def fetch(self, base: str, timeout: float = 10) -> Checkpoint:
        started = time.monotonic()
        r = requests.get(f"{base}/api/v1/checkpoint", timeout=timeout)
        assert r.status_code == 200, r.text
        return self.observe(r.text, started=started)


class Poller(threading.Thread):
    """A client fetching (and verifying) the checkpoint over and over, through crashes and restarts."""

    def __init__(self, watcher: CheckpointWatcher, server: Server) -> None:
        super().__init__(daemon=True)
        self.watcher, self.server = watcher, server
        self.halt = threading.Event()
        self.errors: list[str] = []
        self.fetched = 0
        self.statuses: Counter = Counter()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                started = time.monotonic()
                r = requests.get(f"{self.server.base}/api/v1/checkpoint", timeout=5)
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    self.watcher.observe(r.text, started=started)
                    self.fetched += 1
            except requests.RequestException:
                pass  # the server is down: that is the point
            except AssertionError as exc:
                self.errors.append(str(exc))
            except Exception as exc:  # a checkpoint that does not verify
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.halt.wait(0.02)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
