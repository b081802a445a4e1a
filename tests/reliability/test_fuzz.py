"""Fuzzing (issue): the API from its own OpenAPI document (schemathesis, positive and negative cases, in
process against the WSGI app), the statement and envelope parsers (hypothesis), signed-but-malformed statements
through ``POST /events``, and the consumer pages' URLs. Nothing may answer 5xx or show a stack trace; every API
rejection is a 4xx ``{"error": {"code", "message"}}``; whatever the fuzzers got admitted must leave a ledger that
`tracker verify` accepts and lookups that answer.

Example counts are bounded for CI (about a minute on two cores); WAYBILL_SOAK=1 multiplies them by 22.
"""
from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import GTIN, SOAK, device_key, verify_cli
from tests.reliability.hostile import (HostileWorld, assert_api_error, assert_escaped, assert_no_server_error,
                                       world_on)
from tracker.dsse import PAYLOAD_TYPE, pae, parse_envelope
from tracker.errors import InvalidStatement, TrackerError
from tracker.identifiers import parse_key
from tracker.statements import EVENT_ID, PARTY_ID, ROLES, TYPES, parse_statement, statement_bytes

SCALE = 22 if SOAK else 1  # the soak: over 100,000 cases in all
_FUZZ = settings(deadline=None, database=None, derandomize=False, print_blob=True,
                 suppress_health_check=list(HealthCheck))


def fuzz_settings(examples: int) -> settings:
    return settings(_FUZZ, max_examples=examples)
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory) -> Iterator[HostileWorld]:
    yield from world_on(request.param, tmp_path_factory.mktemp("fuzz") / "home")


# --- schemathesis: the API from its OpenAPI document ----------------------------------------------------

def test_api_fuzzed_from_its_openapi_document(world, figures):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import checks
    from schemathesis.generation.modes import GenerationMode

    selected = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                checks.response_schema_conformance, checks.response_headers_conformance,
                checks.negative_data_rejection]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", world.app)
    per_op = (60 if world.backend == "sqlite" else 25) * SCALE
    tried: Counter = Counter()
    statuses: Counter = Counter()
    operations = 0
    document = world.client().get("/api/v1/openapi.json").get_json()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        spec = document["paths"][operation.path][operation.method.lower()]
        # Negative cases need something to get wrong: a parameter or a body.
        modes = [GenerationMode.POSITIVE]
        if spec.get("parameters") or spec.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @fuzz_settings(per_op)
            def fuzz(case) -> None:
                tried[mode.value] += 1
                response = case.call()
                statuses[response.status_code] += 1
                what = f"{operation.label} ({mode.value}): {response.status_code}"
                if response.status_code >= 400:
                    assert_api_error(response, what)
                else:
                    assert_no_server_error(response, what)
                case.validate_response(response, checks=selected)

            fuzz()
    assert operations >= 11  # every documented operation of SPEC §4
    assert not [s for s in statuses if s >= 500]
    COUNTS["schemathesis"] += sum(tried.values())
    figures.update(backend=world.backend, operations=operations, cases=sum(tried.values()),
                   positive=tried["positive"], negative=tried["negative"],
                   statuses={str(k): v for k, v in sorted(statuses.items())}, server_errors=0)


# --- hypothesis: the statement parser ---------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=6)
AI82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
SERIAL = st.text(st.sampled_from(AI82), min_size=1, max_size=20)
SERIAL_ANY = st.one_of(SERIAL, TEXT, st.text(st.sampled_from(AI82 + " #$@~é\x00\n"), max_size=24))
GTINS = st.sampled_from([GTIN, "9506000134352", "95060001343520", "00000000000000", "12345678", "abc"])
ITEM = st.one_of(st.builds(lambda g, s: f"01/{g}/21/{s}", GTINS, SERIAL_ANY),
                 st.builds(lambda s: f"00/{s}", st.sampled_from(["009506000134352008", "009506000134352009", "1"])),
                 TEXT)
