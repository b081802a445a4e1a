"""Hostile input (issue), each case named: oversized bodies, deeply nested JSON, invalid UTF-8, base64 that is
not, a signature by a valid key of another party, a revoked key, a replayed envelope, ``actor`` not matching
the key, times far in the future, serials outside the GS1 character set, path traversal, and HTML/script in
every text field — escaped on every page. Every answer: a 4xx with a code, never a 5xx, never a stack trace;
and a refused write leaves the ledger exactly as it was.

Run on each backend through the real app factory (``create_app`` over an installation made by
``tracker.home.init``); the body limits are also checked over real HTTP through gunicorn (chunked bodies
without a Content-Length included).
"""
from __future__ import annotations

import base64
import json
import socket
from datetime import timedelta
from typing import Iterator
from urllib.parse import quote

import pytest

from tests.reliability.harness import GTIN, Server, device_key, item_key, ledger_state, now, statement
from tests.reliability.hostile import (PRIVATE_NOTE, SERIAL_HTML, SERIAL_PATH, TRAVERSAL, XSS_IMG, XSS_SCRIPT, XSS_SVG,
                                       HostileWorld, api_item_path, assert_api_error, assert_escaped,
                                       assert_no_server_error, page_path, world_on)
from tracker.dsse import pae
from tracker.signing import new_statement
from tracker.statements import format_time, statement_bytes


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory) -> Iterator[HostileWorld]:
    yield from world_on(request.param, tmp_path_factory.mktemp("hostile") / "home")


@pytest.fixture
def client(world):
    return world.client()


def size(world: HostileWorld) -> int:
    return ledger_state(world.inst).size


