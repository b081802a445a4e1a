"""The handheld's offline queue: signed envelopes waiting for (or done with) delivery, in a local SQLite file.

Durability: WAL journal with ``synchronous=FULL``, so a record the scanner said it queued survives a crash or
a pulled battery. Every record is stored as the exact signed envelope; it is never re-signed or re-serialised
differently, so re-sending it is idempotent (the server answers 200 with the same ids) and a record that was
delivered but not yet marked so is stored once, not twice.

Statuses: ``pending`` (to send) → ``delivered`` (``result`` created or duplicate; or stored, from a batch
answer that does not say) or ``rejected`` (the server refused it: kept with its error ``code`` and
``message``, never re-sent unless requeued). ``attempts`` counts every send attempt.

Delivery is strictly in queue order: when a record cannot be sent (server unreachable or answering 5xx/429
after the bounded retries), delivery stops there so no later record overtakes it.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from tracker.dsse import Envelope
from tracker.errors import TrackerError
from tracker.statements import format_time

__all__ = ["Outbox", "Record", "DeliveryReport", "Delivery", "deliver", "PENDING", "DELIVERED", "REJECTED"]

PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    summary TEXT NOT NULL,
    envelope TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_attempt_at TEXT,
    result TEXT,
    leaf_index INTEGER,
    error_code TEXT,
    error_message TEXT
);
CREATE INDEX IF NOT EXISTS records_status ON records (status, seq);
CREATE TABLE IF NOT EXISTS record_keys (
    seq INTEGER NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
    key TEXT NOT NULL,
    PRIMARY KEY (key, seq)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _now() -> str:
    return format_time(datetime.now(timezone.utc).replace(microsecond=0))


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    seq: int
    event_id: str
    type: str
    actor: str
    summary: str
    envelope: str
    status: str
    attempts: int
    created_at: str
    last_attempt_at: str | None
    result: str | None
    leaf_index: int | None
    error_code: str | None
    error_message: str | None
    keys: tuple[str, ...] = ()

    def envelope_json(self) -> dict[str, Any]:
        return json.loads(self.envelope)

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__slots__ if name != "envelope"}
        doc["keys"] = list(self.keys)
        return doc


class Outbox:
    """A queue file. Open one per command; every change is committed before the method returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not self.path.exists()
        if new:
            # Create it private: it holds what this device signed (not secret, but nobody else's business).
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise TrackerError(f"outbox {self.path}: cannot use WAL journalling (got {mode})",
                                   code="outbox_unavailable")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise TrackerError(f"outbox {self.path} is not usable: {exc}", code="outbox_unavailable") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> "_Txn":
        return _Txn(self.db)

    # --- records -----------------------------------------------------------------------------------

    def add(self, envelope: Envelope, *, stype: str, actor: str, keys: Sequence[str], summary: str) -> Record:
        """Queue a signed envelope (status pending). The same envelope twice is one record."""
        with self._write():
            existing = self.db.execute("SELECT seq FROM records WHERE event_id = ?", (envelope.event_id,)).fetchone()
            if existing is None:
                cur = self.db.execute(
                    "INSERT INTO records (event_id, type, actor, summary, envelope, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                    (envelope.event_id, stype, actor, summary, json.dumps(envelope.to_json(), separators=(",", ":")),
                     _now()))
                seq = cur.lastrowid
                self.db.executemany("INSERT OR IGNORE INTO record_keys (seq, key) VALUES (?, ?)",
                                    [(seq, k) for k in keys])
            else:
                seq = existing["seq"]
        assert seq is not None  # an INSERT always sets lastrowid
        return self.get(seq)

    def _records(self, where: str, args: Iterable[Any] = ()) -> list[Record]:
        rows = self.db.execute(f"SELECT * FROM records {where}", tuple(args)).fetchall()
        if not rows:
            return []
        keys: dict[int, list[str]] = {}
        seqs = [r["seq"] for r in rows]
        for chunk in range(0, len(seqs), 500):
            part = seqs[chunk:chunk + 500]
            for k in self.db.execute(f"SELECT seq, key FROM record_keys WHERE seq IN ({','.join('?' * len(part))}) "
                                     "ORDER BY rowid", part):
                keys.setdefault(k["seq"], []).append(k["key"])
        return [Record(**dict(r), keys=tuple(keys.get(r["seq"], ()))) for r in rows]

    def get(self, seq: int) -> Record:
        found = self._records("WHERE seq = ?", (seq,))
        if not found:
            raise TrackerError(f"there is no queued record #{seq}", code="not_found")
        return found[0]

    def records(self, *, statuses: Sequence[str] = (PENDING, DELIVERED, REJECTED)) -> list[Record]:
        """Records with these statuses, in queue order."""
        marks = ",".join("?" * len(statuses))
        return self._records(f"WHERE status IN ({marks}) ORDER BY seq", statuses)

    def pending(self) -> list[Record]:
        return self.records(statuses=(PENDING,))

    def counts(self) -> dict[str, int]:
        out = {PENDING: 0, DELIVERED: 0, REJECTED: 0}
        for row in self.db.execute("SELECT status, COUNT(*) AS n FROM records GROUP BY status"):
            out[row["status"]] = row["n"]
        return out

    def note_attempt(self, seq: int) -> None:
        with self._write():
            self.db.execute("UPDATE records SET attempts = attempts + 1, last_attempt_at = ? WHERE seq = ?",
                            (_now(), seq))

    def note_failure(self, seq: int, code: str, message: str) -> None:
        """A failed attempt that may succeed later (the record stays pending)."""
        with self._write():
            self.db.execute("UPDATE records SET error_code = ?, error_message = ? WHERE seq = ? AND status = 'pending'",
                            (code, message, seq))

    def mark_delivered(self, seq: int, *, leaf_index: int, result: str) -> None:
        with self._write():
            self.db.execute("UPDATE records SET status = 'delivered', result = ?, leaf_index = ?, error_code = NULL, "
                            "error_message = NULL WHERE seq = ?", (result, leaf_index, seq))

    def mark_rejected(self, seq: int, *, code: str, message: str) -> None:
        with self._write():
            self.db.execute("UPDATE records SET status = 'rejected', error_code = ?, error_message = ? WHERE seq = ?",
                            (code, message, seq))

    def requeue(self, seq: int) -> Record:
        """Put a rejected record back in the queue (e.g. after the admin registered the device key)."""
        record = self.get(seq)
        if record.status != REJECTED:
            raise TrackerError(f"record #{seq} is {record.status}, not rejected: nothing to requeue",
                               code="not_rejected")
        with self._write():
            # Back to the end of the line? No: the record keeps its place (its seq), so order is still scan order.
            self.db.execute("UPDATE records SET status = 'pending', error_code = NULL, error_message = NULL "
                            "WHERE seq = ?", (seq,))
        return self.get(seq)

    def discard(self, seq: int) -> Record:
        """Delete a rejected record for good (its evidence is then gone from this device)."""
        record = self.get(seq)
        if record.status != REJECTED:
            raise TrackerError(f"record #{seq} is {record.status}: only rejected records can be discarded",
                               code="not_rejected")
        with self._write():
            self.db.execute("DELETE FROM records WHERE seq = ?", (seq,))
        return record

    def local_heads(self, keys: Iterable[str]) -> dict[str, str]:
        """For each key touched by a still-pending record, that record's event id (the latest one): the head the
        server will have once the queue is delivered in order."""
        out: dict[str, str] = {}
        for key in keys:
            row = self.db.execute(
                "SELECT r.event_id FROM record_keys k JOIN records r ON r.seq = k.seq "
                "WHERE k.key = ? AND r.status = 'pending' ORDER BY r.seq DESC LIMIT 1", (key,)).fetchone()
            if row is not None:
                out[key] = row["event_id"]
        return out

    # --- settings ----------------------------------------------------------------------------------

    def setting(self, name: str) -> Any:
        row = self.db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row["value"]) if row else None

    def set_setting(self, name: str, value: Any) -> None:
        with self._write():
            self.db.execute("INSERT INTO settings (name, value) VALUES (?, ?) "
                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, json.dumps(value)))


