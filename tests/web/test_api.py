"""Every /api/v1 endpoint (SPEC §4), its answers checked against the OpenAPI document, and every error path:
always {"error": {"code", "message"}} with the right 4xx, never HTML, never a 500 for bad input."""
from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.web.conftest import GTIN, admin_party, commission, item_path, now, sign
from tracker import merkle
from tracker.dsse import Envelope, Signature

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


def post(client, body, path="/api/v1/events", content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, content_type=content_type)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert SNAKE.match(body["error"]["code"]) and body["error"]["message"].strip()
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def leaf_data(envelope: dict) -> bytes:
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


# --- POST /events ----------------------------------------------------------------------------------

def test_post_event_created_then_duplicate_returns_same_ids(client, ledger, openapi):
    env = commission(["NEW001"]).to_json()
    first = post(client, env)
    assert first.status_code == 201
    ids = openapi.check(first, "/events", "post")
    assert ids["leaf_index"] == ledger.size() - 1
    assert first.headers["Location"] == f"/api/v1/events/{ids['event_id']}"
    again = post(client, env)
    assert again.status_code == 200
    assert openapi.check(again, "/events", "post") == ids
    assert ledger.size() == ids["leaf_index"] + 1


def test_acknowledged_event_is_covered_by_the_next_checkpoint(client, ledger):
    ids = post(client, commission(["MERGE1"]).to_json()).get_json()
    note = client.get("/api/v1/checkpoint").get_data(as_text=True)
    assert ledger.verified_checkpoint(note).size > ids["leaf_index"]


def test_post_event_party_statement_registers_a_party(client):
    response = post(client, admin_party("rotterdam-wh", roles=["warehouse"]).to_json())
    assert response.status_code == 201
    party = client.get("/api/v1/parties/rotterdam-wh").get_json()
    assert party["roles"] == ["warehouse"] and party["name"] == "Rotterdam-Wh"


def test_post_event_chain_of_custody_with_prev_from_head(client, world):
    item = world.items["genuine-cross-border"]
    gtin, serial = item_path(item)
    head = client.get(f"/api/v1/items/{gtin}/{serial}/head").get_json()["event_id"]
    env = sign("sell", "berlin-shop", items=[item], prev={item: head})
    assert post(client, env.to_json()).status_code == 201
    answer = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    assert answer["path"][-1]["type"] == "sell" and answer["holder"] is None
    assert answer["verdict"] == "genuine", answer["reasons"]


@pytest.mark.parametrize("make, code", [
    (lambda: commission(["R1"], actor="nobody-here"), "unknown_party"),
    (lambda: commission(["R2"], actor="berlin-shop"), "unauthorized_signer"),
    (lambda: commission(["R3"], at=now() + timedelta(hours=2)), "future_time"),
    (lambda: sign("ship", "acme-cn", items=[f"01/{GTIN}/21/NEVERSEEN"], to="pearl-export", prev={}), "unknown_item"),
])
def test_post_event_rejected_statements_are_422(client, make, code, openapi):
    response = post(client, make().to_json())
    error = assert_error(response, 422, code)
    openapi.check(response, "/events", "post")
    assert error["message"]


def test_revoking_a_key_through_the_api_stops_it_writing(client, openapi):
    from tests.conftest import fixed_key
    from tracker.signing import party_statement, sign_statement
    from tracker.statements import format_time

    party = client.get("/api/v1/parties/acme-cn").get_json()
    keys = [{k: v for k, v in key.items() if k != "keyid"} for key in party["keys"]]
    keys[1]["revoked_at"] = format_time(now() - timedelta(hours=1))
    doc = party_statement(admin="admin", time=now() - timedelta(seconds=2), location={"name": "Registry", "country": "ZZ"},
                          party_id="acme-cn", name=party["name"], country=party["country"], roles=party["roles"],
                          keys=keys, gs1_prefixes=party["gs1_prefixes"])
    assert post(client, sign_statement(doc, fixed_key("admin")).to_json()).status_code == 201
    assert "revoked_at" in client.get("/api/v1/parties/acme-cn").get_json()["keys"][1]
    response = post(client, commission(["REVOKED1"], device=1).to_json())
    assert_error(response, 422, "revoked_key")
    openapi.check(response, "/events", "post")
    assert post(client, commission(["REVOKED2"], device=0).to_json()).status_code == 201