def envelope_doc(payload: bytes, keyid: str, sig: bytes) -> dict:
    return {"payloadType": "application/vnd.waybill.event+json", "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}]}


def signed_raw(doc: dict, party: str, device: int = 0) -> dict:
    """Sign a statement document *without* validating it first (a device would refuse; an attacker won't)."""
    payload = statement_bytes(doc)
    key = device_key(party, device)
    return envelope_doc(payload, key.keyid, key.sign(pae("application/vnd.waybill.event+json", payload)))


def commission_doc(serial: str, *, actor: str = "acme", at=None, **extra) -> dict:
    doc = new_statement("commission", actor=actor, time=at or now() - timedelta(minutes=1),
                        location={"name": "Plant", "country": "CN"}, items=[item_key(serial)],
                        product={"gtin": GTIN, "name": "Widget"})
    doc.update(extra)
    return doc


def refused(world: HostileWorld, client, body, *, status: int, code: str | None = None,
            path: str = "/api/v1/events", what: str = "", **kwargs) -> dict:
    """POST ``body`` (dict → JSON, bytes/str raw); assert the error and that the ledger did not change."""
    before = size(world)
    if isinstance(body, (bytes, str)):
        response = client.post(path, data=body, content_type=kwargs.pop("content_type", "application/json"),
                               **kwargs)
    else:
        response = client.post(path, json=body, **kwargs)
    err = assert_api_error(response, what or code or "", status, code)
    assert size(world) == before, f"{what}: a refused write changed the ledger"
    return err


# --- oversized bodies -------------------------------------------------------------------------------

def test_oversized_bodies_are_413_and_the_limit_is_enforced(world, client):
    limit = world.app.config["WAYBILL_MAX_EVENT_BYTES"]
    filler = {"payloadType": "x", "payload": "A" * limit, "signatures": []}  # > limit once serialised
    refused(world, client, json.dumps(filler), status=413, code="body_too_large", what="event over the limit")
    # Just under the limit is read (and refused for what it is, not for its size).
    under = json.dumps({"payloadType": "x", "payload": "A" * (limit - 100), "signatures": []})
    assert len(under) <= limit
    err = refused(world, client, under, status=400, what="event under the limit")
    assert err["code"] != "body_too_large"
    # A batch may be larger than one event, up to the app-wide limit.
    big = world.app.config["MAX_CONTENT_LENGTH"]
    refused(world, client, b'{"envelopes": ["' + b"A" * big + b'"]}', status=413, code="body_too_large",
            path="/api/v1/events/batch", what="batch over the limit")
    # More than 1000 envelopes: refused before any work.
    refused(world, client, {"envelopes": [{}] * 1001}, status=400, path="/api/v1/events/batch", what="1001 envelopes")
    # The statement inside an envelope has its own limit (64 KiB of payload).
    doc = commission_doc("BIGPAYLOAD")
    doc["product"]["name"] = "x" * 200
    payload = statement_bytes(doc) + b" " * (65 * 1024)
    key = device_key("acme")
    refused(world, client, envelope_doc(payload, key.keyid, key.sign(pae("application/vnd.waybill.event+json",
                                                                          payload))),
            status=400, code="invalid_statement", what="payload over 64 KiB")


def _raw_http(port: int, head: bytes, body_chunks: list[bytes], timeout: float = 20) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: that is allowed
        data = b""
        while len(data) < 1 << 20:  # Connection: close — read the whole answer
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        return status, data


@pytest.mark.slow
def test_oversized_bodies_over_real_http_chunked_and_lying_content_length(world):
    """gunicorn in front: a chunked body with no Content-Length, and a Content-Length that lies low."""
    inst = world.inst
    with Server(inst, workers=1) as server:
        limit = 1024 * 1024
        chunk = b"A" * 65536
        chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (limit // len(chunk) + 2) + [b"0\r\n\r\n"]
        head = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        status, data = _raw_http(server.port, head, chunks)
        assert status == 413, data[:400]
        assert b'"body_too_large"' in data
        # Smuggling past the cap: a valid envelope padded to exactly the limit, then more. A stream cut at the
        # cap would parse the first part and store it; the whole body is over the limit, so it is refused.
        before = ledger_state(inst).size
        env = json.dumps(statement("commission", "acme", at=now() - timedelta(minutes=1),
                                   items=[item_key("SMUGGLED")], product={"gtin": GTIN, "name": "x"}).to_json())
        body = env.encode() + b" " * (limit - len(env)) + b'"and then some"'
        chunks = [b"%x\r\n%s\r\n" % (len(part), part) for part in (body[i:i + 65536]
                                                                  for i in range(0, len(body), 65536))]
        status, data = _raw_http(server.port, head, chunks + [b"0\r\n\r\n"])
        assert status == 413, data[:600]
        assert ledger_state(inst).size == before
        # Content-Length says 10 bytes, 2 MiB follow: the server reads 10 and answers for those.
        head = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10\r\nConnection: close\r\n\r\n")
        status, data = _raw_http(server.port, head, [b"{" * 10, b"A" * (2 * limit)])
        assert 400 <= status < 500, data[:400]
        # Through a real server (RAW_URI from gunicorn): a serial that starts with '/' is found.
        import requests

        env = statement("commission", "acme", at=now() - timedelta(minutes=1), items=[item_key("/HTTP")],
                        product={"gtin": GTIN, "name": "Slash widget"})
        assert requests.post(f"{server.base}/api/v1/events", json=env.to_json(), timeout=30).status_code == 201
        found = requests.get(f"{server.base}/api/v1/items/{GTIN}/%2FHTTP", timeout=30)
        assert found.status_code == 200 and found.json()["serial"] == "/HTTP", found.text[:300]
        head = requests.get(f"{server.base}/api/v1/items/{GTIN}/%2FHTTP/head", timeout=30)
        assert head.status_code == 200 and head.json() == {"event_id": env.event_id}, head.text[:300]
        # Content-Length of 100 MiB announced: refused before the body is read.
        head = (b"POST /api/v1/events/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 104857600\r\nConnection: close\r\n\r\n")
        status, data = _raw_http(server.port, head, [b"{"])
        assert status == 413, data[:400]


# --- deeply nested JSON -----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [100, 5000, 200_000])
def test_deeply_nested_json_is_400(world, client, depth):
    refused(world, client, "[" * depth + "]" * depth, status=400, what=f"array nested {depth}")
    objects = min(depth, 100_000)  # 6 bytes a level: stay under the 1 MiB event limit
    refused(world, client, '{"a":' * objects + "1" + "}" * objects, status=400, what=f"object nested {objects}")
    refused(world, client, '{"envelopes": ' + "{" * depth + "}" * depth + "}", status=400,
            path="/api/v1/events/batch", what=f"batch nested {depth}")
    # Nested inside the list: the batch is well formed, so the answer is per envelope — or 400 past the
    # parser's depth — and in no case a 5xx or a stored entry.
    before = size(world)
    response = client.post("/api/v1/events/batch", data='{"envelopes": [' + "[" * depth + "]" * depth + "]}",
                           content_type="application/json")
    if response.status_code == 200:
        [result] = response.get_json()["results"]
        assert result["error"]["code"] == "invalid_statement"
    else:
        assert_api_error(response, f"batch entry nested {depth}", 400)
    assert size(world) == before


def test_deeply_nested_statement_inside_a_signed_envelope_is_400(world, client):
    nested: dict = {"name": "x"}
    for _ in range(50):
        nested = {"n": nested}
    doc = commission_doc("NESTED")
    doc["product"] = nested
    refused(world, client, signed_raw(doc, "acme"), status=400, code="invalid_statement", what="nested statement")
    payload = b"[" * 20000 + b"]" * 20000
    key = device_key("acme")
    refused(world, client, envelope_doc(payload, key.keyid, key.sign(pae("application/vnd.waybill.event+json",
                                                                          payload))),
            status=400, code="invalid_statement", what="payload nested 20000")


# --- invalid UTF-8 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"payload": "\xff\xfe"}', b"\xc0\xaf", b'{"a": "\xed\xa0\x80"}',
                                 b"\xef\xbb\xbf{}", b'"\x80"'])