EVENT = st.one_of(st.just("sha256:" + "ab" * 32), st.text(st.sampled_from("0123456789abcdefABCDEF:sha"),
                                                                max_size=72))
TIME = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "Z"),
    st.just((datetime.now(timezone.utc) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")),
    TEXT)
PARTY = st.one_of(st.sampled_from(["acme", "rival", "evil-co", "de-customs", "admin", "nobody", "A", "-x"]), TEXT)


def maybe(valid, junk_weight: bool = True):
    """Mostly a valid value, sometimes anything at all."""
    return st.one_of(valid, valid, valid, JUNK) if junk_weight else valid


STATEMENT = st.fixed_dictionaries(
    {"v": maybe(st.just(1)), "type": maybe(st.sampled_from(TYPES)), "actor": maybe(PARTY), "time": maybe(TIME),
     "location": maybe(st.fixed_dictionaries({"name": maybe(TEXT), "country": maybe(st.sampled_from(["CN", "DE", "cn", "ZZZ"]))},
                                             optional={"gln": maybe(st.text("0123456789", max_size=14))}))},
    optional={
        "prev": maybe(st.dictionaries(ITEM, EVENT, max_size=2)),
        "items": maybe(st.lists(ITEM, min_size=0, max_size=3)),
        "product": maybe(st.fixed_dictionaries({"gtin": maybe(GTINS), "name": maybe(TEXT)},
                                               optional={"lot": maybe(TEXT), "expiry": maybe(TEXT)})),
        "to": maybe(PARTY), "from": maybe(PARTY), "ship": maybe(EVENT), "container": maybe(ITEM),
        "decision": maybe(st.sampled_from(["released", "held", "seized", "lost"])), "note": maybe(TEXT),
        "party": maybe(st.fixed_dictionaries(
            {"id": maybe(PARTY), "name": maybe(TEXT), "country": maybe(st.sampled_from(["CN", "x"])),
             "roles": maybe(st.lists(st.sampled_from(ROLES + ("king",)), max_size=3)),
             "keys": maybe(st.lists(st.fixed_dictionaries(
                 {"public_key": maybe(st.sampled_from([device_key("x").public_key_b64, "AAAA", ""])),
                  "not_before": maybe(TIME)}, optional={"revoked_at": maybe(TIME)}), max_size=2))},
            optional={"gs1_prefixes": maybe(st.lists(st.text("0123456789", max_size=13), max_size=2))})),
        "extra": JUNK,
    })


def check_parsed(payload: bytes) -> None:
    """parse_statement either refuses with InvalidStatement, or returns a statement that meets SPEC §2."""
    try:
        st_ = parse_statement(payload)
    except InvalidStatement as exc:
        assert exc.code == "invalid_statement" and exc.message
        return
    assert st_.type in TYPES and PARTY_ID.match(st_.actor)
    for key in st_.keys_touched:
        assert str(parse_key(key)) == key
    for key, prev in st_.prev.items():
        assert key in st_.keys_touched and EVENT_ID.match(prev)
    assert parse_statement(statement_bytes(st_.raw)) == st_  # what it accepted, it accepts again


@given(doc=STATEMENT)
@fuzz_settings(600 * SCALE)
def test_statement_parser_refuses_with_a_code_or_accepts_only_valid_statements(doc):
    COUNTS["statement documents"] += 1
    check_parsed(statement_bytes(doc))
    check_parsed(json.dumps(doc, ensure_ascii=True).encode())  # unicode escapes, NaN and all


@given(payload=st.binary(max_size=300))
@fuzz_settings(300 * SCALE)
def test_statement_parser_on_arbitrary_bytes(payload):
    COUNTS["statement bytes"] += 1
    check_parsed(payload)


@given(doc=st.one_of(JUNK, st.fixed_dictionaries(
    {"payloadType": maybe(st.just(PAYLOAD_TYPE)), "payload": maybe(st.one_of(TEXT, st.binary(max_size=40).map(
        lambda b: base64.b64encode(b).decode()))),
     "signatures": maybe(st.lists(st.fixed_dictionaries({"keyid": maybe(st.text("0123456789abcdef", max_size=17)),
                                                         "sig": maybe(st.binary(max_size=70).map(
                                                             lambda b: base64.b64encode(b).decode()))}),
                                  max_size=9))})))
@fuzz_settings(400 * SCALE)
def test_envelope_parser_refuses_with_a_code(doc):
    COUNTS["envelopes"] += 1
    for form in (doc, json.dumps(doc)):
        try:
            env = parse_envelope(form)
        except TrackerError as exc:
            assert exc.code == "invalid_statement" and exc.message
            continue
        assert env.payload and 1 <= len(env.signatures) <= 8


# --- signed, fuzzed statements through the API -----------------------------------------------------------

PRINTABLE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40).filter(
    str.strip)
