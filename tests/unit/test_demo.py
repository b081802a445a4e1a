"""The demo network is honest goods plus known fakes: every genuine lot's items and pallets must read genuine.
Before containers had a life of their own, every demo pallet looked up by its SSCC was LIKELY COUNTERFEIT
("Lotus Textiles repacked the item without ever having received it"), and staff saw it red on every pallet."""
from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

from tracker.demo import DemoSummary, build_demo
from tracker.ledger import Ledger
from tracker.provenance import lookup
from tracker.scenarios import Network, make_sscc, party_key
from tracker.store import open_store

START = datetime(2026, 4, 1, 6, 0, tzinfo=timezone.utc)
LOTS = 10


def test_every_genuine_lot_item_and_pallet_of_the_demo_is_genuine(tmp_path):
    db = tmp_path / "demo.db"
    admin = party_key("admin", seed="demo-test")
    ledger = Ledger.create(open_store(f"sqlite:///{db}"), origin="waybill.test/demo",
                           ledger_key=party_key("ledger", seed="demo-test"), admin_key=admin, now=START)
    net = Network(ledger, admin_key=admin, start=START)
    samples = build_demo(net, items=LOTS * 40, lot_size=40)
    now = net.clock
    with sqlite3.connect(db) as conn:
        keys = [k for (k,) in conn.execute("SELECT DISTINCT key FROM key_events")]
    pallets = {"00/" + make_sscc(f"demo-lot-{lot}") for lot in range(LOTS)}
    lot_items = [k for k in keys if re.fullmatch(r"01/\d{14}/21/L\d{4}S\d{3}", k)]
    assert len(lot_items) == LOTS * 40 and pallets <= set(keys)
    judged = {k: lookup(ledger, k, now=now) for k in sorted(pallets) + lot_items}
    wrong = {}
    for key, answer in judged.items():
        codes = {r.code for r in answer.reasons}
        # A lot whose pallet customs still holds is rightly suspicious, for that reason alone.
        held = answer.verdict == "suspicious" and codes - {"in_transit"} == {"held_by_customs"}
        if answer.verdict != "genuine" and not held:
            wrong[key] = (answer.verdict, sorted(codes))
    assert wrong == {}, list(wrong.items())[:5]
    assert sum(a.verdict == "genuine" for a in judged.values()) >= len(judged) // 2
    assert samples["pallet"] and all(judged[p].verdict == "genuine" for p in samples["pallet"])
    summary = DemoSummary(created=True, items=LOTS * 40, events=ledger.size(), samples=samples)
    text = summary.describe("https://demo.example")
    assert "genuine pallets (by SSCC):" in text
    assert f"https://demo.example/{samples['pallet'][0]}" in text
    ledger.store.close()
