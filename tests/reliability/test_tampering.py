"""Tampering (issue): someone with write access to the database — not to the ledger key — edits, deletes,
reorders or appends rows directly. The operator's `tracker verify` (the command, in a subprocess) must exit 1
naming the first bad entry, and the consumer page of every affected item must say ``ledger_integrity_failure``
instead of ``genuine`` — while items nobody touched stay ``genuine``.

tests/store/test_tamper.py proves the audit names the entry for many more edits and tests/unit/
test_lookup_integrity.py proves the lookups flag them; this suite checks what the operator and the consumer
actually see, through the installed command and the served pages, on both databases.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import pytest

from tests.reliability.harness import (Installation, RawDb, device_key, item_key, journey, now, register_parties,
                                       statement, verify_cli)
from tests.reliability.hostile import assert_no_server_error, page_path
from tracker import merkle
from web import create_app

ITEMS = 6


Attacker = RawDb  # raw SQL on the ledger database, no Waybill code involved


@dataclass
class Built:
    inst: Installation
    items: list[str]
    chains: dict[str, list[str]]  # item -> event ids
    index: dict[str, int]  # event id -> leaf index

    def leaf(self, item: int, step: int) -> int:
        return self.index[self.chains[self.items[item]][step]]


def build(inst: Installation) -> Built:
    register_parties(inst, {"tm-maker": {"roles": ["manufacturer"], "gs1_prefixes": ["950600"]}, "tm-shop": {"roles": ["warehouse", "retailer"]}})
    ledger = inst.open(writable=True)
    items, chains, index = [], {}, {}
    try:
        start = now() - timedelta(minutes=50)
        for i in range(ITEMS):  # one commit per item: several checkpoints
            plan = journey("tm-maker", "tm-shop", f"TAMPER{i}", start + timedelta(minutes=i))
            results = ledger.append_batch(plan, now=now())
            items.append(item_key(f"TAMPER{i}"))
            chains[items[-1]] = [r.event_id for r in results]
            index.update({r.event_id: r.leaf_index for r in results})
    finally:
        ledger.store.close()
    return Built(inst=inst, items=items, chains=chains, index=index)


def canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# --- the edits: each returns (first bad leaf, affected item numbers) -------------------------------------

def edit_payload(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """Change where the item was received (a byte of the signed statement); cover tracks in event_id."""
    leaf = b.leaf(2, 2)
    doc = json.loads(att.one("SELECT leaf_data FROM entries WHERE leaf_index = ?", (leaf,)))
    payload = base64.b64decode(doc["payload"]).replace(b"Site of tm-shop", b"Site of tm-sh0p")
    doc["payload"] = base64.b64encode(payload).decode()
    att.run("UPDATE entries SET leaf_data = ?, event_id = ? WHERE leaf_index = ?",
            (canonical(doc), "sha256:" + hashlib.sha256(payload).hexdigest(), leaf))
    return leaf, {2}


def delete_row(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """Erase a shipment from the record (its index rows stay: what lookups read)."""
    leaf = b.leaf(3, 1)
    att.run("DELETE FROM entries WHERE leaf_index = ?", (leaf,))
    return leaf, {3}


def delete_row_and_index(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """Erase the sale and every trace of it in the item index."""
    leaf = b.leaf(4, 3)
    att.run("DELETE FROM entries WHERE leaf_index = ?", (leaf,))
    att.run("DELETE FROM key_events WHERE leaf_index = ?", (leaf,))
    return leaf, {4}


def reorder_rows(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """Swap two whole rows of different items (every column moves: each row still matches its payload)."""
    a, c = b.leaf(1, 1), b.leaf(4, 2)
    att.run("UPDATE entries SET leaf_index = -1 WHERE leaf_index = ?", (a,))
    att.run("UPDATE entries SET leaf_index = ? WHERE leaf_index = ?", (a, c))
    att.run("UPDATE entries SET leaf_index = ? WHERE leaf_index = -1", (c,))
    att.run("UPDATE key_events SET leaf_index = -1 WHERE leaf_index = ?", (a,))
    att.run("UPDATE key_events SET leaf_index = ? WHERE leaf_index = ?", (a, c))
    att.run("UPDATE key_events SET leaf_index = ? WHERE leaf_index = -1", (c,))
    return min(a, c), {1, 4}


def append_row(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """A genuinely signed statement (the maker's own key) written past the end, with its index row and leaf
    node, as if the ledger had admitted it: a resale of item 5 that the ledger never saw."""
    size = att.one("SELECT count(*) FROM entries")
    item = b.items[5]
    env = statement("ship", "tm-shop", at=now() - timedelta(minutes=1), items=[item], to="tm-maker",
                    prev={item: b.chains[item][-1]})
    data = env.leaf_data()
    att.run("INSERT INTO entries (leaf_index, event_id, type, actor, time, leaf_data, ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (size, env.event_id, "ship", "tm-shop",
                                             json.loads(env.payload)["time"], data, "2026-01-01T00:00:00Z"))
    att.run("INSERT INTO key_events (key, leaf_index) VALUES (?, ?)", (item, size))
    att.run("INSERT INTO merkle_nodes (level, idx, hash) VALUES (0, ?, ?)", (size, merkle.leaf_hash(data)))
    return size, {5}


def edit_signature(att: Attacker, b: Built) -> tuple[int, set[int]]:
    """Swap in another valid-looking signature: the statement bytes are untouched."""
    leaf = b.leaf(0, 0)
    doc = json.loads(att.one("SELECT leaf_data FROM entries WHERE leaf_index = ?", (leaf,)))
    other = device_key("tm-shop")  # a real, registered key — of the wrong party
    doc["signatures"] = [{"keyid": other.keyid, "sig": base64.b64encode(other.sign(b"x")).decode()}]
    att.run("UPDATE entries SET leaf_data = ? WHERE leaf_index = ?", (canonical(doc), leaf))
    return leaf, {0}


CASES: dict[str, Callable[[Attacker, Built], tuple[int, set[int]]]] = {
    "edit-payload-and-event-id": edit_payload, "edit-signature": edit_signature, "delete-row": delete_row,
    "reorder-rows": reorder_rows, "append-row": append_row,
}
ERASURES = {"delete-row"}


def verdicts(inst: Installation, items: list[str]) -> dict[str, tuple[str, set[str]]]:
    """What the consumer page of each item says: (data-verdict, reason codes)."""
    app = create_app({"WAYBILL_CONFIG": inst.config, "RATELIMIT_ENABLED": False, "SECRET_KEY": "tamper-test"})
    client = app.test_client()
    out = {}
    try:
        for item in items:
            response = client.get(page_path(item))
            html = assert_no_server_error(response, item)
            assert response.status_code == 200, item
            verdict = re.search(r'data-verdict="([a-z_]+)"', html).group(1)
            out[item] = (verdict, set(re.findall(r'data-code="([a-z_]+)"', html)))
            answer = client.get(page_path(item), headers={"Accept": "application/json"}).get_json()
            assert answer["verdict"] == verdict
    finally:
        app.extensions["waybill"].store.close()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_named_by_tracker_verify_and_shown_on_every_affected_page(installation, backend, case,
                                                                                figures):
    built = build(installation)
    code, output = verify_cli(installation)
    assert code == 0, output
    before = verdicts(installation, built.items)
    assert all(v == ("genuine", {"sold"}) for v in before.values()), before  # sold, genuine, nothing else

    att = Attacker(installation)
    try:
        first_bad, affected = CASES[case](att, built)
    finally:
        att.close()

    code, output = verify_cli(installation)
    assert code == 1, f"tracker verify exited {code}: {output}"
    assert "ledger_integrity_failure" in output, output
    named = [int(n) for n in re.findall(r"\bentr(?:y|ies) (\d+)", output)]
    assert named and named[0] == first_bad, f"expected entry {first_bad} to be named first: {output}"
    assert "Traceback" not in output

    after = verdicts(installation, built.items)
    for n, item in enumerate(built.items):
        verdict, codes = after[item]
        if n in affected or case in ERASURES:  # a log with a hole in it vouches for no history
            assert verdict == "likely_counterfeit" and "ledger_integrity_failure" in codes, (case, item, after[item])
        else:
            assert (verdict, codes) == ("genuine", {"sold"}), (case, item, after[item])
    figures.update(backend=backend, case=case, entry_named=first_bad, affected_items=len(affected),
                   bystanders_genuine=sum(v == ("genuine", {"sold"}) for v in after.values()))


# --- an erasure that leaves the item's own history looking whole -----------------------------------------

def test_an_erased_sale_mid_ledger_is_named_by_tracker_verify(installation):
    built = build(installation)
    att = Attacker(installation)
    try:
        first_bad, _ = delete_row_and_index(att, built)
    finally:
        att.close()
    code, output = verify_cli(installation)
    assert code == 1 and re.findall(r"\bentr(?:y|ies) (\d+)", output)[0] == str(first_bad), output


def test_an_erased_sale_mid_ledger_is_not_genuine_on_its_page(installation):
    built = build(installation)
    att = Attacker(installation)
    try:
        _, affected = delete_row_and_index(att, built)
    finally:
        att.close()
    after = verdicts(installation, built.items)
    for item in built.items:  # the sold item looks unsold now; only the count against the checkpoint shows it
        verdict, codes = after[item]
        assert verdict == "likely_counterfeit" and "ledger_integrity_failure" in codes, (item, after[item])
