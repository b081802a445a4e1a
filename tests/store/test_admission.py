"""Admission (SPEC §2): every rule the ledger applies at the door, on every backend.

Each refusal must name its rule (``code``) and the field at fault, and must leave the store exactly as it
was: no entry, no node, no key index row, no registry change, no new checkpoint.
"""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from tests.conftest import T0, fixed_key
from tests.store.helpers import (CAST, NOW, T_EVENTS, T_PARTIES, AppendResult, commission, commission_envelope,
                                 heads, inspect_envelope, item_key, key_entry, key_of, party_envelope,
                                 receive_envelope, register_cast, register_party, sell_envelope, ship,
                                 ship_envelope, snapshot)
from tracker import merkle
from tracker.dsse import Envelope, parse_envelope, sign_envelope
from tracker.errors import InvalidInput, InvalidStatement, Rejected, TrackerError
from tracker.keys import verify_signature
from tracker.ledger import Ledger
from tracker.signing import new_statement, sign_statement
from tracker.statements import parse_statement
from tracker.store import open_store


@pytest.fixture
def cast(ledger, admin_key):
    register_cast(ledger, admin_key)
    return ledger


def assert_refused(ledger: Ledger, envelope, *, code: str, field: str, now=NOW, case: str = "") -> Rejected:
    """The envelope is refused with ``code``/``field``, alone and inside a batch, and nothing changes."""
    before = snapshot(ledger)
    try:
        result = ledger.append(envelope, now=now)
    except Rejected as exc:
        refused = exc
    else:
        pytest.fail(f"{case}: accepted ({result}) instead of refused with {code}")
    assert (refused.code, refused.field) == (code, field), f"{case}: {refused.code}/{refused.field}: {refused}"
    assert snapshot(ledger) == before, f"{case}: the refused append changed the store"
    [result] = ledger.append_batch([envelope], now=now)
    assert isinstance(result, Rejected) and (result.code, result.field) == (code, field), f"{case}: {result!r}"
    assert snapshot(ledger) == before, f"{case}: the refused batch changed the store"
    return refused


def test_an_unregistered_actor_is_refused(cast):
    stranger = fixed_key("stranger")
    env = commission_envelope(stranger, "stranger-co", ["S1"])
    assert_refused(cast, env, code="unknown_party", field="actor")


def test_a_signature_by_another_partys_valid_key_is_refused(cast):
    # hk-warehouse's key is registered and valid, but it is not a key of acme.
    env = commission_envelope(key_of("hk-warehouse"), "acme", ["S1"])
    assert_refused(cast, env, code="unknown_key", field="signatures")


def test_payload_altered_after_signing_is_refused(cast):
    env = commission_envelope(key_of("acme"), "acme", ["S1"])
    altered = env.payload.replace(b"Rotary hammer drill", b"Rotary hammer drilL")
    assert altered != env.payload
    parse_statement(altered)  # still a perfectly valid statement: only the signature can tell
    forged = Envelope(payload_type=env.payload_type, payload=altered, signatures=env.signatures)
    assert_refused(cast, forged, code="bad_signature", field="signatures")
    # The same forgery arriving as JSON (as a scanner would post it).
    doc = env.to_json()
    doc["payload"] = base64.b64encode(altered).decode()
    assert_refused(cast, json.dumps(doc), code="bad_signature", field="signatures")
    # The untouched envelope is fine.
    assert cast.append(env, now=NOW).created


def test_a_signature_altered_after_signing_is_refused(cast):
    env = commission_envelope(key_of("acme"), "acme", ["S1"])
    doc = env.to_json()
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    assert_refused(cast, doc, code="bad_signature", field="signatures")