def test_invalid_utf8_body_is_400(world, client, raw):
    refused(world, client, raw, status=400, what=f"body {raw!r}")
    refused(world, client, raw, status=400, path="/api/v1/events/batch", what=f"batch {raw!r}")


@pytest.mark.parametrize("payload", [b"\xff\xfe\xfd", b'{"v":1,"type":"commission","actor":"acme\xc0"}',
                                     b'{"v":1,"type":"\xed\xa0\x80"}'])
def test_invalid_utf8_inside_a_signed_payload_is_400(world, client, payload):
    key = device_key("acme")
    env = envelope_doc(payload, key.keyid, key.sign(pae("application/vnd.waybill.event+json", payload)))
    refused(world, client, env, status=400, code="invalid_statement", what=f"payload {payload!r}")


def test_lone_surrogates_in_json_strings_are_400(world, client):
    doc = signed_raw(commission_doc("SURR"), "acme")
    for bad in ({**doc, "payloadType": "\ud800"}, {**doc, "payload": doc["payload"] + "\udfff"},
                {**doc, "signatures": [{"keyid": "\ud800" * 16, "sig": doc["signatures"][0]["sig"]}]}):
        refused(world, client, json.dumps(bad), status=400, what="surrogate")
    statement_doc = commission_doc("SURR2")
    statement_doc["product"]["name"] = "bad \ud800 name"
    payload = json.dumps(statement_doc, sort_keys=True, separators=(",", ":")).encode()  # \ud800 escaped
    key = device_key("acme")
    refused(world, client, envelope_doc(payload, key.keyid, key.sign(pae("application/vnd.waybill.event+json",
                                                                          payload))),
            status=400, code="invalid_statement", what="surrogate in a signed field")


