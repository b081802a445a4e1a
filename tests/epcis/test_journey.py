"""A multi-hop journey told by three parties' EPCIS documents gets the same consumer verdict as the same journey
recorded natively; a journey missing its receive is flagged the same way too; the ledger still audits clean."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import T0, fixed_key
from tests.epcis import builders as b
from tracker.epcis.ingest import import_document
from tracker.ledger import Ledger
from tracker.provenance import Provenance, lookup
from tracker.scenarios import Network
from tracker.store import open_store

GTIN = "09506000134352"
A, B = f"01/{GTIN}/21/EP-A", f"01/{GTIN}/21/EP-B"
P = "00/009506000134352008"
A_URN, B_URN = b.sgtin("950600", "0013435", "EP-A"), b.sgtin("950600", "0013435", "EP-B")
P_URN = b.sscc("0950600", "0013435200")
PARTIES = [
    ("acme-cn", "Acme Manufacturing", "CN", ["manufacturer"], ["950600"]),
    ("de-customs", "German Customs Hamburg", "DE", ["customs"], []),
    ("berlin-shop", "Berlin Retail", "DE", ["retailer"], []),
]
START = T0 + timedelta(days=2)
NOW = START + timedelta(days=30)


def _at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def _network(path: Path) -> Network:
    store = open_store(f"sqlite:///{path}")
    ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                           admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=START - timedelta(hours=1))
    for pid, name, country, roles, prefixes in PARTIES:
        net.add_party(pid, name=name, country=country, roles=roles, gs1_prefixes=prefixes)
    return net


def _native(net: Network, *, with_receive: bool) -> None:
    net.record("commission", "acme-cn", at=_at(1), items=[A, B],
               product={"gtin": GTIN, "name": "Aurora wireless earbuds", "lot": "L7"})
    net.record("aggregate", "acme-cn", at=_at(2), container=P, items=[A, B])
    ship = net.record("ship", "acme-cn", at=_at(3), items=[P], to="berlin-shop")
    net.record("inspect", "de-customs", at=_at(300), items=[P], decision="released")
    if with_receive:
        net.record("receive", "berlin-shop", at=_at(301), items=[P], from_="acme-cn", ship=ship.event_id)
    net.record("disaggregate", "berlin-shop", at=_at(302), container=P, items=[A, B])
    net.record("sell", "berlin-shop", at=_at(320), items=[A])


def _documents(*, with_receive: bool) -> list[tuple[str, dict[str, Any]]]:
    manufacturer = b.document([
        b.commissioning(_at(1), [A_URN, B_URN], lot="L7", name="Aurora wireless earbuds"),
        b.aggregation("ADD", "packing", _at(2), P_URN, [A_URN, B_URN]),
        b.shipping(_at(3), [P_URN], by="acme-cn", to="berlin-shop",
                   bizTransactionList=[{"type": "desadv", "bizTransaction": "urn:epcglobal:cbv:bt:0950600000009:ASN7"}]),
    ])
    customs = b.document([b.inspecting(_at(300), [P_URN], "conformant")])
    shop = b.document(([b.receiving(_at(301), [P_URN], by="berlin-shop", sender="acme-cn")] if with_receive else [])
                      + [b.aggregation("DELETE", "unpacking", _at(302), P_URN, [A_URN, B_URN]),
                         b.selling(_at(320), [A_URN])])
    return [("acme-cn", manufacturer), ("de-customs", customs), ("berlin-shop", shop)]


def _imported(net: Network, *, with_receive: bool) -> None:
    for pid, doc in _documents(with_receive=with_receive):
        results = import_document(net.ledger, doc, key=net.keys[pid][0], now=NOW)
        assert [r.status for r in results] == ["created"] * len(results), [r.to_json() for r in results]


def _judged(answer: Provenance) -> dict[str, Any]:
    return {"verdict": answer.verdict, "codes": sorted(r.code for r in answer.reasons), "holder": answer.holder,
            "path": [(p["type"], p["actor"], p.get("to"), p.get("decision")) for p in answer.path],
            "product": answer.product}


@pytest.mark.parametrize("with_receive", [True, False], ids=["whole-journey", "missing-receive"])
def test_epcis_journey_is_judged_like_the_native_one(tmp_path: Path, with_receive: bool) -> None:
    native, imported = _network(tmp_path / "native.db"), _network(tmp_path / "epcis.db")
    _native(native, with_receive=with_receive)
    _imported(imported, with_receive=with_receive)
    for key in (A, B, P):
        want, got = _judged(lookup(native.ledger, key)), _judged(lookup(imported.ledger, key))
        assert got == want, key
    answer = lookup(imported.ledger, B)
    if with_receive:
        assert answer.verdict == "genuine" and answer.holder == "berlin-shop"
    else:  # the shop unpacked and sold goods it never confirmed receiving
        assert answer.verdict == "likely_counterfeit" and answer.has("custody_gap")
    report = imported.ledger.audit()  # `tracker verify`: every imported statement is a signed, provable entry
    assert report.entries == imported.ledger.size()


def test_reimporting_the_documents_changes_nothing(tmp_path: Path) -> None:
    net = _network(tmp_path / "epcis.db")
    _imported(net, with_receive=True)
    size = net.ledger.size()
    for pid, doc in _documents(with_receive=True):
        results = import_document(net.ledger, doc, key=net.keys[pid][0], now=NOW)
        assert {r.status for r in results} == {"existing"}
    assert net.ledger.size() == size


def test_a_document_signed_by_the_wrong_party_is_refused_per_event(tmp_path: Path) -> None:
    net = _network(tmp_path / "epcis.db")
    manufacturer = _documents(with_receive=True)[0][1]
    # The shop's key cannot record the manufacturer's shipment: the event names acme-cn as the shipper.
    import_document(net.ledger, b.document(manufacturer["epcisBody"]["eventList"][:2]), key=net.keys["acme-cn"][0],
                    now=NOW)
    results = import_document(net.ledger, b.document(manufacturer["epcisBody"]["eventList"][2:]),
                              key=net.keys["berlin-shop"][0], now=NOW)
    assert results[0].status == "refused" and results[0].error is not None
    assert results[0].error.code == "wrong_signer"