class TestRevokedKey:
    """A key revoked at or before the moment the statement reaches the ledger writes nothing more."""

    @pytest.fixture
    def revoked(self, cast, admin_key):
        old, new = key_of("acme"), key_of("acme", device=1)
        revoked_at = T0 + timedelta(hours=10)
        # Before the revocation is recorded, the old key writes.
        commission(cast, ["BEFORE"], key=old, time=T0 + timedelta(hours=2), now=T0 + timedelta(hours=2))
        register_party(cast, admin_key, "acme", time=T0 + timedelta(hours=3),
                       keys=[key_entry(old, revoked_at=revoked_at), key_entry(new, not_before=revoked_at)],
                       now=T0 + timedelta(hours=3))
        return cast, old, new, revoked_at

    def test_revoked_key_is_refused_whatever_time_it_claims(self, revoked):
        ledger, old, _new, revoked_at = revoked
        claims = {"long-before": timedelta(hours=-7), "just-before": timedelta(seconds=-1), "at": timedelta(0),
                  "after": timedelta(hours=2)}
        for case, claimed in claims.items():
            env = commission_envelope(old, "acme", [f"LATE-{case}"], time=revoked_at + claimed)
            assert_refused(ledger, env, code="revoked_key", field="signatures", now=revoked_at + timedelta(hours=3),
                           case=case)

    def test_revocation_applies_from_the_instant_revoked_at(self, revoked):
        ledger, old, _new, revoked_at = revoked
        env = commission_envelope(old, "acme", ["EDGE"], time=revoked_at - timedelta(minutes=1))
        assert_refused(ledger, env, code="revoked_key", field="signatures", now=revoked_at)
        # One second earlier the key is still good (the revocation lies in the future).
        assert ledger.append(env, now=revoked_at - timedelta(seconds=1)).created

    def test_replacement_key_writes_and_history_stays_valid(self, revoked):
        ledger, _old, new, revoked_at = revoked
        later = revoked_at + timedelta(hours=1)
        assert commission(ledger, ["AFTER"], key=new, time=later, now=later).created
        # What the old key signed before its revocation still audits clean afterwards.
        report = ledger.audit()
        assert report.entries == ledger.size()

    def test_a_revocation_in_the_same_batch_takes_effect_for_later_envelopes(self, cast, admin_key):
        old, new = key_of("acme"), key_of("acme", device=1)
        now = T0 + timedelta(hours=5)
        revoke = party_envelope(admin_key, "acme", time=now - timedelta(minutes=1),
                                keys=[key_entry(old, revoked_at=now - timedelta(minutes=1)), key_entry(new)])
        by_old = commission_envelope(old, "acme", ["X1"], time=now - timedelta(hours=1))
        by_new = commission_envelope(new, "acme", ["X2"], time=now - timedelta(hours=1))
        first = cast.append_batch([by_old], now=now - timedelta(hours=1))  # accepted before the revocation
        assert isinstance(first[0], AppendResult)
        again = commission_envelope(old, "acme", ["X3"], time=now - timedelta(hours=1))
        results = cast.append_batch([revoke, again, by_new], now=now)
        assert isinstance(results[0], AppendResult)
        assert isinstance(results[1], Rejected) and results[1].code == "revoked_key"
        assert isinstance(results[2], AppendResult) and results[2].leaf_index == results[0].leaf_index + 1


def test_a_statement_before_the_keys_not_before_is_refused(cast, admin_key):
    device = key_of("hk-export", device=2)
    not_before = T0 + timedelta(hours=10)
    register_party(cast, admin_key, "hk-export", keys=[key_of("hk-export"), key_entry(device, not_before=not_before)])
    commission(cast, ["NB"])
    item = item_key("NB")
    early = ship_envelope(device, "hk-export", [item], "berlin-shop", time=not_before - timedelta(seconds=1),
                          prev=heads(cast, [item]))
    assert_refused(cast, early, code="key_not_valid", field="signatures", now=NOW)
    on_time = ship_envelope(device, "hk-export", [item], "berlin-shop", time=not_before, prev=heads(cast, [item]))
    assert cast.append(on_time, now=NOW).created


WRONG_ROLE = {
    "warehouse-commissions": lambda items: commission_envelope(key_of("hk-warehouse"), "hk-warehouse", ["W1"]),
    "retailer-inspects": lambda items: inspect_envelope(key_of("berlin-shop"), "berlin-shop", items, "released",
                                                        time=T_EVENTS, prev={}),
    "manufacturer-sells": lambda items: sell_envelope(key_of("acme"), "acme", items, time=T_EVENTS, prev={}),
    "customs-ships": lambda items: ship_envelope(key_of("de-customs"), "de-customs", items, "berlin-shop",
                                                 time=T_EVENTS, prev={}),
    "exporter-inspects": lambda items: inspect_envelope(key_of("hk-export"), "hk-export", items, "seized",
                                                        time=T_EVENTS, prev={}),
    "manufacturer-registers-a-party": lambda items: party_envelope(key_of("acme"), "rogue-co", actor="acme",
                                                                   keys=[fixed_key("rogue")]),
}


