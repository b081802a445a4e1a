"""SPEC §2 statements: one valid example of every type, and one test per validation rule of
``parse_statement`` (each names the field it blames and says which rule broke)."""
from __future__ import annotations

import base64
import copy
import json
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from tests.conftest import fixed_key
from tracker.errors import InvalidStatement
from tracker.signing import new_statement, party_statement, sign_statement
from tracker.statements import (
    PartyRecord,
    Statement,
    format_time,
    parse_statement,
    parse_time,
    statement_bytes,
)

GTIN = "09506000134352"
ITEM = f"01/{GTIN}/21/ABC123"
ITEM2 = f"01/{GTIN}/21/ABC124"
OTHER_GTIN_ITEM = "01/04006381333931/21/X1"
SSCC = "106141411234567897"
CONTAINER = f"00/{SSCC}"
EID = "sha256:" + "ab" * 32
EID2 = "sha256:" + "cd" * 32
LOC = {"name": "Plant 1", "country": "DE"}
TIME = "2026-03-02T08:00:00Z"
PUB = base64.b64encode(fixed_key("acme").public_key).decode()
PUB2 = base64.b64encode(fixed_key("acme-2").public_key).decode()


def common(stype: str, actor: str = "acme") -> dict[str, Any]:
    return {"v": 1, "type": stype, "actor": actor, "time": TIME, "location": dict(LOC)}


VALID: dict[str, dict[str, Any]] = {
    "party": {**common("party", "admin"),
              "party": {"id": "acme", "name": "ACME GmbH", "country": "DE", "roles": ["manufacturer", "exporter"],
                        "keys": [{"public_key": PUB, "not_before": TIME}], "gs1_prefixes": ["950600"]}},
    "commission": {**common("commission"), "items": [ITEM, ITEM2],
                   "product": {"gtin": GTIN, "name": "Widget", "lot": "L1", "expiry": "2027-01-31"}},
    "aggregate": {**common("aggregate"), "container": CONTAINER, "items": [ITEM, ITEM2],
                  "prev": {ITEM: EID, ITEM2: EID2}},
    "disaggregate": {**common("disaggregate"), "container": CONTAINER, "items": [ITEM],
                     "prev": {CONTAINER: EID, ITEM: EID2}},
    "ship": {**common("ship"), "items": [CONTAINER, ITEM2], "to": "hk-courier", "prev": {CONTAINER: EID}},
    "receive": {**common("receive", "hk-courier"), "items": [CONTAINER], "from": "acme", "ship": EID,
                "prev": {CONTAINER: EID}},
    "inspect": {**common("inspect", "hk-customs"), "items": [ITEM], "decision": "released",
                "note": "documents in order", "prev": {ITEM: EID}},
    "sell": {**common("sell", "shop-1"), "items": [ITEM], "prev": {ITEM: EID}},
}


