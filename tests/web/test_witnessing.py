"""The ledger collects witness cosignatures in the background: writes never wait for witnesses, the
checkpoint endpoints carry the cosignatures once they arrive, a witness that is down is retried with
back-off, and a witness that was shown another history of this log raises an alarm."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.c2sp.servers import ThreadWitness
from tests.conftest import fixed_key
from tests.web.conftest import commission, make_app, now
from tracker.cosigning import (cosigned_note, handle_reply, next_submission, policy_checkpoint, witness_alarms,
                               witness_statuses)
from tracker.policy import check_checkpoint, parse_policy
from tracker.witness import WitnessRecord


@pytest.fixture
def witnesses(tmp_path: Path, ledger):
    ws = [ThreadWitness(tmp_path / f"w{i}", name=f"witness{i}.test/w", key=fixed_key(f"wit-{i}"),
                        log_vkeys=[ledger.vkey]).start() for i in (1, 2)]
    yield ws
    for w in ws:
        w.close()


def _policy(ledger, ws, quorum: str = "all"):
    lines = [f"log {ledger.vkey}"] + [f"witness w{i} {w.vkey} {w.url}" for i, w in enumerate(ws, 1)]
    return parse_policy("\n".join(lines + [f"group g {quorum} " + " ".join(f"w{i}" for i in range(1, len(ws) + 1)),
                                           "quorum g"]) + "\n")


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _stop(app) -> None:
    app.extensions["waybill_collector"].stop()
    app.extensions["waybill_collector"].join(timeout=10)


def test_checkpoints_get_cosigned_by_both_witnesses(ledger, witnesses) -> None:
    policy = _policy(ledger, witnesses)
    app = make_app(ledger, WAYBILL_WITNESS_POLICY=policy)
    client = app.test_client()
    try:
        r = client.post("/api/v1/events", json=commission(["WIT-1"]).to_json())
        assert r.status_code == 201
        size = r.get_json()["leaf_index"] + 1

        def cosigned():
            note = client.get("/api/v1/checkpoint").get_data(as_text=True)
            check = check_checkpoint(note, policy, origin=ledger.origin)
            return check if check.quorum_met and check.cosigned.checkpoint.size >= size else None

        check = _wait(cosigned)
        assert set(check.witnessed_by) == {"w1", "w2"}
        assert client.get("/tlog/checkpoint").get_data(as_text=True).count("\u2014 witness") == 2
        # more writes: the witnesses follow with consistency proofs
        for i in range(3):
            assert client.post("/api/v1/events", json=commission([f"WIT-2{i}"]).to_json()).status_code == 201
        size = ledger.size()
        _wait(cosigned)
        # each witness's status row is written right after its cosignature: wait for both, not only the quorum
        _wait(lambda: all(s.cosigned_size == size and not s.alarm for s in witness_statuses(ledger)) or None)
    finally:
        _stop(app)


def test_a_witness_that_is_down_does_not_hold_up_writes_and_catches_up(ledger, witnesses) -> None:
    policy = _policy(ledger, witnesses, quorum="any")
    witnesses[1].stop()
    app = make_app(ledger, WAYBILL_WITNESS_POLICY=policy)
    client = app.test_client()
    try:
        t = time.monotonic()
        assert client.post("/api/v1/events", json=commission(["DOWN-1"]).to_json()).status_code == 201
        assert time.monotonic() - t < 1.0  # acknowledged by the ledger alone
        size = ledger.size()
        _wait(lambda: any(s.cosigner == "witness1.test/w" and s.cosigned_size == size for s in witness_statuses(ledger)))
        down = _wait(lambda: [s for s in witness_statuses(ledger) if s.cosigner == "witness2.test/w" and s.failures >= 2])
        assert "unreachable" in down[0].last_error and not down[0].alarm
        witnesses[1].start()
        _wait(lambda: any(s.cosigner == "witness2.test/w" and s.cosigned_size == size for s in witness_statuses(ledger)),
              timeout=40)
        note = client.get("/api/v1/checkpoint").get_data(as_text=True)
        assert check_checkpoint(note, policy).witnessed_by == ("w1", "w2")
    finally:
        _stop(app)


def test_a_witness_shown_another_history_raises_an_alarm(ledger, witnesses, tmp_path: Path) -> None:
    # Witness 2 has already cosigned a checkpoint of this log that is not ours: same key, another history
    # (someone holding the ledger key showed it a split view). Our next checkpoint cannot be proved consistent.
    from tracker.checkpoint import Checkpoint, sign_checkpoint

    size = ledger.size()
    forged = Checkpoint(origin=ledger.origin, size=size, root_hash=bytes(32))
    note = sign_checkpoint(forged, name=ledger.origin, key=fixed_key("ledger"))
    with witnesses[1].db.transaction() as txn:
        txn.put(WitnessRecord(origin=ledger.origin, size=size, root_hash=bytes(32), note=note), at="2026-01-01T00:00:00Z")
    policy = _policy(ledger, witnesses)
    app = make_app(ledger, WAYBILL_WITNESS_POLICY=policy)
    client = app.test_client()
    try:
        assert client.post("/api/v1/events", json=commission(["SPLIT-1"]).to_json()).status_code == 201
        alarms = _wait(lambda: witness_alarms(ledger))
        assert "witness2.test/w" in alarms[0] and "inconsistent" in alarms[0]
        # the honest witness still cosigns; the quorum (all) is not met, and the alarm stays
        note = _wait(lambda: (n := client.get("/api/v1/checkpoint").get_data(as_text=True)).count("\u2014 witness1") and n)
        assert not check_checkpoint(note, policy).quorum_met
    finally:
        _stop(app)


def test_tracker_verify_fails_loudly_on_a_witness_alarm(ledger, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from tests.c2sp import ref
    from tracker import cli as tracker_cli
    from tracker.cosigning import _put_status

    monkeypatch.setattr("tracker.cli.open_ledger", lambda *a, **k: ledger)
    ok = CliRunner().invoke(tracker_cli.cli, ["verify"])
    assert ok.exit_code == 0, ok.output
    policy = parse_policy(f"witness w9 {ref.vkey('w9.test/w', 4, fixed_key('w9').public_key)}\nquorum w9\n")
    _put_status(ledger, policy.witnesses[0], alarm="witness w9 (w9.test/w) refused checkpoint 3 as inconsistent")
    bad = CliRunner().invoke(tracker_cli.cli, ["verify"])
    assert bad.exit_code == 1
    assert "WITNESS ALARM: witness w9 (w9.test/w) refused checkpoint 3" in bad.output


def _cosign(ledger, witness, sub) -> str:
    """One round with a witness, as the background collector does it (web/cosigning.py)."""
    r = requests.post(witness.url.rstrip("/") + "/add-checkpoint", data=sub.body, timeout=10)
    return handle_reply(ledger, sub, r.status_code, r.text, r.headers.get("Content-Type", ""))


def test_cosigned_checkpoints_survive_the_history_pruning(ledger, witnesses) -> None:
    """Failure this stops: the ledger keeps one checkpoint per interval, so under steady writes the checkpoint
    a witness was cosigning is often pruned before its answer arrives; the cosignature was then stored against
    nothing, no checkpoint ever met the policy, and consumers' proofs fell back to the operator's word alone."""
    policy = _policy(ledger, witnesses[:1])
    w = policy.witnesses[0]
    ledger.checkpoint_interval = 3600.0  # every commit here falls into one interval: each prunes the last
    ledger.append(commission(["PRUNE-0"]), now=now())  # opens this interval in the history
    ledger.append(commission(["PRUNE-1"]), now=now())
    first = ledger.size()
    sub = next_submission(ledger, w)
    assert sub is not None and sub.size == first
    ledger.append(commission(["PRUNE-2"]), now=now())  # prunes checkpoint `first` while the witness is answering
    with ledger.store.read() as txn:
        assert txn.checkpoint_at(first) is None
    assert _cosign(ledger, witnesses[0], sub) == "cosigned"
    # the checkpoint came back beside its cosignature
    assert check_checkpoint(cosigned_note(ledger, first), policy, origin=ledger.origin).quorum_met
    # a checkpoint cosigned while it is the latest is kept when the next commit replaces it
    second = ledger.size()
    assert _cosign(ledger, witnesses[0], next_submission(ledger, w)) == "cosigned"
    ledger.append(commission(["PRUNE-3"]), now=now())
    _, check = policy_checkpoint(ledger, policy)
    assert check is not None and check.quorum_met and check.cosigned.checkpoint.size == second
    assert ledger.audit().entries == ledger.size()  # the restored checkpoint is consistent with the rest