def test_a_signer_without_the_role_the_type_needs_is_refused(cast):
    item = item_key("R1")
    commission(cast, ["R1"])
    for case, make in WRONG_ROLE.items():
        assert_refused(cast, make([item]), code="unauthorized_signer", field="actor", case=case)
    with pytest.raises(TrackerError):
        cast.party("rogue-co")


def test_time_in_the_future_beyond_five_minutes_skew_is_refused(cast):
    now = T0 + timedelta(hours=6)
    refused = {"5min-1s": timedelta(minutes=5, seconds=1), "3h": timedelta(hours=3)}
    accepted = {"5min": timedelta(minutes=5), "4min59s": timedelta(minutes=4, seconds=59), "now": timedelta(0)}
    for case, ahead in refused.items():
        env = commission_envelope(key_of("acme"), "acme", [f"F-{case}"], time=now + ahead)
        assert_refused(cast, env, code="future_time", field="time", now=now, case=case)
    for case, ahead in accepted.items():
        env = commission_envelope(key_of("acme"), "acme", [f"F-{case}"], time=now + ahead)
        assert cast.append(env, now=now).created, case


UNKNOWN_ITEM = {
    "ship": lambda k: ship_envelope(key_of("acme"), "acme", [k], "hk-warehouse", time=T_EVENTS, prev={}),
    "inspect": lambda k: inspect_envelope(key_of("de-customs"), "de-customs", [k], "seized", time=T_EVENTS, prev={}),
    "sell": lambda k: sell_envelope(key_of("berlin-shop"), "berlin-shop", [k], time=T_EVENTS, prev={}),
    "ship-one-known-one-not": lambda k: ship_envelope(key_of("acme"), "acme", [item_key("KNOWN"), k], "hk-warehouse",
                                                      time=T_EVENTS, prev={}),
    "ship-unknown-container": lambda k: ship_envelope(key_of("acme"), "acme", ["00/009506000134352008"],
                                                      "hk-warehouse", time=T_EVENTS, prev={}),
    "aggregate-unknown-item": lambda k: sign_statement(new_statement(
        "aggregate", actor="acme", time=T_EVENTS, location={"name": "Acme", "country": "CN"}, prev={},
        container="00/009506000134352008", items=[item_key("KNOWN"), k]), key_of("acme")),
    "disaggregate-unknown-container": lambda k: sign_statement(new_statement(
        "disaggregate", actor="acme", time=T_EVENTS, location={"name": "Acme", "country": "CN"}, prev={},
        container="00/009506000134352008", items=[item_key("KNOWN")]), key_of("acme")),
}


def test_naming_an_item_that_was_never_commissioned_is_refused(cast):
    commission(cast, ["KNOWN"])
    for case, make in UNKNOWN_ITEM.items():
        assert_refused(cast, make(item_key("NEVER-MADE")), code="unknown_item", field="items", case=case)
    # A new container is fine in an aggregate (it comes into existence there), and is known afterwards.
    pack = sign_statement(new_statement("aggregate", actor="acme", time=T_EVENTS,
                                        prev=heads(cast, [item_key("KNOWN")]),
                                        location={"name": "Acme", "country": "CN"},
                                        container="00/009506000134352008", items=[item_key("KNOWN")]), key_of("acme"))
    packed = cast.append(pack, now=NOW)
    assert packed.created
    unpack = sign_statement(new_statement(
        "disaggregate", actor="acme", time=T_EVENTS, location={"name": "Acme", "country": "CN"},
        prev={"00/009506000134352008": packed.event_id, item_key("KNOWN"): packed.event_id},
        container="00/009506000134352008", items=[item_key("KNOWN")]), key_of("acme"))
    assert cast.append(unpack, now=NOW).created