SIGNERS = {"acme": "manufacturer", "evil-co": "warehouse", "de-customs": "customs", "rival": "manufacturer"}


@st.composite
def admissible_statements(draw, world: HostileWorld) -> tuple[dict, str]:
    """(statement, signer): a statement of a random type that is valid in shape most of the time, signed by its
    actor most of the time, then — half of the time — one field broken, dropped or added."""
    stype = draw(st.sampled_from(TYPES))
    actor = draw(st.sampled_from(list(SIGNERS) + ["admin"]))
    recent = (datetime.now(timezone.utc) - timedelta(minutes=draw(st.integers(0, 50)))).strftime("%Y-%m-%dT%H:%M:%SZ")
    known_items = list(world.items.values())
    new_item = st.builds(lambda s: f"01/{GTIN}/21/{s}", SERIAL)
    items = draw(st.lists(st.one_of(st.sampled_from(known_items), new_item), min_size=1, max_size=3, unique=True))
    events = list(world.events.values())
    doc: dict = {"v": 1, "type": stype, "actor": actor, "time": draw(st.one_of(st.just(recent), st.just(recent), TIME)),
                 "location": {"name": draw(PRINTABLE), "country": draw(st.sampled_from(["CN", "DE", "HK"]))}}
    if stype == "commission":
        doc.update(items=[draw(new_item)], product={"gtin": GTIN, "name": draw(PRINTABLE)})
    elif stype == "party":
        doc["party"] = {"id": draw(st.sampled_from(["fuzz-co", "acme", "rival"])), "name": draw(PRINTABLE),
                        "country": "CN", "roles": draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=2,
                                                                unique=True)),
                        "keys": [{"public_key": device_key(draw(st.sampled_from(["fuzz-co", "acme"]))).public_key_b64,
                                  "not_before": recent}]}
    else:
        doc["items"] = items
        doc["prev"] = {k: draw(st.sampled_from(events)) for k in items if draw(st.booleans())}
        if stype in ("aggregate", "disaggregate"):
            doc["container"] = draw(st.sampled_from(["00/009506000134352008", "00/009506000134352015"]))
        elif stype == "ship":
            doc["to"] = draw(st.sampled_from([p for p in SIGNERS if p != actor]))
        elif stype == "receive":
            doc.update({"from": draw(st.sampled_from(list(SIGNERS))), "ship": draw(st.sampled_from(events))})
        elif stype == "inspect":
            doc["decision"] = draw(st.sampled_from(["released", "held", "seized"]))
            if draw(st.booleans()):
                doc["note"] = draw(PRINTABLE)
    mutation = draw(st.sampled_from(["none", "none", "break", "drop", "add"]))
    if mutation == "break":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(JUNK)
    elif mutation == "drop":
        del doc[draw(st.sampled_from(sorted(doc)))]
    elif mutation == "add":
        doc[draw(st.sampled_from(["extra", "prev", "note", "to", "items", "container"]))] = draw(JUNK)
    signer = actor if actor in SIGNERS and draw(st.integers(0, 4)) else draw(st.sampled_from(list(SIGNERS)))
    return doc, signer


