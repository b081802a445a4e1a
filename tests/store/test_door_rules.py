"""The door rules of SPEC §7, each written as the attack it stops, with the honest statement beside it.

- A second ship by the same holder with ``"prev": {}`` claimed no previous event, so the fork it made was never
  seen: prev must name every unit a statement touches.
- A ship to an unregistered party was stored and shown as "On its way to no-such-party".
- Patterns ended in ``$``, which matches before a trailing newline: "TLF008812\\n" was a serial nobody could look up.
- Anyone could license anything, and a brand owner's prefix could be registered in a range GS1 never allocates.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.helpers import (NOW, T_EVENTS, commission, heads, item_key, key_of, location, party_envelope,
                                 receive, register_cast, ship, ship_envelope)
from tracker.dsse import sign_envelope
from tracker.errors import InvalidStatement, Rejected
from tracker.ledger import Ledger
from tracker.signing import new_statement, sign_statement
from tracker.statements import statement_bytes

SSCC = "00/009506000134352008"


@pytest.fixture
def cast(ledger: Ledger, admin_key) -> Ledger:
    register_cast(ledger, admin_key)
    return ledger


def raw(doc: dict, actor: str):
    """Signed without the device's own shape check: what a hostile client can post."""
    return sign_envelope(statement_bytes(doc), [key_of(actor)])


def refused(ledger: Ledger, envelope, error: type, code: str, field: str) -> None:
    before = ledger.size()
    with pytest.raises(error) as caught:
        ledger.append(envelope, now=NOW)
    assert (caught.value.code, caught.value.field) == (code, field), caught.value
    assert ledger.size() == before


# --- prev names every unit touched -------------------------------------------------------------------

def test_a_second_ship_with_empty_prev_is_refused_and_cannot_hide_a_fork(cast):
    item = item_key("FORK1")
    commission(cast, ["FORK1"])
    ship(cast, [item], "hk-export")  # the honest ship names the commission
    second = ship_envelope(key_of("acme"), "acme", [item], "hk-warehouse", time=T_EVENTS + timedelta(minutes=20),
                           prev={})
    refused(cast, second, InvalidStatement, "invalid_statement", f"prev[{item}]")
    with pytest.raises(InvalidStatement) as caught:
        cast.append(second, now=NOW)
    assert item in caught.value.message and "prev" in caught.value.message


def test_prev_must_name_every_item_not_only_some(cast):
    a, b = item_key("P1"), item_key("P2")
    commission(cast, ["P1", "P2"])
    partial = ship_envelope(key_of("acme"), "acme", [a, b], "hk-export", time=T_EVENTS + timedelta(minutes=5),
                            prev={a: heads(cast, [a])[a]})
    refused(cast, partial, InvalidStatement, "invalid_statement", f"prev[{b}]")
    full = ship_envelope(key_of("acme"), "acme", [a, b], "hk-export", time=T_EVENTS + timedelta(minutes=5),
                         prev=heads(cast, [a, b]))
    assert cast.append(full, now=NOW).created


def test_an_aggregate_names_an_existing_container_in_prev_but_not_a_new_one(cast):
    a, b = item_key("C1"), item_key("C2")
    commission(cast, ["C1", "C2"])
    pack = sign_statement(new_statement("aggregate", actor="acme", time=T_EVENTS, location=location("acme"),
                                        prev=heads(cast, [a]), container=SSCC, items=[a]), key_of("acme"))
    packed = cast.append(pack, now=NOW)  # a new container: nothing to name
    assert packed.created
    more = new_statement("aggregate", actor="acme", time=T_EVENTS + timedelta(minutes=1), location=location("acme"),
                         prev=heads(cast, [b]), container=SSCC, items=[b])
    refused(cast, sign_statement(more, key_of("acme")), InvalidStatement, "invalid_statement", f"prev[{SSCC}]")
    more["prev"][SSCC] = packed.event_id
    assert cast.append(sign_statement(more, key_of("acme")), now=NOW).created


# --- to and from are registered parties ------------------------------------------------------------------

def test_a_ship_to_an_unregistered_party_is_refused(cast):
    item = item_key("TO1")
    commission(cast, ["TO1"])
    env = ship_envelope(key_of("acme"), "acme", [item], "no-such-party", time=T_EVENTS + timedelta(minutes=5),
                        prev=heads(cast, [item]))
    refused(cast, env, Rejected, "unknown_party", "to")


def test_a_receive_from_an_unregistered_sender_is_refused(cast):
    item = item_key("FROM1")
    commission(cast, ["FROM1"])
    shipped = ship(cast, [item], "hk-export")
    doc = new_statement("receive", actor="hk-export", time=T_EVENTS + timedelta(hours=1), location=location("hk-export"),
                        prev={item: shipped.event_id}, items=[item], from_="ghost-sender", ship=shipped.event_id)
    refused(cast, sign_statement(doc, key_of("hk-export")), Rejected, "unknown_party", "from")
    ok = receive(cast, [item], "acme", shipped.event_id, actor="hk-export")
    assert ok.created