def test_one_verifying_signature_among_several_is_enough(cast):
    env = commission_envelope(key_of("acme"), "acme", ["MS1"])
    foreign = sign_envelope(env.payload, [key_of("hk-warehouse")]).signatures[0]
    both = Envelope(payload_type=env.payload_type, payload=env.payload, signatures=(foreign,) + env.signatures)
    result = cast.append(both, now=NOW)
    assert result.created
    entry, _st = cast.get_event(result.event_id)
    assert entry.leaf_data == both.leaf_data()  # every signature kept, as received
    cast.audit()
    # Foreign signatures alone are not enough.
    other = commission_envelope(key_of("acme"), "acme", ["MS2"])
    only_foreign = Envelope(payload_type=other.payload_type, payload=other.payload,
                            signatures=sign_envelope(other.payload, [key_of("hk-warehouse"), key_of("berlin-shop")])
                            .signatures)
    assert_refused(cast, only_foreign, code="unknown_key", field="signatures")


class TestReceive:
    @pytest.fixture
    def shipped(self, cast):
        items = [item_key("RC1"), item_key("RC2")]
        commission(cast, ["RC1", "RC2", "RC3"])
        res = ship(cast, items, "hk-warehouse", actor="acme")
        return cast, items, res.event_id

    def _receive(self, ledger, items, from_, ship_id, actor):
        return receive_envelope(key_of(actor), actor, items, from_, ship_id, time=T_EVENTS + timedelta(hours=2),
                                prev=heads(ledger, items))

    def test_wrong_from_is_refused(self, shipped):
        ledger, items, ship_id = shipped
        assert_refused(ledger, self._receive(ledger, items, "hk-export", ship_id, "hk-warehouse"),
                       code="receive_mismatch", field="from")

    def test_receiver_who_is_not_the_to_is_refused(self, shipped):
        ledger, items, ship_id = shipped
        assert_refused(ledger, self._receive(ledger, items, "acme", ship_id, "berlin-shop"),
                       code="receive_mismatch", field="from")

    def test_an_item_that_was_not_in_the_shipment_is_refused(self, shipped):
        ledger, items, ship_id = shipped
        assert_refused(ledger, self._receive(ledger, [items[0], item_key("RC3")], "acme", ship_id, "hk-warehouse"),
                       code="receive_mismatch", field="items")

    def test_ship_field_that_is_not_a_ship_event_is_refused(self, shipped):
        ledger, items, _ship_id = shipped
        commission_id = heads(ledger, [item_key("RC3")])[item_key("RC3")]
        assert_refused(ledger, self._receive(ledger, items, "acme", commission_id, "hk-warehouse"),
                       code="unknown_event", field="ship")
        assert_refused(ledger, self._receive(ledger, items, "acme", "sha256:" + "ab" * 32, "hk-warehouse"),
                       code="unknown_event", field="ship")

    def test_the_matching_receive_of_part_of_the_shipment_is_accepted(self, shipped):
        ledger, items, ship_id = shipped
        assert ledger.append(self._receive(ledger, items[:1], "acme", ship_id, "hk-warehouse"), now=NOW).created


def test_registering_a_key_that_belongs_to_another_party_is_refused(cast, admin_key):
    env = party_envelope(admin_key, "copycat", roles=["manufacturer"], keys=[fixed_key("copycat"), key_of("acme")])
    assert_refused(cast, env, code="key_in_use", field="party.keys")
    # Nor may an update of an existing party take over a key.
    env = party_envelope(admin_key, "hk-export", keys=[key_of("hk-export"), key_of("acme")])
    assert_refused(cast, env, code="key_in_use", field="party.keys")
    assert cast.party("hk-export").key(key_of("acme").keyid) is None


def test_key_in_use_is_checked_against_earlier_envelopes_of_the_same_batch(cast, admin_key):
    shared = fixed_key("shared-device")
    results = cast.append_batch([party_envelope(admin_key, "first-co", roles=["courier"], keys=[shared]),
                                 party_envelope(admin_key, "second-co", roles=["courier"], keys=[shared])], now=NOW)
    assert isinstance(results[0], AppendResult)
    assert isinstance(results[1], Rejected) and (results[1].code, results[1].field) == ("key_in_use", "party.keys")
    with pytest.raises(TrackerError):
        cast.party("second-co")


