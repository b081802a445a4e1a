"""The witness (c2sp.org/tlog-witness) against the attacks it exists for: a log that rolls back, forks,
or sends a proof that does not hold; and the cosignature format checked by independent reference code."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.c2sp import ref
from tests.conftest import fixed_key
from tracker.checkpoint import Checkpoint, parse_vkey, sign_checkpoint, vkey_string
from tracker.cosignature import cosigner_vkey, open_cosigned_checkpoint, parse_cosigner_vkey
from tracker.errors import VerificationError
from tracker.store.witness_db import open_witness_db
from tracker.witness import Witness, format_add_checkpoint, origin_hash

ORIGIN = "log.example/one"
LOG = fixed_key("witness-test-log")
LOG_VKEY = vkey_string(ORIGIN, LOG.public_key)
W = fixed_key("witness-test-w1")
W_NAME = "witness.example/w1"
NOW = 1_760_000_000


def leaves(n: int, tag: str = "a") -> list[bytes]:
    return [ref.leaf(f"{tag}{i}".encode()) for i in range(n)]


def note(hashes: list[bytes], *, key=LOG, origin: str = ORIGIN) -> str:
    return sign_checkpoint(Checkpoint(origin=origin, size=len(hashes), root_hash=ref.mth(hashes)), name=origin, key=key)


def submit(w: Witness, old: int, proof: list[bytes], cp_note: str):
    return w.add_checkpoint(format_add_checkpoint(old, proof, cp_note))


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    db = open_witness_db(f"sqlite:///{tmp_path / 'w.db'}")
    yield Witness(name=W_NAME, key=W, logs=[parse_vkey(LOG_VKEY)], state=db, clock=lambda: NOW)
    db.close()


def test_honest_log_gets_cosignatures_that_reference_code_verifies(witness: Witness) -> None:
    tree = leaves(10)
    r = submit(witness, 0, [], note(tree[:3]))
    assert r.status == 200
    body3 = note(tree[:3]).split("\n\n")[0] + "\n"
    assert ref.verify_cosignature_line(body3, r.body.strip(), name=W_NAME, public_key=W.public_key) == NOW
    r = submit(witness, 3, ref.consistency(3, tree), note(tree))
    assert r.status == 200, r.body
    cosigned = note(tree) + r.body
    cc = open_cosigned_checkpoint(cosigned, parse_vkey(LOG_VKEY), [parse_cosigner_vkey(cosigner_vkey(W_NAME, W.public_key))])
    assert cc.cosigners == (W_NAME,) and cc.timestamps == (NOW,) and cc.checkpoint.size == 10
    # the same checkpoint again is fine (idempotent), and the monitoring endpoint serves it, cosigned
    assert submit(witness, 10, [], note(tree)).status == 200
    got = witness.latest_checkpoint(origin_hash(ORIGIN))
    assert got.status == 200 and got.body.startswith(note(tree).split("\n\n")[0])
    assert W_NAME in got.body and f"\u2014 {ORIGIN} " in got.body
    assert witness.latest_checkpoint(hashlib.sha256(b"other").hexdigest()).status == 404


def test_rollback_is_refused_with_409_and_the_latest_size(witness: Witness) -> None:
    tree = leaves(20)
    assert submit(witness, 0, [], note(tree)).status == 200
    smaller = tree[:12]
    for old in (0, 12):
        r = submit(witness, old, [], note(smaller))
        assert (r.status, r.body, r.content_type) == (409, "20\n", "text/x.tlog.size")
    r = submit(witness, 20, [], note(smaller))
    assert r.status == 400  # old size above the checkpoint's


def test_fork_is_refused_and_kept_as_evidence(witness: Witness, tmp_path: Path) -> None:
    honest, forked = leaves(16), leaves(8) + leaves(8, "evil")
    assert submit(witness, 0, [], note(honest[:8])).status == 200
    # the forked tree extends the same 8 leaves but differs afterwards: its own proof is valid for itself...
    assert submit(witness, 8, ref.consistency(8, honest), note(honest)).status == 200
    r = submit(witness, 16, [], note(forked))
    assert r.status == 422 and "fork" in r.body
    # ...and a fork at the size the witness already holds, with a proof built for the fork, from an older size
    r = submit(witness, 8, ref.consistency(8, forked), note(forked))
    assert r.status == 409 and r.body == "16\n"
    with witness.state.read() as txn:
        refusals = txn.refusals(ORIGIN)
    assert refusals and refusals[-1]["status"] == 422 and refusals[-1]["note"] == note(forked)


def test_fork_from_the_witnessed_size_with_its_own_valid_proof_is_refused(witness: Witness) -> None:
    honest = leaves(8)
    fork = leaves(5) + leaves(3, "evil")  # diverges below the witnessed size 8
    assert submit(witness, 0, [], note(honest)).status == 200
    longer_fork = fork + leaves(4, "more")
    r = submit(witness, 8, ref.consistency(8, longer_fork), note(longer_fork))
    assert r.status == 422


@pytest.mark.parametrize("tamper", ["flip a proof byte", "drop a proof line", "extra proof line", "proof from 0",
                                    "wrong old root"])
def test_bad_consistency_proof_is_refused(witness: Witness, tamper: str) -> None:
    tree = leaves(37)
    assert submit(witness, 0, [], note(tree[:13])).status == 200
    proof = ref.consistency(13, tree)
    if tamper == "flip a proof byte":
        proof[1] = bytes([proof[1][0] ^ 1]) + proof[1][1:]
    elif tamper == "drop a proof line":
        proof = proof[:-1]
    elif tamper == "extra proof line":
        proof = proof + [hashlib.sha256(b"x").digest()]
    elif tamper == "wrong old root":
        proof = ref.consistency(13, leaves(13, "z") + tree[13:])
    old = 0 if tamper == "proof from 0" else 13
    if tamper == "proof from 0":
        r = submit(witness, 0, proof, note(tree))
        assert r.status == 409
        return
    r = submit(witness, old, proof, note(tree))
    assert r.status == 422, (tamper, r.body)
    # nothing moved: the honest proof still works
    assert submit(witness, 13, ref.consistency(13, tree), note(tree)).status == 200


def test_signature_and_origin_checks(witness: Witness) -> None:
    tree = leaves(4)
    assert submit(witness, 0, [], note(tree, key=fixed_key("impostor"))).status == 403
    other = sign_checkpoint(Checkpoint(origin="other.example/log", size=4, root_hash=ref.mth(tree)),
                            name="other.example/log", key=LOG)
    assert submit(witness, 0, [], other).status == 404
    good = note(tree)
    bad_sig = good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:]
    assert submit(witness, 0, [], bad_sig).status in (400, 403)
    assert submit(witness, 0, [], good + "\u2014 someone.else AAAAAAA=\n").status == 200  # unknown signer: ignored
    assert submit(witness, 4, [], good + "\u2014 some+one AAAAAAA=\n").status == 403  # malformed line: refused


def test_empty_checkpoint_must_have_the_empty_root(witness: Witness) -> None:
    wrong = sign_checkpoint(Checkpoint(origin=ORIGIN, size=0, root_hash=ref.leaf(b"x")), name=ORIGIN, key=LOG)
    assert submit(witness, 0, [], wrong).status == 422
    assert submit(witness, 0, [], note([])).status == 200


@pytest.mark.parametrize("body", [b"", b"old 1\n", b"old 01\n\n", b"old -1\n\n", b"new 0\n\n", b"old 0\nnot-b64\n\n",
                                  b"old 0\n" + b"AAAA\n" + b"\n", b"\xff\xfe\n\n",
                                  ("old 3\n" + "\n".join([base64.b64encode(bytes(32)).decode()] * 64) + "\n\n").encode()])
def test_malformed_requests_are_400(witness: Witness, body: bytes) -> None:
    assert witness.add_checkpoint(body + note(leaves(3)).encode()).status == 400


def test_a_cosigned_checkpoint_with_a_bad_cosignature_is_refused() -> None:
    tree = leaves(5)
    body = note(tree).split("\n\n")[0] + "\n"
    line = ref.cosignature_line(body, name=W_NAME, seed=W.seed, timestamp=NOW)
    cosigner = parse_cosigner_vkey(ref.vkey(W_NAME, 4, W.public_key))
    good = note(tree) + line + "\n"
    assert open_cosigned_checkpoint(good, parse_vkey(LOG_VKEY), [cosigner]).cosigners == (W_NAME,)
    # the timestamp is signed: change it and the cosignature fails, which refuses the whole note
    raw = bytearray(base64.b64decode(line.rsplit(" ", 1)[1]))
    raw[11] ^= 1
    bad = note(tree) + line.rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    with pytest.raises(VerificationError):
        open_cosigned_checkpoint(bad, parse_vkey(LOG_VKEY), [cosigner])
    # a type-0x01 key of the same name is a different key ID: its line is simply not the witness's
    assert open_cosigned_checkpoint(good, parse_vkey(LOG_VKEY), [parse_cosigner_vkey(
        ref.vkey(W_NAME, 4, fixed_key("other").public_key))]).cosigners == ()