# --- base64 that is not -------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("payload", "not base64!"), ("payload", "===="), ("payload", "YWJj\nZGVm"), ("payload", "YWJj ZGVm"),
    ("payload", "é"), ("payload", ""), ("payload", 12345), ("payload", None), ("payload", ["YWJj"]),
    ("sig", "not base64!"), ("sig", "AAAA"), ("sig", base64.b64encode(b"x" * 63).decode()),
    ("sig", base64.b64encode(b"x" * 65).decode()), ("sig", "#" * 88), ("sig", None),
    ("keyid", "ABCDEF0123456789"), ("keyid", "../../etc/passwd"), ("keyid", "0" * 15), ("keyid", 7),
])
def test_base64_that_is_not_is_400(world, client, field, value):
    doc = signed_raw(commission_doc(f"B64{abs(hash((field, str(value)))) % 10**8}"), "acme")
    if field == "payload":
        doc["payload"] = value
    else:
        doc["signatures"][0][field] = value
    refused(world, client, doc, status=400, what=f"{field}={value!r}")


def test_a_party_key_that_is_not_base64_is_400(world, client):
    doc = new_statement("party", actor="admin", time=now() - timedelta(minutes=1),
                        location={"name": "Registry", "country": "ZZ"},
                        party={"id": "b64-co", "name": "B64", "country": "CN", "roles": ["manufacturer"],
                               "keys": [{"public_key": "not/a/key!", "not_before": format_time(now())}]})
    admin = world.inst.admin_key()
    payload = statement_bytes(doc)
    refused(world, client, envelope_doc(payload, admin.keyid,
                                        admin.sign(pae("application/vnd.waybill.event+json", payload))),
            status=400, code="invalid_statement", what="party key not base64")


# --- signatures and keys ------------------------------------------------------------------------------

def test_a_signature_by_a_valid_key_of_another_party_is_refused(world, client):
    # rival's key is registered and valid — but not a key of acme, in whose name the statement speaks.
    doc = commission_doc("OTHERKEY")
    refused(world, client, signed_raw(doc, "rival"), status=422, code="unknown_key", what="rival signs for acme")
    # ... nor does claiming acme's keyid help: the signature does not verify under acme's key.
    forged = signed_raw(doc, "rival")
    forged["signatures"][0]["keyid"] = device_key("acme").keyid
    refused(world, client, forged, status=422, code="bad_signature", what="rival's signature under acme's keyid")
    # Adding a bogus second signature under acme's keyid does not help either.
    both = signed_raw(doc, "rival")
    both["signatures"].append({"keyid": device_key("acme").keyid, "sig": base64.b64encode(bytes(64)).decode()})
    err = refused(world, client, both, status=422, what="rival plus a zero signature")
    assert err["code"] in ("unknown_key", "bad_signature")


def test_a_revoked_key_writes_nothing_whatever_time_it_claims(world, client):
    before_revocation = world.revoked_at - timedelta(minutes=5)
    for at in (before_revocation, now() - timedelta(seconds=5)):
        doc = commission_doc(f"REVOKED{at.minute:02d}", actor="oldco", at=at)
        refused(world, client, signed_raw(doc, "oldco"), status=422, code="revoked_key", what=f"revoked key at {at}")
    # oldco's other device is fine.
    ok = client.post("/api/v1/events", json=signed_raw(commission_doc("OLDCO-OK", actor="oldco"), "oldco", 1))
    assert ok.status_code == 201, ok.get_data(as_text=True)