class TestPartyUpdate:
    @pytest.fixture
    def two_keys(self, cast, admin_key):
        k0, k1 = key_of("acme"), key_of("acme", device=1)
        revoked_at = T0 + timedelta(hours=4)
        register_party(cast, admin_key, "acme", keys=[key_entry(k0), key_entry(k1, revoked_at=revoked_at)])
        return cast, k0, k1, revoked_at

    def test_removing_a_key_is_refused(self, two_keys, admin_key):
        ledger, k0, _k1, _ = two_keys
        # (a new time: the same bytes as the first registration would simply be a duplicate)
        removal = party_envelope(admin_key, "acme", keys=[k0], time=T_PARTIES + timedelta(minutes=3))
        assert_refused(ledger, removal, code="invalid_party_update",
                       field="party.keys")

    def test_un_revoking_a_key_is_refused(self, two_keys, admin_key):
        ledger, k0, k1, _ = two_keys
        unrevoke = party_envelope(admin_key, "acme", keys=[k0, k1], time=T_PARTIES + timedelta(minutes=3))
        assert_refused(ledger, unrevoke, code="invalid_party_update",
                       field="party.keys")
        assert ledger.party("acme").key(k1.keyid).revoked_at == T0 + timedelta(hours=4)

    def test_moving_a_revocation_later_is_refused_earlier_is_accepted(self, two_keys, admin_key):
        ledger, k0, k1, revoked_at = two_keys
        later = party_envelope(admin_key, "acme", keys=[key_entry(k0), key_entry(k1, revoked_at=revoked_at
                                                                                 + timedelta(hours=1))])
        assert_refused(ledger, later, code="invalid_party_update", field="party.keys")
        earlier = party_envelope(admin_key, "acme", time=T_PARTIES + timedelta(minutes=5),
                                 keys=[key_entry(k0), key_entry(k1, revoked_at=revoked_at - timedelta(hours=1))])
        assert ledger.append(earlier, now=NOW).created
        assert ledger.party("acme").key(k1.keyid).revoked_at == revoked_at - timedelta(hours=1)

    def test_adding_a_key_and_revoking_one_is_accepted(self, two_keys, admin_key):
        ledger, k0, k1, revoked_at = two_keys
        k2 = key_of("acme", device=2)
        env = party_envelope(admin_key, "acme", time=T_PARTIES + timedelta(minutes=9),
                             keys=[key_entry(k0, revoked_at=T0 + timedelta(hours=6)),
                                   key_entry(k1, revoked_at=revoked_at), key_entry(k2)])
        assert ledger.append(env, now=NOW).created
        assert {k.keyid for k in ledger.party("acme").keys} == {k0.keyid, k1.keyid, k2.keyid}


class TestDuplicates:
    def test_the_same_envelope_again_is_not_stored_twice(self, cast):
        env = commission_envelope(key_of("acme"), "acme", ["D1"])
        first = cast.append(env, now=NOW)
        assert first.created
        before = snapshot(cast)
        again = cast.append(env, now=NOW + timedelta(hours=1))
        assert (again.event_id, again.leaf_index, again.created) == (first.event_id, first.leaf_index, False)
        # As JSON text, in a batch, twice in the same batch: still the one entry.
        results = cast.append_batch([json.dumps(env.to_json()), env], now=NOW)
        assert [(r.event_id, r.leaf_index, r.created) for r in results] == [(first.event_id, first.leaf_index,
                                                                              False)] * 2
        assert snapshot(cast) == before

    def test_a_duplicate_within_one_batch_gets_the_first_copys_index(self, cast):
        env = commission_envelope(key_of("acme"), "acme", ["D2"])
        other = commission_envelope(key_of("acme"), "acme", ["D3"])
        size = cast.size()
        results = cast.append_batch([env, other, env], now=NOW)
        assert [(r.leaf_index, r.created) for r in results] == [(size, True), (size + 1, True), (size, False)]
        assert results[2].event_id == env.event_id
        assert cast.size() == size + 2

    def test_the_same_payload_with_another_valid_signature_is_the_same_event(self, cast, admin_key):
        k0, k1 = key_of("acme"), key_of("acme", device=1)
        register_party(cast, admin_key, "acme", keys=[k0, k1])
        doc = new_statement("commission", actor="acme", time=T_EVENTS, location={"name": "Acme", "country": "CN"},
                            items=[item_key("D4")], product={"gtin": "09506000134352", "name": "Drill"})
        first = cast.append(sign_statement(doc, k0), now=NOW)
        size = cast.size()
        again = cast.append(sign_statement(doc, k1), now=NOW)
        assert (again.event_id, again.leaf_index, again.created) == (first.event_id, first.leaf_index, False)
        assert cast.size() == size