class _Txn:
    """BEGIN IMMEDIATE … COMMIT: one writer at a time, all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


# --- delivery ---------------------------------------------------------------------------------------

class _Sender(Protocol):
    def post_event(self, envelope: Any) -> Any: ...

    def post_batch(self, envelopes: Sequence[Any]) -> list[Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What happened to one record in this run: ``outcome`` is created, duplicate, stored, rejected or
    queued (could not be sent now; ``code`` says why)."""

    record: Record
    outcome: str
    leaf_index: int | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReport:
    deliveries: tuple[Delivery, ...]
    stopped: Delivery | None  # the record delivery stopped at (server unreachable / busy), if any
    remaining: int  # records still pending after this run

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.deliveries if d.outcome == outcome)


def _transient(exc: Exception) -> bool:
    from .client import ApiError, ServerUnreachable

    return isinstance(exc, ServerUnreachable) or (isinstance(exc, ApiError) and exc.retryable)


def deliver(outbox: Outbox, client: _Sender, *, retries: int = 4, backoff: float = 0.5, max_delay: float = 30.0,
            batch: int = 1, sleep: Callable[[float], None] = time.sleep,
            on_delivery: Callable[[Delivery], None] | None = None) -> DeliveryReport:
    """Send every pending record in queue order. A refusal (4xx) marks the record rejected and moves on; a
    transient failure (unreachable, 408/429/5xx) is retried up to ``retries`` times with exponential backoff
    (``backoff`` · 2^n seconds, at most ``max_delay``, or the server's Retry-After), then delivery stops
    there, leaving it and everything after it pending. ``batch`` > 1 sends up to that many records per
    POST /events/batch (results say stored, not created/duplicate)."""
    from .client import ApiError

    done: list[Delivery] = []
    queue = outbox.pending()
    stopped: Delivery | None = None

    def report(d: Delivery) -> None:
        done.append(d)
        if on_delivery is not None:
            on_delivery(d)

    i = 0
    while i < len(queue):
        chunk = queue[i:i + max(1, batch)]
        attempt = 0
        while True:
            for rec in chunk:
                outbox.note_attempt(rec.seq)
            try:
                if batch > 1:
                    results = client.post_batch([r.envelope_json() for r in chunk])
                else:
                    results = [client.post_event(chunk[0].envelope_json())]
                break
            except (ApiError, TrackerError) as exc:
                if isinstance(exc, ApiError) and not exc.retryable:
                    if batch > 1:
                        raise  # the batch as a whole was malformed: a bug, not a record's fault
                    results = [exc]
                    break
                if not _transient(exc):
                    raise
                for rec in chunk:
                    outbox.note_failure(rec.seq, exc.code, exc.message)
                attempt += 1
                if attempt > retries:
                    stopped = Delivery(record=outbox.get(chunk[0].seq), outcome="queued", code=exc.code,
                                       message=exc.message)
                    return DeliveryReport(deliveries=tuple(done), stopped=stopped,
                                          remaining=outbox.counts()[PENDING])
                delay = min(max_delay, backoff * (2 ** (attempt - 1)))
                if isinstance(exc, ApiError) and exc.retry_after is not None:
                    delay = min(max_delay, max(delay, exc.retry_after))
                sleep(delay)
        for rec, res in zip(chunk, results):
            if isinstance(res, ApiError):
                outbox.mark_rejected(rec.seq, code=res.code, message=res.message)
                report(Delivery(record=outbox.get(rec.seq), outcome="rejected", code=res.code, message=res.message))
            elif res.event_id != rec.event_id:
                msg = f"the server acknowledged {res.event_id}, not this record's {rec.event_id}"
                outbox.mark_rejected(rec.seq, code="event_id_mismatch", message=msg)
                report(Delivery(record=outbox.get(rec.seq), outcome="rejected", code="event_id_mismatch", message=msg))
            else:
                outcome = "stored" if res.created is None else ("created" if res.created else "duplicate")
                outbox.mark_delivered(rec.seq, leaf_index=res.leaf_index, result=outcome)
                report(Delivery(record=outbox.get(rec.seq), outcome=outcome, leaf_index=res.leaf_index))
        i += len(chunk)
    return DeliveryReport(deliveries=tuple(done), stopped=None, remaining=outbox.counts()[PENDING])