def payload(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- valid examples ------------------------------------------------------------------------------

def test_valid_party() -> None:
    st = parse_statement(payload(VALID["party"]))
    assert st.type == "party" and st.actor == "admin"
    assert st.time == datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    assert st.location == LOC and st.prev == {}
    assert isinstance(st.party, PartyRecord)
    assert st.party.id == "acme" and st.party.roles == ("manufacturer", "exporter")
    assert st.party.gs1_prefixes == ("950600",)
    (key,) = st.party.keys
    assert key.public_key == fixed_key("acme").public_key and key.keyid == fixed_key("acme").keyid
    assert key.revoked_at is None and key.not_before == st.time
    assert st.keys_touched == ()


def test_valid_party_with_revoked_key() -> None:
    doc = copy.deepcopy(VALID["party"])
    doc["party"]["keys"] = [{"public_key": PUB, "not_before": TIME, "revoked_at": "2026-03-03T00:00:00.5Z"},
                            {"public_key": PUB2, "not_before": TIME}]
    doc["party"].pop("gs1_prefixes")
    st = parse_statement(payload(doc))
    assert st.party.keys[0].revoked_at == datetime(2026, 3, 3, 0, 0, 0, 500000, tzinfo=timezone.utc)
    assert st.party.keys[1].revoked_at is None
    assert st.party.gs1_prefixes == ()


def test_valid_commission() -> None:
    st = parse_statement(payload(VALID["commission"]))
    assert st.items == (ITEM, ITEM2)
    assert st.product == {"gtin": GTIN, "name": "Widget", "lot": "L1", "expiry": "2027-01-31"}
    assert st.prev == {}


def test_valid_commission_normalises_product_gtin() -> None:
    doc = copy.deepcopy(VALID["commission"])
    doc["product"] = {"gtin": "9506000134352", "name": "Widget"}
    st = parse_statement(payload(doc))
    assert st.product == {"gtin": GTIN, "name": "Widget"}


def test_valid_aggregate() -> None:
    st = parse_statement(payload(VALID["aggregate"]))
    assert st.container == CONTAINER and st.items == (ITEM, ITEM2)
    assert st.keys_touched == (CONTAINER, ITEM, ITEM2)
    assert st.prev == {ITEM: EID, ITEM2: EID2}


def test_valid_disaggregate() -> None:
    st = parse_statement(payload(VALID["disaggregate"]))
    assert st.type == "disaggregate" and st.container == CONTAINER and st.items == (ITEM,)
    assert st.prev == {CONTAINER: EID, ITEM: EID2}


def test_valid_ship() -> None:
    st = parse_statement(payload(VALID["ship"]))
    assert st.to == "hk-courier" and st.items == (CONTAINER, ITEM2)


def test_valid_receive() -> None:
    st = parse_statement(payload(VALID["receive"]))
    assert st.from_ == "acme" and st.ship == EID and st.items == (CONTAINER,)


@pytest.mark.parametrize("decision", ["released", "held", "seized"])
def test_valid_inspect(decision: str) -> None:
    doc = copy.deepcopy(VALID["inspect"])
    doc["decision"] = decision
    st = parse_statement(payload(doc))
    assert st.decision == decision and st.note == "documents in order"
    del doc["note"]
    assert parse_statement(payload(doc)).note is None


def test_valid_sell() -> None:
    st = parse_statement(payload(VALID["sell"]))
    assert st.type == "sell" and st.items == (ITEM,) and st.actor == "shop-1"


def test_valid_with_gln_and_fractional_time() -> None:
    doc = copy.deepcopy(VALID["sell"])
    doc["location"]["gln"] = "9506000134352"
    doc["time"] = "2026-03-02T08:00:00.123456789Z"
    st = parse_statement(payload(doc))
    assert st.location["gln"] == "9506000134352"
    assert st.time == datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=timezone.utc)
    assert st.time_str == "2026-03-02T08:00:00.123456789Z"


def test_raw_keeps_the_signed_document() -> None:
    st = parse_statement(payload(VALID["ship"]))
    assert st.raw == VALID["ship"]
    assert isinstance(st, Statement)


def test_signing_helpers_build_valid_statements() -> None:
    when = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    doc = party_statement(admin="admin", time=when, location=LOC, party_id="acme", name="ACME", country="DE",
                          roles=["manufacturer"], keys=[{"public_key": PUB, "not_before": TIME}],
                          gs1_prefixes=["950600"])
    env = sign_statement(doc, fixed_key("admin"))
    assert parse_statement(env.payload).party.gs1_prefixes == ("950600",)
    recv = new_statement("receive", actor="hk-courier", time=when, location=LOC, prev={ITEM: EID},
                         items=[ITEM], from_="acme", ship=EID)
    assert recv["from"] == "acme" and "from_" not in recv
    st = parse_statement(sign_statement(recv, fixed_key("courier")).payload)
    assert st.from_ == "acme"
    # a device never signs what the ledger would refuse as malformed
    with pytest.raises(InvalidStatement):
        sign_statement({**recv, "from": "Not A Party"}, fixed_key("courier"))


def test_statement_bytes_are_compact_sorted_utf8() -> None:
    doc = {"b": "é", "a": [1, 2]}
    assert statement_bytes(doc) == '{"a":[1,2],"b":"é"}'.encode()


def test_time_round_trip() -> None:
    t = datetime(2026, 3, 2, 8, 0, 0, 250000, tzinfo=timezone.utc)
    assert format_time(t) == "2026-03-02T08:00:00.25Z"
    assert parse_time(format_time(t)) == t
    assert format_time(t.replace(microsecond=0)) == "2026-03-02T08:00:00Z"


# --- one test per rule ---------------------------------------------------------------------------

def bad(stype: str, mutate: Callable[[dict[str, Any]], Any]) -> bytes:
    doc = copy.deepcopy(VALID[stype])
    mutate(doc)
    return payload(doc)


def assert_rejected(raw: bytes, field: str, words: str | tuple[str, ...]) -> InvalidStatement:
    with pytest.raises(InvalidStatement) as exc:
        parse_statement(raw)
    assert exc.value.field == field, exc.value.message
    for w in (words,) if isinstance(words, str) else words:
        assert w in exc.value.message, exc.value.message
    assert exc.value.code == "invalid_statement"
    return exc.value


