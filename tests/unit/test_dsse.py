"""DSSE envelopes (SPEC §2): PAE bytes, signing, parsing, the canonical leaf form (SPEC §3), event ids."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.conftest import fixed_key
from tracker.dsse import PAYLOAD_TYPE, Envelope, Signature, event_id_of, pae, parse_envelope, sign_envelope
from tracker.errors import InvalidStatement, VerificationError
from tracker.keys import verify_signature

ALICE = fixed_key("alice")
BOB = fixed_key("bob")
PAYLOAD = b'{"hello":"world"}'


# --- PAE -----------------------------------------------------------------------------------------

def test_pae_dsse_spec_example() -> None:
    # The DSSE protocol document's own worked example.
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_for_waybill_payload_type() -> None:
    expected = b"DSSEv1 34 application/vnd.waybill.event+json 17 {\"hello\":\"world\"}"
    assert len(PAYLOAD_TYPE) == 34
    assert pae(PAYLOAD_TYPE, PAYLOAD) == expected


def test_pae_lengths_count_bytes_not_characters() -> None:
    # "é" is two UTF-8 bytes; "€" three. The payload is raw bytes, including spaces and newlines.
    assert pae("t/é", "€ 1\n".encode()) == b"DSSEv1 4 t/\xc3\xa9 6 \xe2\x82\xac 1\n"
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("x", b"\x00\xff") == b"DSSEv1 1 x 2 \x00\xff"


def test_pae_is_injective_on_boundaries() -> None:
    # Without lengths these two would encode alike.
    assert pae("a b", b"c") != pae("a", b"b c")


# --- signing and parsing -------------------------------------------------------------------------

def test_sign_and_verify_over_pae() -> None:
    env = sign_envelope(PAYLOAD, [ALICE])
    assert env.payload_type == PAYLOAD_TYPE and env.payload == PAYLOAD
    assert len(env.signatures) == 1
    sig = env.signatures[0]
    assert sig.keyid == ALICE.keyid and len(sig.sig) == 64
    verify_signature(ALICE.public_key, pae(PAYLOAD_TYPE, PAYLOAD), sig.sig)
    assert env.pae() == pae(PAYLOAD_TYPE, PAYLOAD)
    # not a signature over the bare payload
    with pytest.raises(VerificationError):
        verify_signature(ALICE.public_key, PAYLOAD, sig.sig)


def test_sign_needs_a_signer() -> None:
    with pytest.raises(InvalidStatement) as exc:
        sign_envelope(PAYLOAD, [])
    assert exc.value.field == "signatures"


@pytest.mark.parametrize("form", ["dict", "str", "bytes"])
def test_round_trip_through_json(form: str) -> None:
    env = sign_envelope(PAYLOAD, [ALICE, BOB])
    doc = env.to_json()
    raw = {"dict": doc, "str": json.dumps(doc), "bytes": json.dumps(doc).encode()}[form]
    back = parse_envelope(raw)
    assert back.payload == PAYLOAD
    assert back.payload_type == PAYLOAD_TYPE
    assert {(s.keyid, s.sig) for s in back.signatures} == {(s.keyid, s.sig) for s in env.signatures}
    assert back.leaf_data() == env.leaf_data()
    assert back.event_id == env.event_id
    for s in back.signatures:
        key = {ALICE.keyid: ALICE, BOB.keyid: BOB}[s.keyid]
        verify_signature(key.public_key, back.pae(), s.sig)


def test_to_json_shape() -> None:
    env = sign_envelope(PAYLOAD, [ALICE])
    doc = env.to_json()
    assert set(doc) == {"payloadType", "payload", "signatures"}
    assert doc["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(doc["payload"], validate=True) == PAYLOAD
    assert doc["signatures"] == [{"keyid": ALICE.keyid, "sig": base64.b64encode(env.signatures[0].sig).decode()}]


def test_parse_accepts_url_safe_and_unpadded_base64() -> None:
    payload = b"\xfb\xff\xfe{}"  # base64 with '+' and '/' and padding
    env = sign_envelope(payload, [ALICE])
    std = base64.b64encode(payload).decode()
    assert "+" in std or "/" in std
    urlsafe = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    doc = env.to_json()
    doc["payload"] = urlsafe
    doc["signatures"][0]["sig"] = base64.urlsafe_b64encode(env.signatures[0].sig).decode().rstrip("=")
    back = parse_envelope(doc)
    assert back.payload == payload
    assert back.leaf_data() == env.leaf_data()  # one canonical leaf whatever the wire spelling


# --- leaf data -----------------------------------------------------------------------------------

def test_leaf_data_canonical_form_written_by_hand() -> None:
    a, b = sorted([ALICE, BOB], key=lambda k: k.keyid)
    # Sign with the larger keyid first: the leaf must still list signatures by keyid.
    env = sign_envelope(PAYLOAD, [b, a])
    assert [s.keyid for s in env.signatures] == [b.keyid, a.keyid]
    sig_a = base64.b64encode(next(s.sig for s in env.signatures if s.keyid == a.keyid)).decode()
    sig_b = base64.b64encode(next(s.sig for s in env.signatures if s.keyid == b.keyid)).decode()
    expected = (
        '{"payload":"eyJoZWxsbyI6IndvcmxkIn0=",'
        '"payloadType":"application/vnd.waybill.event+json",'
        '"signatures":['
        f'{{"keyid":"{a.keyid}","sig":"{sig_a}"}},'
        f'{{"keyid":"{b.keyid}","sig":"{sig_b}"}}]}}'
    )
    assert base64.b64encode(PAYLOAD).decode() == "eyJoZWxsbyI6IndvcmxkIn0="
    assert env.leaf_data() == expected.encode()
    # the same envelope with signatures in the other order has the same leaf
    swapped = Envelope(payload_type=env.payload_type, payload=env.payload, signatures=tuple(reversed(env.signatures)))
    assert swapped.leaf_data() == env.leaf_data()


def test_leaf_data_parses_back_to_the_same_envelope() -> None:
    env = sign_envelope("{\"name\":\"Zürich ☃\"}".encode(), [ALICE, BOB])
    leaf = env.leaf_data()
    assert b" " not in leaf and b"\n" not in leaf
    assert parse_envelope(leaf).leaf_data() == leaf
    assert json.loads(leaf) == env.to_json()


# --- event ids -----------------------------------------------------------------------------------

def test_event_id_is_sha256_of_payload_bytes() -> None:
    env = sign_envelope(PAYLOAD, [ALICE])
    expected = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert event_id_of(PAYLOAD) == expected == env.event_id
    assert event_id_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # not of the PAE, nor of the base64, nor of the leaf; and not dependent on who signed
    assert env.event_id != "sha256:" + hashlib.sha256(env.pae()).hexdigest()
    assert env.event_id != "sha256:" + hashlib.sha256(base64.b64encode(PAYLOAD)).hexdigest()
    assert sign_envelope(PAYLOAD, [BOB]).event_id == env.event_id


# --- rejections ----------------------------------------------------------------------------------

def _doc() -> dict:
    return sign_envelope(PAYLOAD, [ALICE]).to_json()


def _with(**changes) -> dict:
    doc = _doc()
    doc.update(changes)
    return doc


def _sig(**changes) -> dict:
    doc = _doc()
    doc["signatures"][0].update(changes)
    return doc


@pytest.mark.parametrize("doc, field", [
    (_with(payloadType="application/json"), "payloadType"),
    (_with(payloadType="application/vnd.in-toto+json"), "payloadType"),
    ({k: v for k, v in _doc().items() if k != "payloadType"}, "payloadType"),
    (_with(payload="not base64!"), "payload"),
    (_with(payload="QUJD*"), "payload"),
    (_with(payload=12), "payload"),
    (_with(payload=""), "payload"),
    ({k: v for k, v in _doc().items() if k != "payload"}, "payload"),
    (_with(payload=base64.b64encode(b"x" * (64 * 1024 + 1)).decode()), "payload"),
    (_with(signatures=[]), "signatures"),
    (_with(signatures=None), "signatures"),
    (_with(signatures={}), "signatures"),
    ({k: v for k, v in _doc().items() if k != "signatures"}, "signatures"),
    (_with(signatures=_doc()["signatures"] * 9), "signatures"),
    (_with(signatures=["sig"]), "signatures"),
    (_sig(sig=base64.b64encode(b"\x00" * 63).decode()), "signatures.sig"),
    (_sig(sig=base64.b64encode(b"\x00" * 65).decode()), "signatures.sig"),
    (_sig(sig="%%%"), "signatures.sig"),
    (_sig(keyid="ABCDEF0123456789"), "signatures.keyid"),
    (_sig(keyid="abcdef012345678"), "signatures.keyid"),
    (_sig(keyid=""), "signatures.keyid"),
    (_sig(keyid=None), "signatures.keyid"),
    (_sig(extra="x"), "signatures"),
    (_with(extra=1), "envelope"),
    (_with(payloadtype=PAYLOAD_TYPE), "envelope"),
    ([], "envelope"),
    ("not json", "envelope"),
    (b"\xff\xfe{}", "envelope"),
    ('{"payloadType": "x"'.encode(), "envelope"),
])
def test_parse_envelope_rejections(doc, field: str) -> None:
    with pytest.raises(InvalidStatement) as exc:
        parse_envelope(doc)
    assert exc.value.field == field


def test_non_utf8_envelope_message() -> None:
    raw = json.dumps(_doc()).encode().replace(b'"payload"', b'"payl\xe9ad"')
    with pytest.raises(InvalidStatement) as exc:
        parse_envelope(raw)
    assert "UTF-8" in exc.value.message


def test_parse_envelope_keeps_payload_bytes_exactly() -> None:
    # Whitespace and key order inside the payload are kept: no re-serialisation anywhere.
    payload = b'{ "b" : 1,\n  "a": 2 }'
    env = sign_envelope(payload, [ALICE])
    assert parse_envelope(json.dumps(env.to_json())).payload == payload
    assert env.event_id == "sha256:" + hashlib.sha256(payload).hexdigest()


def test_signature_value_type() -> None:
    s = Signature(keyid=ALICE.keyid, sig=b"\x00" * 64)
    with pytest.raises(Exception):
        s.keyid = "x"  # type: ignore[misc]
