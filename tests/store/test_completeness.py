"""The lookup's completeness check (every leaf below the signed size is stored) between full counts: leaves
appended since the last full count are always counted, so an erasure among them shows at once."""
from __future__ import annotations

import sqlite3

from tests.conftest import T0
from tests.store.helpers import NOW, commission_envelope, item_key, key_of, register_cast
from tracker.ledger import Ledger
from tracker.provenance import lookup
from tracker.store import open_store


def test_an_erasure_among_leaves_appended_after_the_last_full_count_shows_at_once(sqlite_url, ledger_key,
                                                                                    admin_key):
    ledger = Ledger.create(open_store(sqlite_url), origin="waybill.test/ledger", ledger_key=ledger_key,
                           admin_key=admin_key, now=T0)
    try:
        register_cast(ledger, admin_key)
        for n in range(5):
            ledger.append(commission_envelope(key_of("acme"), "acme", [f"A{n}"]), now=NOW)
        assert lookup(ledger, item_key("A0")).verdict == "genuine"  # a full count, remembered
        later = [ledger.append(commission_envelope(key_of("acme"), "acme", [f"B{n}"]), now=NOW) for n in range(5)]
        db = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        with db:  # erase B2 (not the newest leaf) and every trace of it in the item index
            db.execute("DELETE FROM entries WHERE leaf_index = ?", (later[2].leaf_index,))
            db.execute("DELETE FROM key_events WHERE leaf_index = ?", (later[2].leaf_index,))
        db.close()
        for key in (item_key("A0"), item_key("B4")):  # within the full count's lifetime: the new leaves are counted
            answer = lookup(ledger, key)
            assert answer.verdict == "likely_counterfeit", (key, answer.to_json()["reasons"])
            assert "ledger_integrity_failure" in {r.code for r in answer.reasons}
    finally:
        ledger.store.close()