def test_rule_payload_utf8() -> None:
    assert_rejected(b'{"v":1,"type":"sell","actor":"\xff"}', "payload", "UTF-8")


def test_rule_payload_json() -> None:
    assert_rejected(b'{"v":1,', "payload", "JSON")
    assert_rejected(b"NaN garbage", "payload", "JSON")


def test_rule_duplicate_json_key() -> None:
    raw = payload(VALID["sell"])[:-1] + b',"actor":"mallory"}'
    assert_rejected(raw, "actor", "duplicate")


def test_rule_statement_is_object() -> None:
    assert_rejected(b"[1,2]", "payload", "object")
    assert_rejected(b'"sell"', "payload", "object")


def test_rule_nesting_depth() -> None:
    deep: Any = 1
    for _ in range(10):
        deep = [deep]
    assert_rejected(bad("sell", lambda d: d.update(x=deep)), "payload", "nested")


def test_rule_version() -> None:
    for v in (2, 0, "1", True, 1.5, None):
        assert_rejected(bad("sell", lambda d: d.update(v=v)), "v", "v must be 1")
    assert_rejected(bad("sell", lambda d: d.pop("v")), "v", "v must be 1")


def test_rule_type() -> None:
    for t in ("SELL", "transfer", None, 1, ""):
        assert_rejected(bad("sell", lambda d: d.update(type=t)), "type", "type must be one of")


def test_rule_unknown_field() -> None:
    assert_rejected(bad("sell", lambda d: d.update(price=10)), "price", ("unknown field", "price"))
    # a field that belongs to another type is unknown here
    assert_rejected(bad("sell", lambda d: d.update(to="x-party")), "to", "unknown field")
    assert_rejected(bad("ship", lambda d: d.update(note="hi")), "note", "unknown field")


@pytest.mark.parametrize("stype, field", [
    ("sell", "actor"), ("sell", "time"), ("sell", "location"), ("sell", "items"),
    ("party", "party"), ("commission", "product"), ("aggregate", "container"), ("ship", "to"),
    ("receive", "from"), ("receive", "ship"), ("inspect", "decision"),
])
def test_rule_required_field(stype: str, field: str) -> None:
    assert_rejected(bad(stype, lambda d: d.pop(field)), field, ("required", stype))


def test_rule_actor_party_id() -> None:
    for actor in ("ACME", "a", "-acme", "acme_gmbh", "a" * 64, 7, ""):
        assert_rejected(bad("sell", lambda d: d.update(actor=actor)), "actor", "party id")


@pytest.mark.parametrize("when", [
    "2026-03-02T08:00:00", "2026-03-02T08:00:00+00:00", "2026-03-02 08:00:00Z", "2026-03-02T08:00Z",
    "2026-03-02t08:00:00z", "1772438400", "", "2026-03-02T08:00:00.Z", "2026-03-02T08:00:00.1234567890Z",
])
def test_rule_time_format(when: str) -> None:
    assert_rejected(bad("sell", lambda d: d.update(time=when)), "time", "RFC 3339")


@pytest.mark.parametrize("when", ["2026-02-30T08:00:00Z", "2026-13-01T00:00:00Z", "2026-03-02T24:00:00Z",
                                  "2026-03-02T08:61:00Z"])
def test_rule_time_is_real(when: str) -> None:
    assert_rejected(bad("sell", lambda d: d.update(time=when)), "time", "real date")


def test_rule_location_object() -> None:
    assert_rejected(bad("sell", lambda d: d.update(location="Berlin")), "location", "object")


def test_rule_location_unknown_field() -> None:
    assert_rejected(bad("sell", lambda d: d["location"].update(city="Berlin")), "location", ("unknown field", "city"))


def test_rule_location_name() -> None:
    for name in ("", "   ", "x" * 201, "tab\there", None):
        assert_rejected(bad("sell", lambda d: d["location"].update(name=name)), "location.name", "printable text")


def test_rule_location_country() -> None:
    for c in ("de", "DEU", "D", None, 49):
        assert_rejected(bad("sell", lambda d: d["location"].update(country=c)), "location.country", "ISO 3166")


def test_rule_location_gln() -> None:
    for gln in ("123456789012", "12345678901234", "950600013435X", 9506000134352):
        assert_rejected(bad("sell", lambda d: d["location"].update(gln=gln)), "location.gln", "13 digits")


# party ------------------------------------------------------------------------------------------