def test_post_event_bad_signature_is_422(client, openapi):
    env = commission(["SIG1"])
    sig = env.signatures[0]
    forged = Envelope(payload_type=env.payload_type, payload=env.payload,
                      signatures=(Signature(keyid=sig.keyid, sig=bytes([sig.sig[0] ^ 1]) + sig.sig[1:]),))
    response = post(client, forged.to_json())
    assert_error(response, 422, "bad_signature")
    openapi.check(response, "/events", "post")


def test_post_event_statement_signed_by_other_key_is_rejected(client):
    from tracker.scenarios import party_key
    from tracker.dsse import sign_envelope

    env = commission(["SIG2"])
    other = sign_envelope(env.payload, [party_key("pearl-export")])
    assert_error(post(client, other.to_json()), 422)


@pytest.mark.parametrize("body, code", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"   ", "invalid_json"),
    (b"\xff\xfe{}", "invalid_utf8"),
    (b'{"payload": "\xc3\x28"}', "invalid_utf8"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "invalid_json"),
    (b"NaN", "invalid_json"),
    (b'{"payloadType": Infinity}', "invalid_json"),
    (b"1" * 5000, "invalid_json"),
    (b"[]", "invalid_statement"),
    (b"42", "invalid_statement"),
    (b"null", "invalid_statement"),
    (b'"a string"', "invalid_statement"),
    (b"{}", "invalid_statement"),
    (b'{"payloadType": 7, "payload": [], "signatures": {}}', "invalid_statement"),
    (b'{"payloadType": "application/vnd.waybill.event+json", "payload": 12, "signatures": []}', "invalid_statement"),
    (b'{"payloadType": "application/vnd.waybill.event+json", "payload": "!!!", "signatures": [{"keyid": "x", "sig": "y"}]}',
     "invalid_statement"),
], ids=short)
def test_post_event_bad_input_is_400_never_500(client, body, code, openapi):
    response = post(client, body)
    assert_error(response, 400, code)
    openapi.check(response, "/events", "post")