# --- full matches: nothing after the value, not even a newline -------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("serial", "TLF008812\n"), ("serial", "A" * 21), ("serial", "AB CD"), ("serial", "É1"),
    ("time", "2026-03-02T09:00:00Z\n"), ("country", "CN\n"), ("actor", "acme\n"), ("gtin", "09506000134352\n"),
])
def test_a_value_with_anything_after_it_is_refused(cast, field, value):
    serial, time, country, actor, gtin = "NL1", "2026-03-02T09:00:00Z", "CN", "acme", "09506000134352"
    serial, time, country, actor, gtin = (value if f == field else v for f, v in (
        ("serial", serial), ("time", time), ("country", country), ("actor", actor), ("gtin", gtin)))
    doc = {"v": 1, "type": "commission", "actor": actor, "time": time,
           "location": {"name": "Acme factory", "country": country},
           "items": [f"01/{gtin}/21/{serial}"], "product": {"gtin": "09506000134352", "name": "Drill"}}
    before = cast.size()
    with pytest.raises(InvalidStatement):
        cast.append(raw(doc, "acme"), now=NOW)
    assert cast.size() == before


def test_an_event_id_with_a_trailing_newline_in_prev_is_refused(cast):
    item = item_key("NLP")
    made = commission(cast, ["NLP"])
    doc = {"v": 1, "type": "ship", "actor": "acme", "time": "2026-03-02T09:30:00Z", "location": location("acme"),
           "items": [item], "to": "hk-export", "prev": {item: made.event_id + "\n"}}
    refused(cast, raw(doc, "acme"), InvalidStatement, "invalid_statement", f"prev[{item}]")


# --- licences and brand prefixes ---------------------------------------------------------------------------

def licence(actor: str, licensee: str, prefixes: list[str], **extra):
    doc = {"v": 1, "type": "licence", "actor": actor, "time": "2026-03-02T09:00:00Z", "location": location(actor),
           "licensee": licensee, "gs1_prefixes": prefixes, "not_before": "2026-01-01T00:00:00Z", **extra}
    return raw(doc, actor)


def test_a_brand_owner_licenses_its_own_prefix(cast, admin_key):
    cast.append(party_envelope(admin_key, "oem-1", roles=["manufacturer"], country="VN"), now=NOW)
    assert cast.append(licence("acme", "oem-1", ["950600"]), now=NOW).created
    assert cast.append(licence("acme", "oem-1", ["95060001"]), now=NOW).created  # a narrower range of its own


def test_nobody_licenses_a_prefix_it_does_not_own(cast, admin_key):
    cast.append(party_envelope(admin_key, "oem-1", roles=["manufacturer"], country="VN"), now=NOW)
    cast.append(party_envelope(admin_key, "rival", roles=["manufacturer"], gs1_prefixes=["400555"]), now=NOW)
    refused(cast, licence("rival", "oem-1", ["950600"]), Rejected, "not_prefix_owner", "gs1_prefixes")
    refused(cast, licence("acme", "oem-1", ["9506"]), Rejected, "not_prefix_owner", "gs1_prefixes")  # wider


def test_a_licence_needs_a_registered_manufacturer_and_a_manufacturer_signer(cast, admin_key):
    refused(cast, licence("acme", "ghost-oem", ["950600"]), Rejected, "unknown_party", "licensee")
    refused(cast, licence("acme", "hk-warehouse", ["950600"]), Rejected, "invalid_licence", "licensee")
    refused(cast, licence("hk-warehouse", "acme", ["950600"]), Rejected, "unauthorized_signer", "actor")
    with pytest.raises(InvalidStatement):
        cast.append(licence("acme", "hk-export", ["950600"], prev={item_key("X"): "sha256:" + "a" * 64}), now=NOW)


@pytest.mark.parametrize("prefix, why", [("0212345", "restricted circulation"), ("2012345", "restricted circulation"),
                                         ("9781234", "ISBN"), ("9771234", "ISSN"), ("9812345", "coupon"),
                                         ("1401234", "unassigned")])
def test_a_prefix_gs1_never_gives_a_brand_cannot_be_registered(cast, admin_key, prefix, why):
    env = party_envelope(admin_key, "odd-co", roles=["manufacturer"], gs1_prefixes=[prefix])
    refused(cast, env, InvalidStatement, "invalid_statement", "party.gs1_prefixes")


# --- entries a tile can carry ---------------------------------------------------------------------------------

def test_a_statement_too_large_for_a_tile_entry_is_refused_and_a_split_one_is_not(cast):
    """C2SP tlog-tiles bundles carry an entry behind a 16-bit length: a larger entry could never reach a mirror."""
    serials = [f"BIG{n:04d}" for n in range(600)]
    for start in range(0, len(serials), 300):
        commission(cast, serials[start:start + 300])
    items = [item_key(s) for s in serials]
    prev = heads(cast, items)
    whole = ship_envelope(key_of("acme"), "acme", items, "hk-export", time=T_EVENTS + timedelta(minutes=5), prev=prev)
    assert len(whole.leaf_data()) > 0xFFFF
    refused(cast, whole, InvalidStatement, "invalid_statement", "items")
    for start in range(0, len(items), 200):
        part = items[start:start + 200]
        env = ship_envelope(key_of("acme"), "acme", part, "hk-export", time=T_EVENTS + timedelta(minutes=5),
                            prev={k: prev[k] for k in part})
        assert len(env.leaf_data()) <= 0xFFFF and cast.append(env, now=NOW).created