def test_rule_party_object() -> None:
    assert_rejected(bad("party", lambda d: d.update(party=["acme"])), "party", "object")


def test_rule_party_unknown_field() -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(email="x@y")), "party", ("unknown field", "email"))


def test_rule_party_id() -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(id="Acme")), "party.id", "party id")


def test_rule_party_name() -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(name="")), "party.name", "printable text")


def test_rule_party_country() -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(country="Germany")), "party.country", "ISO 3166")


@pytest.mark.parametrize("roles", [[], ["manufacturer", "manufacturer"], ["pirate"], "manufacturer", None])
def test_rule_party_roles(roles) -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(roles=roles)), "party.roles", "roles")


def test_rule_party_keys_count() -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(keys=[])), "party.keys", "1-64 keys")
    many = [{"public_key": base64.b64encode(fixed_key(f"k{i}").public_key).decode(), "not_before": TIME}
            for i in range(65)]
    assert_rejected(bad("party", lambda d: d["party"].update(keys=many)), "party.keys", "1-64 keys")


def test_rule_party_key_shape() -> None:
    assert_rejected(bad("party", lambda d: d["party"]["keys"][0].update(keyid="00")), "party.keys[0]",
                    "public_key, not_before")
    assert_rejected(bad("party", lambda d: d["party"].update(keys=[PUB])), "party.keys[0]", "public_key, not_before")


def test_rule_party_key_public_key() -> None:
    short = base64.b64encode(b"\x01" * 31).decode()
    for pk in (short, "!!!", None):
        assert_rejected(bad("party", lambda d: d["party"]["keys"][0].update(public_key=pk)), "party.keys[0]",
                        "32-byte Ed25519")


def test_rule_party_key_times() -> None:
    assert_rejected(bad("party", lambda d: d["party"]["keys"][0].update(not_before="yesterday")),
                    "party.keys[0].not_before", "RFC 3339")
    assert_rejected(bad("party", lambda d: d["party"]["keys"][0].pop("not_before")),
                    "party.keys[0].not_before", "RFC 3339")
    assert_rejected(bad("party", lambda d: d["party"]["keys"][0].update(revoked_at="2026-03-02")),
                    "party.keys[0].revoked_at", "RFC 3339")


def test_rule_party_keys_distinct() -> None:
    key = {"public_key": PUB, "not_before": TIME}
    assert_rejected(bad("party", lambda d: d["party"].update(keys=[key, dict(key)])), "party.keys", "twice")


@pytest.mark.parametrize("prefixes", [["123"], ["1234567890123"], ["95060a"], [950600], "950600"])
def test_rule_party_gs1_prefixes(prefixes) -> None:
    assert_rejected(bad("party", lambda d: d["party"].update(gs1_prefixes=prefixes)), "party.gs1_prefixes",
                    "company prefixes")


# items ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("items", [[], ITEM, None, {}])
def test_rule_items_non_empty_list(items) -> None:
    assert_rejected(bad("sell", lambda d: d.update(items=items)), "items", "non-empty list")


def test_rule_items_at_most_1000() -> None:
    items = [f"01/{GTIN}/21/S{i}" for i in range(1001)]
    assert_rejected(bad("ship", lambda d: d.update(items=items, prev={})), "items", "at most 1000")


@pytest.mark.parametrize("key, rule", [
    ("01/9506000134352/21/A", "not canonical"),
    (f"01/{GTIN}/21/a b", "AI-82"),
    (f"01/{GTIN}/21/" + "A" * 21, "1-20 characters"),
    ("01/09506000134353/21/A", "check digit"),
    ("ABC123", "neither"),
    (f"00/{SSCC[:-1]}0", "check digit"),
    (5, "key string"),
])
def test_rule_items_each_a_valid_key(key, rule: str) -> None:
    assert_rejected(bad("ship", lambda d: d.update(items=[ITEM, key], prev={})), "items[1]", ("items[1]", rule))


def test_rule_items_distinct() -> None:
    assert_rejected(bad("sell", lambda d: d.update(items=[ITEM, ITEM])), "items", "twice")


@pytest.mark.parametrize("stype", ["commission", "sell"])
def test_rule_items_only_item_keys(stype: str) -> None:
    def m(d):
        d["items"] = [ITEM, CONTAINER]
        d.pop("prev", None)
    assert_rejected(bad(stype, m), "items", "item key")


# commission -------------------------------------------------------------------------------------

