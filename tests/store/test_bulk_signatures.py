"""Bulk signature checks: batches and audits verify signatures on several threads before the in-order
checks. Whatever the threads decide, each envelope must get exactly the answer it gets on its own, and the
audit must still name the first bad entry."""
from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from tests.conftest import T0
from tests.store.helpers import NOW, T_PARTIES, commission_envelope, key_of, party_envelope, register_cast
from tracker.dsse import Envelope, Signature
from tracker.errors import IntegrityError, Rejected
from tracker.keys import PARALLEL_MIN, is_valid_signature, verify_many
from tracker.ledger import AppendResult, Ledger
from tracker.store import open_store

BATCH = max(3 * PARALLEL_MIN, 200)


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    monkeypatch.setenv("WAYBILL_VERIFY_THREADS", "2")  # the threaded path even on a one-core runner


def test_verify_many_agrees_with_one_at_a_time():
    acme, other = key_of("acme"), key_of("berlin-shop")
    jobs = []
    for n in range(BATCH):
        env = commission_envelope(acme, "acme", [f"V{n}"])
        message, sig = env.pae(), env.signatures[0].sig
        if n % 7 == 3:
            sig = sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]
        public_key = other.public_key if n % 11 == 5 else acme.public_key
        if n == 40:
            public_key = b"\x00" * 31  # not a key at all
        jobs.append((public_key, message, sig))
    got = verify_many(jobs)
    assert got == [len(pk) == 32 and is_valid_signature(pk, m, s) for pk, m, s in jobs]
    assert 0 < got.count(False) < len(got)


def _forged(env: Envelope) -> Envelope:
    sig = env.signatures[0]
    flipped = sig.sig[:5] + bytes([sig.sig[5] ^ 0x40]) + sig.sig[6:]
    return Envelope(payload_type=env.payload_type, payload=env.payload,
                    signatures=(Signature(keyid=sig.keyid, sig=flipped),))


def test_a_large_batch_gets_the_same_answers_as_single_appends(ledger, admin_key):
    register_cast(ledger, admin_key)
    envs: list[Envelope] = []
    for n in range(BATCH):
        env = commission_envelope(key_of("acme"), "acme", [f"B{n}"])
        if n in (0, 37, BATCH - 1):
            env = _forged(env)
        elif n == 80:
            env = commission_envelope(key_of("berlin-shop"), "acme", [f"B{n}"])  # another party's valid key
        elif n == 50:  # a valid signature from the batch (envelope 49's) over a different payload
            env = Envelope(payload_type=env.payload_type, payload=env.payload, signatures=envs[49].signatures)
        envs.append(env)
    size = ledger.size()
    results = ledger.append_batch(envs, now=NOW)
    refused = {n: r.code for n, r in enumerate(results) if isinstance(r, Rejected)}
    assert refused == {0: "bad_signature", 37: "bad_signature", 50: "bad_signature", 80: "unknown_key",
                       BATCH - 1: "bad_signature"}
    created = [r for r in results if isinstance(r, AppendResult)]
    assert all(r.created for r in created) and len(created) == BATCH - 5
    assert [r.leaf_index for r in created] == list(range(size, size + BATCH - 5))
    assert ledger.audit().entries == size + BATCH - 5


def test_a_large_batch_may_use_a_key_registered_earlier_in_it(ledger, admin_key):
    """The threads check under the registry as it was; a key added by a party statement in the same batch is
    verified in order, during admission."""
    register_cast(ledger, admin_key)
    device = key_of("acme", device=2)
    add = party_envelope(admin_key, "acme", keys=[key_of("acme"), device], time=T_PARTIES + timedelta(minutes=1))
    envs = [add] + [commission_envelope(device, "acme", [f"K{n}"]) for n in range(BATCH)]
    results = ledger.append_batch(envs, now=NOW)
    assert all(isinstance(r, AppendResult) and r.created for r in results), [r for r in results][:3]


def test_the_audit_names_a_bad_signature_deep_in_a_large_ledger(sqlite_url, ledger_key, admin_key):
    db_url = sqlite_url  # the attacker edits the SQLite file directly
    ledger = Ledger.create(open_store(db_url), origin="waybill.test/ledger", ledger_key=ledger_key,
                           admin_key=admin_key, now=T0)
    register_cast(ledger, admin_key)
    results = ledger.append_batch([commission_envelope(key_of("acme"), "acme", [f"A{n}"]) for n in range(BATCH)],
                                  now=NOW)
    victim = results[BATCH // 2].leaf_index
    ledger.audit()
    db = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    with db:  # the signature bytes in the row are swapped for another entry's (valid, but not over this payload)
        (data,) = db.execute("SELECT leaf_data FROM entries WHERE leaf_index = ?", (victim,)).fetchone()
        (other,) = db.execute("SELECT leaf_data FROM entries WHERE leaf_index = ?", (victim + 1,)).fetchone()
        doc, donor = json.loads(data), json.loads(other)
        doc["signatures"] = donor["signatures"]
        edited = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        db.execute("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (edited, victim))
    db.close()
    ledger.store.close()
    reader = open_store(db_url, create=False)
    try:
        with pytest.raises(IntegrityError, match=rf"entry {victim} .*bad_signature"):
            Ledger(reader).audit()
    finally:
        reader.close()