def test_a_replayed_envelope_is_never_stored_twice(world, client):
    env = statement("commission", "acme", at=now() - timedelta(minutes=2), items=[item_key("REPLAY1")],
                    product={"gtin": GTIN, "name": "Replayed widget"})
    first = client.post("/api/v1/events", json=env.to_json())
    assert first.status_code == 201
    ids = first.get_json()
    n = size(world)
    # The same bytes again, in a batch twice, re-encoded (URL-safe base64, no padding), with an extra signature:
    # the event id is the payload's hash, so each is the same event.
    doc = env.to_json()
    urlsafe = {**doc, "payload": base64.urlsafe_b64encode(env.payload).decode().rstrip("=")}
    extra_sig = {**doc, "signatures": doc["signatures"] + [{"keyid": device_key("rival").keyid,
                                                             "sig": base64.b64encode(bytes(64)).decode()}]}
    for replay in (doc, urlsafe, extra_sig):
        again = client.post("/api/v1/events", json=replay)
        assert (again.status_code, again.get_json()) == (200, ids)
    batch = client.post("/api/v1/events/batch", json={"envelopes": [doc, doc, urlsafe]})
    assert batch.status_code == 200 and batch.get_json()["results"] == [ids, ids, ids]
    assert size(world) == n
    # A replayed ship after the item moved on: still the one stored event, not a second hop.
    ship_doc = client.get(f"/api/v1/events/{world.events['s1']}").get_json()["envelope"]
    replay = client.post("/api/v1/events", json=ship_doc)
    assert replay.status_code == 200 and replay.get_json()["event_id"] == world.events["s1"]
    assert size(world) == n


def test_a_statement_whose_actor_does_not_match_the_key_is_refused(world, client):
    # acme's own valid key, but the statement claims to be by rival / by the admin / by nobody known.
    for actor, code in (("rival", "unknown_key"), ("oldco", "unknown_key"), ("nobody-at-all", "unknown_party")):
        refused(world, client, signed_raw(commission_doc(f"ACTOR{actor[:4]}", actor=actor), "acme"), status=422,
                code=code, what=f"acme's key speaking as {actor}")
    # Escalation: acme tries to register itself a key as the admin, or as itself.
    for actor in ("admin", "acme"):
        doc = new_statement("party", actor=actor, time=now() - timedelta(minutes=1),
                            location={"name": "Registry", "country": "ZZ"},
                            party={"id": "acme", "name": "Acme", "country": "CN", "roles": ["admin", "manufacturer"],
                                   "keys": [{"public_key": device_key("acme").public_key_b64,
                                             "not_before": format_time(now() - timedelta(days=1))}]})
        err = refused(world, client, signed_raw(doc, "acme"), status=422, what=f"party statement as {actor}")
        assert err["code"] in ("unknown_key", "unauthorized_signer"), err


@pytest.mark.parametrize("ahead,status,code", [
    (timedelta(days=365 * 7900), 422, "future_time"), (timedelta(days=3650), 422, "future_time"),
    (timedelta(minutes=6), 422, "future_time"), (timedelta(minutes=4), 201, None)])
def test_times_in_the_future_are_refused_beyond_the_clock_skew(world, client, ahead, status, code):
    at = now() + ahead if ahead < timedelta(days=365 * 7000) else None
    doc = commission_doc(f"FUT{int(ahead.total_seconds()) % 10**9}")
    doc["time"] = "9999-12-31T23:59:59Z" if at is None else format_time(at)
    env = signed_raw(doc, "acme")
    if status == 201:
        response = client.post("/api/v1/events", json=env)
        assert response.status_code == 201, response.get_data(as_text=True)
    else:
        refused(world, client, env, status=status, code=code, what=f"time {doc['time']}")


@pytest.mark.parametrize("value", ["2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", "0000-01-01T00:00:00Z",
                                   "+12026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01",
                                   "1e309", "2026-01-01T00:00:00.1234567891Z", ""])
def test_malformed_times_are_400(world, client, value):
    doc = commission_doc("BADTIME")
    doc["time"] = value
    refused(world, client, signed_raw(doc, "acme"), status=400, code="invalid_statement", what=f"time {value!r}")


# --- serials outside the GS1 character set ---------------------------------------------------------------

BAD_SERIALS = ["has space", "hash#", "dollar$", "at@", "tilde~", "caret^", "back\\slash", "brace{", "pipe|",
               "é", "日本", "\x00", "tab\t", "new\nline", "A" * 21, "", "emoji\U0001F600", "[x]"]


