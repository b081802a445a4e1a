"""The importer's batched heads are exactly what a lookup calls an item's head (provenance.head): checked over
every key of every scenario, plus containers nested in containers."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.conftest import T0, fixed_key
from tracker.epcis.state import LedgerState, heads_in
from tracker.ledger import Ledger
from tracker.provenance import head
from tracker.scenarios import Network, load_scenarios, make_sscc
from tracker.store import open_store

GTIN = "09506000134352"


def test_batched_heads_agree_with_the_lookup_for_every_key(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                           admin_key=fixed_key("admin"), now=T0)
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
    for scenario in load_scenarios():
        scenario.play(net, n="S")
    # Nesting: items in a case, the case on a pallet, the pallet moved, the case taken off, an item moved on.
    items = [f"01/{GTIN}/21/NEST{i}" for i in range(3)]
    case, pallet = "00/" + make_sscc("nest:case"), "00/" + make_sscc("nest:pallet")
    net.record("commission", "acme-cn", items=items, product={"gtin": GTIN, "name": "Nested"})
    net.record("aggregate", "acme-cn", container=case, items=items[:2])
    net.record("aggregate", "acme-cn", container=pallet, items=[case, items[2]])
    ship = net.record("ship", "acme-cn", items=[pallet], to="pearl-export")
    net.record("receive", "pearl-export", items=[pallet], from_="acme-cn", ship=ship.event_id)
    net.record("disaggregate", "pearl-export", container=pallet, items=[case])
    net.record("inspect", "de-customs", items=[pallet], decision="released")  # after the case left
    with ledger.store.read() as txn:
        keys = [row[0] for row in txn.conn.exec_driver_sql("SELECT DISTINCT key FROM key_events")
                if row[0].startswith(("01/", "00/"))]  # units only: licences are indexed too
        batched = heads_in(txn, keys)
    assert len(keys) > 20
    assert batched == {k: h for k in keys if (h := head(ledger, k)) is not None}
    assert batched[items[0]] != batched[items[2]]  # the case left the pallet before the inspection
    assert LedgerState(ledger).contents(pallet) == {items[2]}
    store.close()