class TestBatches:
    def test_results_come_back_in_order_and_one_bad_envelope_blocks_nothing(self, cast):
        c1 = commission_envelope(key_of("acme"), "acme", ["B1"])
        c2 = commission_envelope(key_of("acme"), "acme", ["B2"])
        bad_role = commission_envelope(key_of("berlin-shop"), "berlin-shop", ["B3"])
        malformed = {"payloadType": "text/plain", "payload": "aGk=", "signatures": []}
        ship_c1 = ship_envelope(key_of("acme"), "acme", [item_key("B1")], "hk-warehouse", time=T_EVENTS,
                                prev={item_key("B1"): c1.event_id})
        unknown = sell_envelope(key_of("berlin-shop"), "berlin-shop", [item_key("B9")], time=T_EVENTS, prev={})
        size = cast.size()
        results = cast.append_batch([c1, bad_role, malformed, c2, "not json", ship_c1, unknown, c1], now=NOW)
        assert len(results) == 8
        assert (results[0].event_id, results[0].leaf_index, results[0].created) == (c1.event_id, size, True)
        assert isinstance(results[1], Rejected) and results[1].code == "unauthorized_signer"
        assert isinstance(results[2], InvalidStatement) and results[2].field == "payloadType"
        assert (results[3].event_id, results[3].leaf_index) == (c2.event_id, size + 1)
        assert isinstance(results[4], InvalidStatement) and results[4].field == "envelope"
        assert (results[5].event_id, results[5].leaf_index) == (ship_c1.event_id, size + 2)
        assert isinstance(results[6], Rejected) and results[6].code == "unknown_item"
        assert (results[7].leaf_index, results[7].created) == (size, False)
        assert cast.size() == size + 3
        assert cast.verified_checkpoint().size == size + 3
        for r, env in ((results[0], c1), (results[3], c2), (results[5], ship_c1)):
            entry, _st = cast.get_event(r.event_id)
            assert entry.leaf_index == r.leaf_index and entry.leaf_data == env.leaf_data()

    def test_later_envelopes_build_on_earlier_ones_in_the_same_batch(self, ledger, admin_key):
        # A new party, its first item, and the item's whole journey: one batch.
        from tests.store.helpers import journey

        parties = [party_envelope(admin_key, pid) for pid in CAST]
        chain = journey("CHAIN1", T_EVENTS)
        size = ledger.size()
        results = ledger.append_batch(parties + chain, now=NOW)
        assert all(isinstance(r, AppendResult) and r.created for r in results), results
        assert [r.leaf_index for r in results] == list(range(size, size + len(parties) + len(chain)))
        assert ledger.verified_checkpoint().size == size + len(results)

    def test_nothing_builds_on_a_refused_envelope_of_the_same_batch(self, cast, admin_key):
        refused_party = party_envelope(admin_key, "newcomer", roles=["manufacturer"], keys=[key_of("acme")])
        by_newcomer = commission_envelope(key_of("acme"), "newcomer", ["N1"])
        refused_commission = commission_envelope(key_of("hk-warehouse"), "hk-warehouse", ["N2"])
        ship_it = ship_envelope(key_of("hk-warehouse"), "hk-warehouse", [item_key("N2")], "berlin-shop",
                                time=T_EVENTS, prev={item_key("N2"): refused_commission.event_id})
        before = snapshot(cast)
        results = cast.append_batch([refused_party, by_newcomer, refused_commission, ship_it], now=NOW)
        assert [r.code for r in results] == ["key_in_use", "unknown_party", "unauthorized_signer", "unknown_item"]
        assert snapshot(cast) == before

    def test_more_than_1000_envelopes_are_refused_and_1000_accepted(self, cast):
        MAX_BATCH = 1000  # SPEC §4: a batch holds at most 1000 envelopes
        envs = [commission_envelope(key_of("acme"), "acme", [f"M{i:04d}"]) for i in range(MAX_BATCH + 1)]
        before = snapshot(cast)
        with pytest.raises(InvalidInput) as info:
            cast.append_batch(envs, now=NOW)
        assert info.value.code == "batch_too_large"
        assert snapshot(cast) == before
        results = cast.append_batch(envs[:MAX_BATCH], now=NOW)
        assert len(results) == MAX_BATCH and all(isinstance(r, AppendResult) and r.created for r in results)
        assert cast.size() == before["size"] + MAX_BATCH
        assert cast.verified_checkpoint().size == before["size"] + MAX_BATCH