def test_signed_fuzzed_statements_through_the_api(world, figures):
    client = world.client()
    statuses: Counter = Counter()
    codes: Counter = Counter()
    admitted: list[dict] = []

    recent = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    valid = {"v": 1, "type": "commission", "actor": "acme", "time": recent, "location": {"name": "P", "country": "CN"},
             "items": [f"01/{GTIN}/21/FUZZ-SEED-{world.backend}"], "product": {"gtin": GTIN, "name": "Seed"}}

    @given(case=admissible_statements(world))
    @example(case=(valid, "acme"))  # each gate is reached at least once, whatever the draw
    @example(case=({**valid, "v": 2}, "acme"))
    @example(case=(valid, "rival"))
    @fuzz_settings((400 if world.backend == "sqlite" else 150) * SCALE)
    def post(case):
        doc, signer = case
        payload = statement_bytes(doc)
        key = device_key(signer)
        env = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
               "signatures": [{"keyid": key.keyid,
                               "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode()}]}
        response = client.post("/api/v1/events", json=env)
        statuses[response.status_code] += 1
        assert response.status_code in (200, 201, 400, 422), response.get_data(as_text=True)[:300]
        if response.status_code >= 400:
            codes[assert_api_error(response, f"fuzzed statement {doc!r:.200}")["code"]] += 1
        else:
            admitted.append(doc)

    post()
    assert statuses[201] > 0 and statuses[400] > 0 and statuses[422] > 0, statuses  # the fuzzer reached every gate
    # Whatever got in is well formed: the audit holds, and its items' pages and answers work.
    code, output = verify_cli(world.inst)
    assert code == 0, output
    touched = {k for doc in admitted for k in (doc.get("items") or []) if isinstance(k, str) and k.startswith("01/")}
    for key in sorted(touched)[:60]:
        _, gtin, _, serial = key.split("/", 3)
        assert client.get(f"/api/v1/items/{gtin}/{quote(serial, safe='')}").status_code == 200, key
        page = client.get(f"/01/{gtin}/21/{quote(serial, safe='')}")
        assert_escaped(assert_no_server_error(page, key), key)
        assert page.status_code == 200, key
    COUNTS["signed statements"] += sum(statuses.values())
    figures.update(backend=world.backend, cases=sum(statuses.values()),
                   statuses={str(k): v for k, v in sorted(statuses.items())}, refusal_codes=dict(codes),
                   admitted=len(admitted), items_checked=min(len(touched), 60))


# --- the consumer pages' URLs ------------------------------------------------------------------------------

URL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


def test_consumer_urls_fuzzed(world, figures):
    client = world.client()
    statuses: Counter = Counter()

    @given(gtin=st.one_of(GTINS, URL_TEXT), serial=st.one_of(SERIAL, URL_TEXT), code=URL_TEXT,
           accept=st.sampled_from(["text/html", "application/json", "*/*", "image/png", ""]))
    @fuzz_settings((300 if world.backend == "sqlite" else 100) * SCALE)
    def visit(gtin, serial, code, accept):
        headers = {"Accept": accept} if accept else {}
        for path in (f"/01/{quote(gtin, safe='')}/21/{quote(serial, safe='')}",
                     f"/search?code={quote(code, safe='')}",
                     f"/x/{quote(code, safe='')}/01/{quote(gtin, safe='')}/21/{quote(serial, safe='')}",
                     f"/01/{quote(gtin, safe='')}/10/{quote(code, safe='')}/21/{quote(serial, safe='')}"):
            response = client.get(path, headers=headers)
            statuses[response.status_code] += 1
            body = assert_no_server_error(response, path)
            if response.mimetype == "text/html":
                assert_escaped(body, path)
            elif response.status_code >= 400:
                assert_api_error(response, path)

    visit()
    COUNTS["consumer urls"] += sum(statuses.values())
    figures.update(backend=world.backend, cases=sum(statuses.values()),
                   statuses={str(k): v for k, v in sorted(statuses.items())})


def test_fuzz_totals(figures):
    """Not a check: puts the number of fuzz cases tried in this module on the record."""
    figures.update(**{k.replace(" ", "_"): v for k, v in COUNTS.items()}, total=sum(COUNTS.values()))