def test_post_event_wrong_field_types_inside_a_valid_envelope(client):
    env = commission(["TYP1"]).to_json()
    for mutate in (lambda e: e.update(signatures="abc"), lambda e: e["signatures"][0].update(keyid=5),
                   lambda e: e.update(extra=True), lambda e: e.update(payload=base64.b64encode(b"[1,2]").decode()),
                   lambda e: e.update(payload=base64.b64encode(b'{"v": "one"}').decode())):
        doc = json.loads(json.dumps(env))
        mutate(doc)
        assert_error(post(client, doc), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"])
def test_post_event_non_json_media_type_is_415(client, content_type, openapi):
    response = client.post("/api/v1/events", data=json.dumps(commission(["MT1"]).to_json()),
                           headers={"Content-Type": content_type} if content_type else {})
    assert_error(response, 415, "unsupported_media_type")
    openapi.check(response, "/events", "post")


def test_post_event_body_too_large_is_413(app, client, openapi):
    app.config["WAYBILL_MAX_EVENT_BYTES"] = 4096
    response = post(client, json.dumps({"payload": "A" * 10_000}))
    assert_error(response, 413, "body_too_large")
    openapi.check(response, "/events", "post")


def test_batch_body_too_large_is_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = post(client, {"envelopes": [{"payload": "A" * 5000}]}, path="/api/v1/events/batch")
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405_json(client, method, openapi):
    response = getattr(client, method)("/api/v1/events")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    if method == "get":
        openapi.check(response, "/events", "post")


def test_post_to_read_endpoint_is_405_json(client):
    assert_error(client.post("/api/v1/checkpoint"), 405)
    assert_error(client.post("/api/v1/items/09506000134352/X"), 405)


def test_unknown_api_path_is_404_json(client):
    for path in ("/api/v1/nothing", "/api/v1/", "/api/v2/items", "/api", "/api/v1/items/09506000134352"):
        error = assert_error(client.get(path), 404, "not_found")
        assert path in error["message"]


def test_csrf_does_not_apply_to_the_api(app, client):
    assert app.config["WTF_CSRF_ENABLED"] is not False
    assert post(client, commission(["CSRF1"]).to_json()).status_code == 201


# --- POST /events/batch ------------------------------------------------------------------------------

def test_batch_results_are_per_item_and_in_order(client, ledger, world, openapi):
    first = commission(["B001", "B002"])
    good = first.to_json()
    item = f"01/{GTIN}/21/B001"
    ship = sign("ship", "acme-cn", items=[item], to="pearl-export", prev={item: first.event_id})  # builds on the first
    forged = json.loads(json.dumps(good))
    forged["payload"] = base64.b64encode(b'{"v":1}').decode()
    before = ledger.size()
    response = post(client, {"envelopes": [good, 5, "a string", forged, good, ship.to_json(),
                                           commission(["B003"], actor="berlin-shop").to_json()]},
                    path="/api/v1/events/batch")
    assert response.status_code == 200
    results = openapi.check(response, "/events/batch", "post")["results"]
    assert len(results) == 7
    assert results[0]["leaf_index"] == before
    assert results[1]["error"]["code"] == "invalid_statement"
    assert results[2]["error"]["code"] == "invalid_statement"
    assert results[3]["error"]["code"] == "invalid_statement"
    assert results[4] == results[0]  # the same envelope twice: the same ids
    assert results[5]["leaf_index"] == before + 1
    assert results[6]["error"]["code"] == "unauthorized_signer"
    assert ledger.size() == before + 2
    again = post(client, {"envelopes": [good]}, path="/api/v1/events/batch").get_json()["results"]
    assert again == [results[0]]


def test_batch_of_1000_is_accepted_and_1001_is_refused(client, openapi):
    response = post(client, {"envelopes": [{}] * 1000}, path="/api/v1/events/batch")
    assert response.status_code == 200
    assert len(openapi.check(response, "/events/batch", "post")["results"]) == 1000
    response = post(client, {"envelopes": [{}] * 1001}, path="/api/v1/events/batch")
    assert_error(response, 400, "batch_too_large")
    openapi.check(response, "/events/batch", "post")


@pytest.mark.parametrize("body", [[], {}, {"envelopes": {}}, {"envelopes": "x"}, {"envelope": []},
                                  {"envelopes": [], "more": 1}, 7, None])
def test_batch_malformed_body_is_400(client, body):
    assert_error(post(client, body, path="/api/v1/events/batch"), 400)


def test_batch_bad_json_and_media_type(client):
    assert_error(post(client, b"{", path="/api/v1/events/batch"), 400, "invalid_json")
    assert_error(post(client, b"{}", path="/api/v1/events/batch", content_type="text/plain"), 415)


# --- GET /events/{id} ---------------------------------------------------------------------------------

def test_get_event_returns_envelope_and_statement(client, openapi):
    env = commission(["EV1"])
    ids = post(client, env.to_json()).get_json()
    response = client.get(f"/api/v1/events/{ids['event_id']}")
    body = openapi.check(response, "/events/{event_id}")
    assert body["event_id"] == ids["event_id"] == env.event_id
    assert body["leaf_index"] == ids["leaf_index"]
    assert body["envelope"] == env.to_json()
    assert body["statement"] == json.loads(env.payload)


def test_get_event_errors(client, openapi):
    response = client.get("/api/v1/events/sha256:" + "0" * 64)
    assert_error(response, 404, "event_not_found")
    openapi.check(response, "/events/{event_id}")
    for bad in ("nope", "sha256:XYZ", "sha256:" + "A" * 64, "sha256:" + "0" * 63):
        response = client.get(f"/api/v1/events/{bad}")
        assert_error(response, 400, "invalid_event_id")
    openapi.check(response, "/events/{event_id}")


# --- GET /items/{gtin}/{serial}[/head] -------------------------------------------------------------

@pytest.mark.parametrize("name", ["genuine-cross-border", "genuine-pallet", "held-by-customs", "custody-gap",
                                  "in-transit"])
def test_get_item_verdicts(client, world, name, openapi):
    gtin, serial = item_path(world.items[name])
    response = client.get(f"/api/v1/items/{gtin}/{quote(serial, safe='')}")
    answer = openapi.check(response, "/items/{gtin}/{serial}")
    assert answer["item"] == world.items[name]
    assert answer["verdict"] == world.verdicts[name]
    assert {r["code"] for r in answer["reasons"]} == set(world.codes[name])
    assert answer["path"][0]["type"] == "commission"
    assert answer["checkpoint"].startswith("waybill.test/ledger\n")


def test_get_unknown_item_is_200_likely_counterfeit(client, openapi):
    response = client.get(f"/api/v1/items/{GTIN}/NEVERMADE")
    answer = openapi.check(response, "/items/{gtin}/{serial}")
    assert response.status_code == 200
    assert answer["verdict"] == "likely_counterfeit"
    assert [r["code"] for r in answer["reasons"]] == ["unknown_item"]
    assert answer["path"] == [] and answer["product"] is None


def test_get_item_normalises_short_gtins(client):
    response = client.get("/api/v1/items/9506000134352/NEVERMADE")
    assert response.status_code == 200
    assert response.get_json()["item"] == f"01/{GTIN}/21/NEVERMADE"


@pytest.mark.parametrize("path", [
    "/api/v1/items/09506000134353/X",          # wrong check digit
    "/api/v1/items/0950600013435/X",           # 13 digits, wrong check digit
    "/api/v1/items/12345/X",                   # wrong length
    "/api/v1/items/abcdefghijklmn/X",          # not digits
    "/api/v1/items/%EF%BC%91%EF%BC%92/X",      # fullwidth digits
    f"/api/v1/items/{GTIN}/" + "A" * 21,       # serial too long
    f"/api/v1/items/{GTIN}/bad%20serial",      # space is not in GS1 AI-82
    f"/api/v1/items/{GTIN}/caf%C3%A9",         # non-ASCII
    f"/api/v1/items/{GTIN}/%FF",               # invalid UTF-8
    f"/api/v1/items/{GTIN}/A%7EB",             # '~' is not in AI-82
])
def test_get_item_malformed_identifiers_are_400(client, path, openapi):
    response = client.get(path)
    assert_error(response, 400, "invalid_identifier")
    openapi.check(response, "/items/{gtin}/{serial}")
    assert_error(client.get(path + "/head"), 400, "invalid_identifier")


def test_get_item_head(client, world, openapi):
    gtin, serial = item_path(world.items["genuine-cross-border"])
    answer = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    response = client.get(f"/api/v1/items/{gtin}/{serial}/head")
    assert openapi.check(response, "/items/{gtin}/{serial}/head") == {"event_id": answer["path"][-1]["event_id"]}


def test_get_item_head_follows_the_container(client, world):
    gtin, serial = item_path(world.items["genuine-pallet"])
    answer = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    head = client.get(f"/api/v1/items/{gtin}/{serial}/head").get_json()["event_id"]
    assert head == answer["path"][-1]["event_id"]


def test_get_unknown_item_head_is_404(client, openapi):
    response = client.get(f"/api/v1/items/{GTIN}/NEVERMADE/head")
    assert_error(response, 404, "unknown_item")
    openapi.check(response, "/items/{gtin}/{serial}/head")


@pytest.mark.parametrize("serial", ["A/B", "X/head", "a%b&c?d", "!\"%&'()*+,-./:;<=>?_", "head"])
def test_serials_with_url_special_characters(client, serial):
    ids = post(client, commission([serial]).to_json())
    assert ids.status_code == 201, ids.get_json()
    encoded = quote(serial, safe="")
    answer = client.get(f"/api/v1/items/{GTIN}/{encoded}").get_json()
    assert answer["serial"] == serial and answer["verdict"] == "genuine"
    head = client.get(f"/api/v1/items/{GTIN}/{encoded}/head").get_json()
    assert head == {"event_id": ids.get_json()["event_id"]}


def test_a_raw_slash_separates_segments_and_only_2f_is_part_of_the_serial(client):
    # Was: /items/{gtin}/A/B read as the serial "A/B". A raw '/' is a path separator, so "A/B" and the item
    # "A" with a stray segment were the same URL; only %2F says the '/' belongs to the serial.
    event_id = post(client, commission(["A/B"]).to_json()).get_json()["event_id"]
    assert client.get(f"/api/v1/items/{GTIN}/A%2FB").get_json()["serial"] == "A/B"
    assert client.get(f"/api/v1/items/{GTIN}/A%2FB/head").get_json() == {"event_id": event_id}
    for path in (f"/api/v1/items/{GTIN}/A/B", f"/api/v1/items/{GTIN}/A/B/head"):
        response = client.get(path)
        assert_error(response, 400, "invalid_identifier")
        assert "%2F" in response.get_json()["error"]["message"]
    # "X/head" with a raw slash is the head of item "X", never the item "X/head".
    assert_error(client.get(f"/api/v1/items/{GTIN}/X/head"), 404, "unknown_item")


# --- parties -------------------------------------------------------------------------------------------

def test_get_parties_public_data_only(client, openapi):
    response = client.get("/api/v1/parties")
    parties = openapi.check(response, "/parties")["parties"]
    ids = [p["id"] for p in parties]
    assert ids == sorted(ids) and {"admin", "acme-cn", "berlin-shop", "de-customs"} <= set(ids)
    text = response.get_data(as_text=True)
    assert "private" not in text and "seed" not in text
    acme = next(p for p in parties if p["id"] == "acme-cn")
    assert acme["roles"] == ["manufacturer"] and acme["gs1_prefixes"] == ["950600"]
    assert len(acme["keys"]) == 2 and all(len(base64.b64decode(k["public_key"])) == 32 for k in acme["keys"])


def test_get_party(client, openapi):
    response = client.get("/api/v1/parties/de-customs")
    party = openapi.check(response, "/parties/{party_id}")
    assert party["id"] == "de-customs" and party["country"] == "DE" and party["roles"] == ["customs"]


def test_get_party_errors(client, openapi):
    response = client.get("/api/v1/parties/nobody-here")
    assert_error(response, 404, "party_not_found")
    openapi.check(response, "/parties/{party_id}")
    for bad in ("Acme", "a", "-acme", "acme_cn", "x" * 64):
        response = client.get(f"/api/v1/parties/{bad}")
        assert_error(response, 400, "invalid_party_id")
    openapi.check(response, "/parties/{party_id}")


# --- checkpoint, verifier key, proofs ------------------------------------------------------------------

def test_checkpoint_and_verifier_key(client, ledger, openapi):
    response = client.get("/api/v1/checkpoint")
    assert response.mimetype == "text/plain"
    note = openapi.check(response, "/checkpoint")
    cp = ledger.verified_checkpoint(note)
    assert cp.size == ledger.size()
    key = client.get("/api/v1/log/verifier-key")
    assert key.mimetype == "text/plain"
    assert openapi.check(key, "/log/verifier-key") == ledger.vkey
    from tracker.checkpoint import parse_vkey, verify_checkpoint

    assert verify_checkpoint(note, parse_vkey(key.get_data(as_text=True))).size == cp.size


def test_inclusion_proof_verifies_against_the_checkpoint(client, ledger, world, openapi):
    gtin, serial = item_path(world.items["genuine-cross-border"])
    answer = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    cp = ledger.verified_checkpoint(answer["checkpoint"])
    for step in answer["path"]:
        event = client.get(f"/api/v1/events/{step['event_id']}").get_json()
        response = client.get(f"/api/v1/proof/inclusion?event_id={step['event_id']}&tree_size={cp.size}")
        proof = openapi.check(response, "/proof/inclusion")
        assert proof["leaf_index"] == event["leaf_index"] and proof["tree_size"] == cp.size
        merkle.verify_inclusion(merkle.leaf_hash(leaf_data(event["envelope"])), proof["leaf_index"], cp.size,
                                [base64.b64decode(h) for h in proof["hashes"]], cp.root_hash)
    latest = client.get(f"/api/v1/proof/inclusion?event_id={answer['path'][0]['event_id']}").get_json()
    assert latest["tree_size"] == ledger.size()


def test_inclusion_proof_errors(client, ledger, world, openapi):
    gtin, serial = item_path(world.items["in-transit"])
    last = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()["path"][-1]
    index = client.get(f"/api/v1/events/{last['event_id']}").get_json()["leaf_index"]
    cases = [
        ("", 400, "missing_parameter"),
        ("?tree_size=3", 400, "missing_parameter"),
        ("?event_id=nope", 400, "invalid_event_id"),
        (f"?event_id=sha256:{'0' * 64}", 404, "event_not_found"),
        (f"?event_id={last['event_id']}&tree_size=abc", 400, "invalid_tree_size"),
        (f"?event_id={last['event_id']}&tree_size=-1", 400, "invalid_tree_size"),
        (f"?event_id={last['event_id']}&tree_size=0", 400, "invalid_tree_size"),
        (f"?event_id={last['event_id']}&tree_size={ledger.size() + 1}", 400, "invalid_tree_size"),
        (f"?event_id={last['event_id']}&tree_size=99999999999999999999999", 400, "invalid_tree_size"),
        (f"?event_id={last['event_id']}&tree_size={index}", 400, "not_in_tree"),
    ]
    for query, status, code in cases:
        response = client.get("/api/v1/proof/inclusion" + query)
        assert_error(response, status, code)
        openapi.check(response, "/proof/inclusion")


def test_consistency_proof_verifies_between_checkpoints(client, ledger, openapi):
    old = ledger.verified_checkpoint(client.get("/api/v1/checkpoint").get_data(as_text=True))
    post(client, commission(["CON1"]).to_json())
    post(client, commission(["CON2"]).to_json())
    new = ledger.verified_checkpoint(client.get("/api/v1/checkpoint").get_data(as_text=True))
    response = client.get(f"/api/v1/proof/consistency?first={old.size}&second={new.size}")
    proof = openapi.check(response, "/proof/consistency")
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash,
                              [base64.b64decode(h) for h in proof["hashes"]])
    same = client.get(f"/api/v1/proof/consistency?first={new.size}&second={new.size}")
    assert openapi.check(same, "/proof/consistency") == {"hashes": []}