@pytest.mark.parametrize("product", [
    "Widget", ["Widget"], {"gtin": GTIN, "name": "Widget", "colour": "red"},
])
def test_rule_product_shape(product) -> None:
    assert_rejected(bad("commission", lambda d: d.update(product=product)), "product", "gtin, name")


@pytest.mark.parametrize("gtin", ["09506000134353", "123", None, 9506000134352])
def test_rule_product_gtin(gtin) -> None:
    assert_rejected(bad("commission", lambda d: d["product"].update(gtin=gtin)), "product.gtin", "GTIN")


def test_rule_product_name() -> None:
    assert_rejected(bad("commission", lambda d: d["product"].pop("name")), "product.name", "printable text")


def test_rule_product_lot_and_expiry_length() -> None:
    assert_rejected(bad("commission", lambda d: d["product"].update(lot="L" * 41)), "product.lot", "1-40")
    assert_rejected(bad("commission", lambda d: d["product"].update(expiry="")), "product.expiry", "1-40")


def test_rule_commission_items_carry_product_gtin() -> None:
    assert_rejected(bad("commission", lambda d: d.update(items=[ITEM, OTHER_GTIN_ITEM])), "items",
                    ("does not carry", GTIN))


# aggregate / disaggregate -----------------------------------------------------------------------

@pytest.mark.parametrize("stype", ["aggregate", "disaggregate"])
def test_rule_container_valid_key(stype: str) -> None:
    assert_rejected(bad(stype, lambda d: d.update(container=f"00/{SSCC[:-1]}0", prev={})), "container", "SSCC")


@pytest.mark.parametrize("stype", ["aggregate", "disaggregate"])
def test_rule_container_is_a_container_key(stype: str) -> None:
    assert_rejected(bad(stype, lambda d: d.update(container=ITEM2, items=[ITEM], prev={})), "container",
                    "container key")


def test_rule_container_not_inside_itself() -> None:
    assert_rejected(bad("aggregate", lambda d: d.update(items=[ITEM, CONTAINER], prev={})), "items", "itself")


# ship / receive / inspect -----------------------------------------------------------------------

def test_rule_ship_to_party_id() -> None:
    assert_rejected(bad("ship", lambda d: d.update(to="HK Courier")), "to", "party id")


def test_rule_ship_to_someone_else() -> None:
    assert_rejected(bad("ship", lambda d: d.update(to="acme")), "to", "another party")


def test_rule_receive_from_party_id() -> None:
    assert_rejected(bad("receive", lambda d: d.update(**{"from": "ACME"})), "from", "party id")


@pytest.mark.parametrize("ship", ["ab" * 32, "sha256:" + "AB" * 32, "sha256:" + "ab" * 31, "sha1:" + "ab" * 20, 1])
def test_rule_receive_ship_event_id(ship) -> None:
    assert_rejected(bad("receive", lambda d: d.update(ship=ship)), "ship", "event id")


@pytest.mark.parametrize("decision", ["release", "RELEASED", "", None])
def test_rule_inspect_decision(decision) -> None:
    assert_rejected(bad("inspect", lambda d: d.update(decision=decision)), "decision", "decision must be one of")


def test_rule_inspect_note() -> None:
    assert_rejected(bad("inspect", lambda d: d.update(note="n" * 501)), "note", "1-500")
    assert_rejected(bad("inspect", lambda d: d.update(note="")), "note", "1-500")


# prev -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stype", ["party", "commission"])
def test_rule_no_prev_for_party_and_commission(stype: str) -> None:
    assert_rejected(bad(stype, lambda d: d.update(prev={ITEM: EID})), "prev", "has no prev")
    # an empty object is the same as no prev
    doc = copy.deepcopy(VALID[stype])
    doc["prev"] = {}
    assert parse_statement(payload(doc)).prev == {}


@pytest.mark.parametrize("stype", ["aggregate", "disaggregate", "ship", "receive", "inspect", "sell"])
def test_rule_prev_required_object(stype: str) -> None:
    assert_rejected(bad(stype, lambda d: d.pop("prev")), "prev", "prev must map")
    assert_rejected(bad(stype, lambda d: d.update(prev=[EID])), "prev", "prev must map")


def test_rule_prev_names_only_touched_keys() -> None:
    assert_rejected(bad("sell", lambda d: d["prev"].update({ITEM2: EID})), "prev", ("does not touch", ITEM2))


def test_rule_prev_values_are_event_ids() -> None:
    assert_rejected(bad("sell", lambda d: d["prev"].update({ITEM: "sha256:xyz"})), f"prev[{ITEM}]", "event id")