def test_a_crash_before_commit_stores_nothing(cast, monkeypatch):
    from tracker.store.sql import SqlTxn

    env = commission_envelope(key_of("acme"), "acme", ["CRASH"])
    before = snapshot(cast)

    def disk_full(self, cp):
        raise OSError("disk full")

    monkeypatch.setattr(SqlTxn, "add_checkpoint", disk_full)
    with pytest.raises(OSError):
        cast.append_batch([env, commission_envelope(key_of("acme"), "acme", ["CRASH2"])], now=NOW)
    monkeypatch.undo()
    assert snapshot(cast) == before
    assert cast.append(env, now=NOW).leaf_index == before["size"]
    cast.audit()


def test_every_commit_produces_a_checkpoint_covering_it(cast):
    with cast.store.read() as txn:
        leaves = [e.leaf_data for e in txn.iter_entries()]
    sizes = [cp.size for cp in _checkpoints(cast)]
    first_size = sizes[-1]
    for n in (1, 3, 1, 2):
        envs = [commission_envelope(key_of("acme"), "acme", [f"C{len(leaves) + i}"]) for i in range(n)]
        results = cast.append_batch(envs, now=NOW)
        leaves.extend(e.leaf_data() for e in envs)
        cp = cast.verified_checkpoint()  # read right after the acknowledgement
        assert cp.size == len(leaves) == max(r.leaf_index for r in results) + 1
        assert cp.root_hash == _reference_root(leaves)
        sizes.append(cp.size)
    # Every commit signed a checkpoint of its own (checked above, right after each acknowledgement); the stored
    # history keeps one per interval plus the latest -- these commits all ran at NOW, in one second.
    history = [cp.size for cp in _checkpoints(cast)]
    assert history[-1] == sizes[-1] and set(history) <= set(sizes)
    assert len([s for s in history if s > first_size]) <= 2
    # Refusals and duplicates commit nothing: no checkpoint, no change to the history.
    cast.append_batch([envs[0], commission_envelope(key_of("hk-warehouse"), "hk-warehouse", ["X"])], now=NOW)
    assert [cp.size for cp in _checkpoints(cast)] == history
    assert cast.verified_checkpoint().size == sizes[-1]


def test_creating_the_ledger_again_changes_nothing(ledger, db_url, ledger_key, admin_key):
    acme = register_party(ledger, admin_key, "acme")
    before = snapshot(ledger)
    store = open_store(db_url)
    try:
        again = Ledger.create(store, origin="another.origin/log", ledger_key=ledger_key,
                              admin_key=fixed_key("usurper"), now=T0 + timedelta(days=30), admin_name="Usurper")
        assert again.origin == ledger.origin == "waybill.test/ledger"
        assert again.vkey == ledger.vkey
        assert snapshot(ledger) == before
        assert ledger.party("admin").keys[0].public_key == admin_key.public_key
        assert again.size() == acme.leaf_index + 1
        # A different ledger key on an existing ledger is refused, and changes nothing either.
        with pytest.raises(TrackerError):
            Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("other-ledger"),
                          admin_key=admin_key, now=T0)
        assert snapshot(ledger) == before
    finally:
        store.close()