def test_consistency_proof_errors(client, ledger, openapi):
    size = ledger.size()
    for query, code in [("", "missing_parameter"), ("?first=1", "missing_parameter"),
                        ("?first=x&second=2", "invalid_tree_size"), ("?first=1&second=1.5", "invalid_tree_size"),
                        ("?first=3&second=2", "invalid_tree_size"), (f"?first=0&second={size}", "invalid_tree_size"),
                        (f"?first=1&second={size + 1}", "invalid_tree_size")]:
        response = client.get("/api/v1/proof/consistency" + query)
        assert_error(response, 400, code)
        openapi.check(response, "/proof/consistency")


# --- bad input never makes a 500 or an HTML page -----------------------------------------------------------

GARBAGE = [b"", b"\x00", b"\xff" * 10, b"{" * 10_000, b'{"envelopes": ' + b"[" * 10_000, b"[{}]" * 3,
           b'{"envelopes": [[[[[[[[[[]]]]]]]]]]}', b'{"envelopes": [{"payload": {"x": [1, 2, {"y": null}]}}]}',
           "\u2603 snow".encode(), b'{"\xed\xa0\x80": 1}', b'"\\ud800"', b"1e999999", b"-" * 100]


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events/batch"])
@pytest.mark.parametrize("body", GARBAGE, ids=short)
def test_garbage_bodies_are_json_4xx(client, path, body):
    response = post(client, body, path=path)
    if response.status_code == 200:  # a well-formed batch of bad envelopes: an error per item
        assert path.endswith("/batch")
        assert all(set(r) == {"error"} for r in response.get_json()["results"])
        return
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


def test_openapi_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented >= {("POST", "/events"), ("POST", "/events/batch"), ("GET", "/events/{event_id}"),
                          ("GET", "/items/{gtin}/{serial}"), ("GET", "/items/{gtin}/{serial}/head"),
                          ("GET", "/parties"), ("GET", "/parties/{party_id}"), ("GET", "/checkpoint"),
                          ("GET", "/proof/inclusion"), ("GET", "/proof/consistency"), ("GET", "/log/verifier-key")}
    for name in ("Envelope", "Provenance", "Error", "InclusionProof", "ConsistencyProof"):
        assert name in doc["components"]["schemas"]


def test_openapi_schemas_reject_wrong_shapes(openapi):
    """The checker is not vacuous: a wrong answer fails it."""
    class Fake:
        status_code = 200
        mimetype = "application/json"

        def __init__(self, body):
            self.body = body

        def get_json(self):
            return self.body

    with pytest.raises(AssertionError):
        openapi.check(Fake({"event_id": "sha256:x", "leaf_index": 1}), "/items/{gtin}/{serial}/head")
    with pytest.raises(AssertionError):
        openapi.check(Fake({"hashes": [], "extra": 1}), "/proof/consistency")