@pytest.mark.parametrize("serial", BAD_SERIALS)
def test_serials_outside_the_gs1_character_set_are_400_everywhere(world, client, serial):
    doc = commission_doc("OK")
    doc["items"] = [f"01/{GTIN}/21/{serial}"]
    refused(world, client, signed_raw(doc, "acme"), status=400, code="invalid_statement",
            what=f"statement with serial {serial!r}")
    if not serial or "\x00" in serial or "\n" in serial:
        return
    quoted = quote(serial, safe="")
    api = client.get(f"/api/v1/items/{GTIN}/{quoted}")
    assert_api_error(api, f"API serial {serial!r}", 400, "invalid_identifier")
    head = client.get(f"/api/v1/items/{GTIN}/{quoted}/head")
    assert_api_error(head, f"API head serial {serial!r}", 400, "invalid_identifier")
    page = client.get(f"/01/{GTIN}/21/{quoted}")
    html = assert_no_server_error(page, f"page serial {serial!r}")
    assert page.status_code == 400 and page.mimetype == "text/html" and 'data-code="invalid_identifier"' in html
    search = client.get(f"/search?code={quote(f'(01){GTIN}(21){serial}', safe='')}")
    assert_no_server_error(search, f"search serial {serial!r}")
    # Scanners' element strings may carry trailing whitespace, which the search strips.
    assert search.status_code == (303 if serial != serial.rstrip() else 400), serial


# --- serials that start with a slash (legal AI-82) ------------------------------------------------------

LEADING_SLASH = ["/", "/A1", "//x", "/.."]
# One commission time for the tests below, which share serials: the same item commissioned twice at different
# times would (rightly) be a cloned serial, so two tests a second apart must post the very same statement.
SLASH_COMMISSIONED = now() - timedelta(minutes=1)


@pytest.mark.parametrize("serial", LEADING_SLASH)
def test_a_serial_that_starts_with_a_slash_is_found_through_the_api(world, client, serial):
    env = statement("commission", "acme", at=SLASH_COMMISSIONED, items=[item_key(serial)],
                    product={"gtin": GTIN, "name": "Slash widget"})
    assert client.post("/api/v1/events", json=env.to_json()).status_code in (200, 201)
    response = client.get(f"/api/v1/items/{GTIN}/{quote(serial, safe='')}")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["serial"] == serial and response.get_json()["verdict"] == "genuine"
    head = client.get(f"/api/v1/items/{GTIN}/{quote(serial, safe='')}/head")
    assert head.status_code == 200 and head.get_json() == {"event_id": env.event_id}


@pytest.mark.parametrize("serial", ["/", "/A1"])
def test_the_consumer_page_of_a_serial_that_starts_with_a_slash(world, client, serial):
    env = statement("commission", "acme", at=SLASH_COMMISSIONED, items=[item_key(serial)],
                    product={"gtin": GTIN, "name": "Slash widget"})
    assert client.post("/api/v1/events", json=env.to_json()).status_code in (200, 201)
    response = client.get(f"/01/{GTIN}/21/{quote(serial, safe='')}")
    assert response.status_code == 200, (response.status_code, response.headers.get("Location"))
    assert 'data-verdict="genuine"' in response.get_data(as_text=True)


# --- path traversal ------------------------------------------------------------------------------------