def test_the_genesis_leaf_is_the_admin_party_statement(ledger, admin_key):
    assert ledger.size() == 1
    entry, st = ledger.get_event(_entry_at(ledger, 0).event_id)
    assert entry.leaf_index == 0 and entry.type == "party" and entry.actor == "admin"
    assert st.type == "party" and st.actor == "admin" and st.time == T0
    assert st.party.id == "admin" and st.party.roles == ("admin",)
    assert [k.public_key for k in st.party.keys] == [admin_key.public_key]
    env = parse_envelope(entry.leaf_data)
    assert env.leaf_data() == entry.leaf_data
    assert [s.keyid for s in env.signatures] == [admin_key.keyid]
    verify_signature(admin_key.public_key, env.pae(), env.signatures[0].sig)
    cp = ledger.verified_checkpoint()
    assert (cp.size, cp.root_hash) == (1, merkle.leaf_hash(entry.leaf_data))
    assert ledger.party("admin").key(admin_key.keyid) is not None


# --- small oracles --------------------------------------------------------------------------------

def _checkpoints(ledger):
    with ledger.store.read() as txn:
        return list(txn.iter_checkpoints())


def _entry_at(ledger, index):
    with ledger.store.read() as txn:
        return txn.entries_at([index])[index]


def _reference_root(leaves):
    """RFC 6962 MTH, the naive recursive way."""
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_a_group_admits_exactly_what_the_same_envelopes_one_by_one_would(cast, admin_key):
    """A group's parties, item keys and shipments are read from the store in bulk before its statements are
    admitted (tracker/admission.py prefetch). What the earlier statements of the same group add -- a new
    party, a commission, a shipment -- must still count for the later ones, and what the store lacks must
    still be refused with the same code as one envelope at a time."""
    t = T_EVENTS + timedelta(hours=3)
    stored = commission(cast, ["PF-STORED"], time=t)
    stored_item = item_key("PF-STORED")
    stored_ship = ship(cast, [stored_item], "hk-warehouse", time=t + timedelta(minutes=1)).event_id
    item = item_key("PF-NEW")
    c = commission_envelope(key_of("acme"), "acme", ["PF-NEW"], time=t)
    s = ship_envelope(key_of("acme"), "acme", [item], "hk-warehouse", time=t + timedelta(minutes=2),
                      prev={item: c.event_id})
    cases = [
        ("new party", party_envelope(admin_key, "pf-newco", roles=["manufacturer"], gs1_prefixes=["950601"]), None),
        ("commission by the party registered just before",
         commission_envelope(key_of("pf-newco"), "pf-newco", ["N1"], gtin="09506010000005", time=t), None),
        ("commission", c, None),
        ("ship of the item commissioned just before", s, None),
        ("receive of the shipment just before",
         receive_envelope(key_of("hk-warehouse"), "hk-warehouse", [item], "acme", s.event_id,
                          time=t + timedelta(minutes=3), prev={item: s.event_id}), None),
        ("receive of a stored shipment",
         receive_envelope(key_of("hk-warehouse"), "hk-warehouse", [stored_item], "acme", stored_ship,
                          time=t + timedelta(minutes=3), prev={stored_item: stored_ship}), None),
        ("receive naming the stored shipment with the wrong sender",
         receive_envelope(key_of("hk-warehouse"), "hk-warehouse", [stored_item], "hk-export", stored_ship,
                          time=t + timedelta(minutes=4), prev={stored_item: stored_ship}), "receive_mismatch"),
        ("receive of a shipment nobody made",
         receive_envelope(key_of("hk-warehouse"), "hk-warehouse", [stored_item], "acme", "sha256:" + "ab" * 32,
                          time=t + timedelta(minutes=4), prev={stored_item: stored_ship}), "unknown_event"),
        ("ship to an unregistered party",
         ship_envelope(key_of("acme"), "acme", [item], "nobody-here", time=t + timedelta(minutes=5),
                       prev={item: c.event_id}), "unknown_party"),
        ("ship of an item never commissioned",
         ship_envelope(key_of("acme"), "acme", [item_key("PF-NEVER")], "hk-warehouse",
                       time=t + timedelta(minutes=5), prev={item_key("PF-NEVER"): stored.event_id}), "unknown_item"),
    ]
    results = cast.append_batch([env for _, env, _ in cases], now=NOW)
    for (case, _, code), result in zip(cases, results):
        if code is None:
            assert isinstance(result, AppendResult) and result.created, f"{case}: {result!r}"
        else:
            assert isinstance(result, Rejected) and result.code == code, f"{case}: {result!r}"
    assert cast.audit().entries == cast.size()
