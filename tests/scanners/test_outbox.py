"""The offline queue on its own: durable settings, signed records, in-order delivery with bounded retries."""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from scanners.client import ApiError, PostResult, ServerUnreachable
from scanners.outbox import Outbox, deliver
from tests.conftest import fixed_key
from tracker.dsse import parse_envelope
from tracker.errors import TrackerError
from tracker.keys import verify_signature
from tracker.signing import new_statement, sign_statement

from .conftest import item

KEY = fixed_key("outbox-device")


def envelope(serial: str, to: str = "hh-warehouse"):
    doc = new_statement("ship", actor="pearl-export", time="2026-11-01T10:00:00Z",
                        location={"name": "Dock 3", "country": "CN"}, prev={}, items=[item(serial)], to=to)
    return sign_statement(doc, KEY)


def queue(box: Outbox, *serials: str):
    return [box.add(envelope(s), stype="ship", actor="pearl-export", keys=[item(s)], summary=s) for s in serials]


class FakeServer:
    """Answers POST /events from a script: 'ok', 'dup', 'down', 'busy', 'busy-wait', or ('reject', code)."""

    def __init__(self, *script):
        self.script = list(script)
        self.sent: list[str] = []

    def post_event(self, env):
        parsed = parse_envelope(env)
        self.sent.append(parsed.event_id)
        step = self.script.pop(0) if self.script else "ok"
        if step == "down":
            raise ServerUnreachable("cannot reach http://127.0.0.1:9: connection refused")
        if step == "busy":
            raise ApiError("busy", status=503, code="unavailable")
        if step == "busy-wait":
            raise ApiError("slow down", status=429, code="rate_limited", retry_after=7)
        if isinstance(step, tuple):
            raise ApiError("refused", status=422, code=step[1])
        if step == "wrong-id":
            return PostResult(event_id="sha256:" + "0" * 64, leaf_index=9, created=True)
        return PostResult(event_id=parsed.event_id, leaf_index=len(self.sent), created=step != "dup")

    def post_batch(self, envs):
        out = []
        for env in envs:
            try:
                out.append(self.post_event(env))
            except ApiError as exc:
                out.append(ApiError(exc.message, status=422, code=exc.code))
        return out


@pytest.fixture
def box(tmp_path: Path):
    with Outbox(tmp_path / "q" / "outbox.db") as b:
        yield b


def test_the_queue_file_is_durable_and_private(tmp_path: Path, box: Outbox) -> None:
    assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(os.stat(box.path).st_mode) == 0o600
    (rec,) = queue(box, "D1")
    box.close()
    # Another process opening the file sees the record, signed exactly as queued.
    raw = sqlite3.connect(tmp_path / "q" / "outbox.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (text,) = raw.execute("SELECT envelope FROM records").fetchone()
    env = parse_envelope(text)
    verify_signature(KEY.public_key, env.pae(), env.signatures[0].sig)
    assert env.event_id == rec.event_id


def test_the_same_envelope_queued_twice_is_one_record(box: Outbox) -> None:
    first = queue(box, "D1")[0]
    again = queue(box, "D1")[0]
    assert first.seq == again.seq and len(box.records()) == 1


def test_delivery_in_order_and_outcomes(box: Outbox) -> None:
    recs = queue(box, "A", "B", "C", "D")
    server = FakeServer("ok", "dup", ("reject", "unknown_item"), "wrong-id")
    seen = []
    report = deliver(box, server, sleep=lambda s: None, on_delivery=seen.append)
    assert server.sent == [r.event_id for r in recs]
    assert [d.outcome for d in seen] == ["created", "duplicate", "rejected", "rejected"]
    assert [d.code for d in seen] == [None, None, "unknown_item", "event_id_mismatch"]
    statuses = [(r.status, r.result, r.error_code, r.attempts) for r in box.records()]
    assert statuses == [("delivered", "created", None, 1), ("delivered", "duplicate", None, 1),
                        ("rejected", None, "unknown_item", 1), ("rejected", None, "event_id_mismatch", 1)]
    assert report.remaining == 0 and report.stopped is None
    # Nothing left to send; rejected records are not retried.
    assert deliver(box, server, sleep=lambda s: None).deliveries == ()
    assert len(server.sent) == 4


def test_retries_back_off_exponentially_and_are_bounded(box: Outbox) -> None:
    recs = queue(box, "A", "B", "C")
    server = FakeServer("ok", "down", "down", "down", "down")
    delays: list[float] = []
    report = deliver(box, server, retries=3, backoff=0.5, sleep=delays.append)
    assert delays == [0.5, 1.0, 2.0]
    assert report.stopped is not None and report.stopped.record.seq == recs[1].seq
    assert report.stopped.code == "server_unreachable"
    assert report.remaining == 2
    a, b, c = box.records()
    assert (a.status, b.status, c.status) == ("delivered", "pending", "pending")
    assert (b.attempts, b.error_code) == (4, "server_unreachable")
    assert c.attempts == 0  # never sent ahead of B
    # Later, the server is back: B then C, in order.
    report = deliver(box, FakeServer(), sleep=delays.append)
    assert [d.record.seq for d in report.deliveries] == [recs[1].seq, recs[2].seq]
    assert [r.status for r in box.records()] == ["delivered"] * 3


def test_retry_after_is_honoured_and_delays_are_capped(box: Outbox) -> None:
    queue(box, "A")
    delays: list[float] = []
    deliver(box, FakeServer("busy-wait", "busy", "busy", "busy", "ok"), retries=5, backoff=10, max_delay=25,
            sleep=delays.append)
    assert delays == [10, 20, 25, 25]
    assert box.records()[0].status == "delivered"


def test_batches_send_many_records_per_request(box: Outbox) -> None:
    queue(box, *[f"B{i}" for i in range(7)])
    server = FakeServer("ok", "ok", ("reject", "bad_signature"))
    report = deliver(box, server, batch=3, sleep=lambda s: None)
    assert report.count("created") == 6 and report.count("rejected") == 1
    assert [r.status for r in box.records()].count("rejected") == 1


def test_local_heads_follow_pending_records_only(box: Outbox) -> None:
    a1, = queue(box, "A")
    env = sign_statement(new_statement("receive", actor="hh-warehouse", time="2026-11-01T11:00:00Z",
                                       location={"name": "HH", "country": "DE"}, prev={item("A"): a1.event_id},
                                       items=[item("A")], from_="pearl-export", ship=a1.event_id), KEY)
    a2 = box.add(env, stype="receive", actor="hh-warehouse", keys=[item("A")], summary="A")
    assert box.local_heads([item("A"), item("B")]) == {item("A"): a2.event_id}
    deliver(box, FakeServer(), sleep=lambda s: None)
    assert box.local_heads([item("A")]) == {}  # delivered: the server's head is authoritative again


def test_requeue_and_discard_rejected_records(box: Outbox) -> None:
    a, b = queue(box, "A", "B")
    deliver(box, FakeServer(("reject", "unknown_key"), ("reject", "unknown_key")), sleep=lambda s: None)
    assert box.requeue(a.seq).status == "pending"
    box.discard(b.seq)
    assert [(r.seq, r.status) for r in box.records()] == [(a.seq, "pending")]
    with pytest.raises(TrackerError, match="only rejected records can be discarded"):
        box.discard(a.seq)