TRAVERSALS = ["/static/../../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml",
              "/static/..%2F..%2Fpyproject.toml", "/static/....//....//pyproject.toml",
              "/static/%252e%252e/pyproject.toml", "/static//etc/passwd", "/static/..\\..\\pyproject.toml",
              "/api/v1/events/..%2F..%2F..%2Fetc%2Fpasswd", "/api/v1/parties/..%2F..%2Fetc%2Fpasswd",
              "/api/v1/parties/../../etc/passwd", f"/api/v1/items/{GTIN}/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
              f"/01/{GTIN}/21/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/01/..%2F..%2Fetc/21/passwd",
              "/..%2f..%2f..%2fetc/passwd", "/%2e%2e/%2e%2e/etc/passwd"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_reaches_no_file(world, client, path):
    response = client.get(path)
    body = assert_no_server_error(response, path)
    assert "root:x:" not in body and "[build-system]" not in body and "[project]" not in body, path
    assert response.status_code in (200, 308, 400, 404), (path, response.status_code)
    if response.status_code == 200:  # only the item page may answer, for a serial that happens to be valid
        assert 'id="verdict"' in body, path
    if path.startswith("/api/") and response.status_code >= 400:
        assert_api_error(response, path)


def test_a_path_like_serial_is_just_a_serial(world, client):
    """"../../etc/pass" is a legal GS1 serial: it names an item, and nothing else."""
    response = client.get(page_path(world.items["path"]))
    html = assert_no_server_error(response, "path-like serial")
    assert response.status_code == 200 and 'data-verdict="genuine"' in html
    assert "&lt;svg" in html and TRAVERSAL in html  # the product name, escaped, and the lot as text
    api = client.get(api_item_path(world.items["path"]))
    assert api.status_code == 200 and api.get_json()["serial"] == SERIAL_PATH


# --- HTML and script in every text field, escaped on every page ----------------------------------------

def pages(world: HostileWorld) -> list[str]:
    return [
        "/", page_path(world.items["html"]), page_path(world.items["path"]), page_path(item_key("<b>x</b>")),
        page_path(item_key(SERIAL_HTML)) + "?x=<script>alert(1)</script>",
        f"/search?code={quote(XSS_SCRIPT)}", f"/search?code={quote(XSS_IMG)}",
        f"/search?code={quote('(01)' + GTIN + '(21)' + SERIAL_HTML)}",
        f"/01/{quote(XSS_SCRIPT, safe='')}/21/x", f"/01/{GTIN}/21/{quote(XSS_SCRIPT, safe='')}",
        f"/{quote(XSS_IMG, safe='')}", f"/01/{GTIN}/22/{quote(XSS_SVG, safe='')}",
        f"/gs1/{quote(XSS_SCRIPT, safe='')}/01/{GTIN}/21/{quote(SERIAL_HTML, safe='')}",
    ]


def test_html_and_script_in_every_text_field_are_escaped_on_every_page(world, client):
    seen_escaped = set()
    for path in pages(world):
        response = client.get(path, follow_redirects=True)
        html = assert_no_server_error(response, path)
        assert response.mimetype == "text/html", path
        assert_escaped(html, path)
        for marker, escaped in (("product name", "&lt;script&gt;alert(&#39;w&#39;)&lt;/script&gt;"),
                                ("party name", "&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"),
                                ("serial", "&lt;i&gt;&amp;&#34;&#39;x&lt;/i&gt;"),
                                ("location", "&lt;svg/onload=alert(3)&gt;"), ("template", "{{7*7}}")):
            if escaped in html:
                seen_escaped.add(marker)
        assert ">49<" not in html and "49$" not in html, f"{path}: template evaluated"
    # The hostile item page really rendered every field (so the checks above were not vacuous).
    assert seen_escaped == {"product name", "party name", "serial", "location", "template"}, seen_escaped
    item = client.get(page_path(world.items["html"])).get_data(as_text=True)
    assert 'data-verdict="suspicious"' in item and 'data-code="held_by_customs"' in item
    assert PRIVATE_NOTE not in item, "the customs note is business data, not for the public page"


def test_api_answers_with_hostile_text_are_json_never_html(world, client):
    for path in (api_item_path(world.items["html"]), f"/api/v1/events/{world.events['c1']}", "/api/v1/parties",
                 "/api/v1/parties/evil-co", f"/api/v1/events/{quote(XSS_SCRIPT, safe='')}",
                 f"/api/v1/nothing/{quote(XSS_IMG, safe='')}", f"/api/v1/items/{GTIN}/{quote(XSS_SCRIPT, safe='')}"):
        response = client.get(path)
        assert_no_server_error(response, path)
        assert response.mimetype == "application/json", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
    # Sent as JSON only, never sniffable as HTML, even when the client asks for HTML.
    response = client.get(api_item_path(world.items["html"]), headers={"Accept": "text/html"})
    assert response.mimetype == "application/json"
