"""Long journeys: an item that has moved a hundred times is judged on every event, but shown in parts. The API
pages its path with a cursor (``?limit=&after=``) while the default answer stays SPEC §4's whole path; the
consumer page shows where it began, where it is now and every step a reason names, and pages the rest."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import T0, fixed_key
from tracker.scenarios import Network

GTIN = "09506000134352"
STEPS = 121
FORK_AT = 61  # the ship at this position continues from an older event: a fork the lookup must name


@pytest.fixture
def long_item(ledger) -> dict[str, Any]:
    net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(days=2), seed="long")
    net.add_party("long-maker", name="Long Maker", country="CN", roles=["manufacturer"], gs1_prefixes=["950600"])
    net.add_party("long-site", name="Long Site", country="CN", roles=["warehouse", "retailer"])
    item = f"01/{GTIN}/21/LONG-1"
    at = T0 + timedelta(days=3)
    loc = {"long-maker": net.location("long-maker"), "long-site": net.location("long-site")}

    def sign(stype: str, actor: str, **fields: Any):
        nonlocal at
        at += timedelta(minutes=5)
        return net.sign(net.statement(stype, actor, at=at, location=loc[actor], **fields), actor)

    envs = [sign("commission", "long-maker", items=[item], product={"gtin": GTIN, "name": "Travelling widget"})]
    holder, other = "long-maker", "long-site"
    while len(envs) < STEPS:
        base = envs[-3] if len(envs) == FORK_AT else envs[-1]  # the fork: continue from an older event
        ship = sign("ship", holder, items=[item], to=other, prev={item: base.event_id})
        envs.append(ship)
        if len(envs) < STEPS:
            envs.append(sign("receive", other, items=[item], from_=holder, ship=ship.event_id,
                             prev={item: ship.event_id}))
        holder, other = other, holder
    for r in ledger.append_batch(envs, now=at + timedelta(minutes=1)):
        assert not isinstance(r, Exception), r
    return {"key": item, "serial": "LONG-1", "ids": [e.event_id for e in envs], "fork": envs[FORK_AT].event_id}


def api(client, long_item, query: str = "") -> Any:
    r = client.get(f"/api/v1/items/{GTIN}/{long_item['serial']}{query}")
    return r


def test_the_default_answer_is_the_whole_path_as_spec_says(client, long_item):
    doc = api(client, long_item).get_json()
    assert [p["event_id"] for p in doc["path"]] == long_item["ids"]
    assert "page" not in doc
    assert set(doc) == {"item", "gtin", "serial", "product", "verdict", "reasons", "holder", "path", "checkpoint"}


def test_paging_with_the_cursor_walks_the_whole_path_and_every_page_carries_the_whole_verdict(client, long_item):
    whole = api(client, long_item).get_json()
    assert any(r.get("event_id") == long_item["fork"] for r in whole["reasons"]), whole["reasons"]
    seen, query, pages = [], "?limit=25", 0
    while True:
        doc = api(client, long_item, query).get_json()
        pages += 1
        assert len(doc["path"]) <= 25 and doc["page"]["total"] == STEPS
        assert doc["page"]["start"] == len(seen)
        # Judged on every event: the fork is a reason on every page, also those that do not show it.
        assert doc["verdict"] == whole["verdict"] and doc["reasons"] == whole["reasons"]
        seen.extend(p["event_id"] for p in doc["path"])
        if doc["page"]["next"] is None:
            break
        assert doc["page"]["next"] == seen[-1]
        query = f"?limit=25&after={doc['page']['next']}"
    assert seen == long_item["ids"] and pages == 5
    # One page of up to 1000 steps holds it all, and says there is no more.
    first = client.get("/api/v1/items/%s/%s?limit=1000" % (GTIN, long_item["serial"])).get_json()
    assert [p["event_id"] for p in first["path"]] == long_item["ids"] and first["page"]["next"] is None


@pytest.mark.parametrize("query, code", [
    ("?limit=0", "invalid_limit"), ("?limit=1001", "invalid_limit"), ("?limit=ten", "invalid_limit"),
    ("?after=sha256:" + "0" * 64, "invalid_cursor"), ("?after=../../etc", "invalid_cursor"),
])
def test_a_bad_limit_or_cursor_is_a_json_error_naming_it(client, long_item, query, code):
    r = api(client, long_item, query)
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == code


def test_the_consumer_page_summarises_a_long_journey_and_pages_the_rest(client, long_item):
    full = api(client, long_item).get_json()
    r = client.get(f"/01/{GTIN}/21/{long_item['serial']}", headers={"Accept": "text/html"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    shown = re.findall(r'<li class="step step-(?!gap)', html)
    flagged = {x["event_id"] for x in full["reasons"] if x.get("event_id")}
    # The summary keeps the origin, the latest three steps and every flagged step (a lone step between two
    # shown ones is shown too: folding one step saves nothing); everything else is behind "see every step".
    flagged_at = {i for i, e in enumerate(long_item["ids"]) if e in flagged}
    kept = {0} | set(range(STEPS - 3, STEPS)) | flagged_at
    kept |= {i for i in range(1, STEPS - 1) if i - 1 in kept and i + 1 in kept}
    assert flagged_at and len(shown) == len(kept) < 12
    ids_shown = re.findall(r'id="step-(\d+)"', html)
    assert {int(n) - 1 for n in ids_shown} == kept
    assert f"{STEPS} steps" in html and "more steps: see every step" in html
    assert f'data-verdict="{full["verdict"]}"' in html  # the verdict of the whole journey
    assert long_item["fork"] in html  # the flagged step is shown (its proof link names it)
    # Paged: every step, a hundred at a time, with a link to the next hundred.
    paged = client.get(f"/01/{GTIN}/21/{long_item['serial']}?limit=100", headers={"Accept": "text/html"})
    page_html = paged.get_data(as_text=True)
    assert len(re.findall(r'<li class="step step-(?!gap)', page_html)) == 100
    assert 'rel="next"' in page_html and "Steps 1–100 of 121" in page_html
    nxt = re.search(r'href="([^"]+)" rel="next"', page_html).group(1).replace("&amp;", "&")
    last = client.get(nxt, headers={"Accept": "text/html"}).get_data(as_text=True)
    assert len(re.findall(r'<li class="step step-(?!gap)', last)) == 21 and 'rel="next"' not in last


def test_a_short_journey_page_shows_every_step(client, world):
    key = world.items["genuine-cross-border"]
    gtin, serial = key.split("/")[1], key.split("/")[3]
    doc = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    html = client.get(f"/01/{gtin}/21/{serial}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert len(re.findall(r'<li class="step step-(?!gap)', html)) == len(doc["path"])
    assert "see every step" not in html and "journey-summary" not in html  # quiet steps fold, but all are here
