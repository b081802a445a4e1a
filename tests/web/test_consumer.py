"""The consumer page (SPEC §5): verdict banner, plain-language reasons, the path as a timeline, the verified
panel, JSON by content negotiation; and nothing private on it."""
from __future__ import annotations

import re
from html import unescape

import pytest

from tests.web.conftest import GTIN, commission, item_path, sign
from tracker.scenarios import party_key


def page(client, key: str, suffix: str = "", **headers):
    gtin, serial = item_path(key)
    return client.get(f"/01/{gtin}/21/{serial}{suffix}", headers=headers)


def verdict_of(html: str) -> str:
    match = re.search(r'<[a-z]+ id="verdict"[^>]*data-verdict="([a-z_]+)"', html)
    assert match, "no verdict element"
    return match.group(1)


def timeline(html: str) -> list[str]:
    return re.findall(r'<li class="step step-[a-z]+[^"]*"[^>]*data-type="([a-z]+)"', html)


def text_of(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("name", ["genuine-cross-border", "genuine-pallet", "in-transit", "held-by-customs",
                                  "custody-gap"])
def test_item_page_shows_the_verdict_and_the_timeline(client, world, name):
    response = page(client, world.items[name])
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert verdict_of(html) == world.verdicts[name]
    answer = page(client, world.items[name], Accept="application/json").get_json()
    assert timeline(html) == [step["type"] for step in answer["path"]]
    for step in answer["path"]:
        assert step["actor_name"] in unescape(html)
        assert f'datetime="{step["time"]}"' in html
        assert f'data-country="{step["location"]["country"]}"' in html
    steps = {step["event_id"]: n for n, step in enumerate(answer["path"], start=1)}
    for reason in answer["reasons"]:
        assert f'data-code="{reason["code"]}"' in html
        if reason["event_id"] in steps:  # the step it points at is marked and linked from the reason
            n = steps[reason["event_id"]]
            assert f'href="#step-{n}"' in html and f'id="step-{n}"' in html


def test_genuine_page_in_plain_words(client, world):
    html = page(client, world.items["genuine-cross-border"]).get_data(as_text=True)
    text = text_of(html)
    assert verdict_of(html) == "genuine"
    assert "Genuine" in text and "Aurora wireless earbuds" in text and "by Acme Manufacturing" in text
    for sentence in ("Made and registered", "Sent to Pearl River Export", "Received from Acme Manufacturing",
                     "Customs cleared it", "Sent to Hamburg Logistics", "Received from Hamburg Logistics"):
        assert sentence in text
    assert "German Customs Hamburg" in text and "Customs" in text and "Germany" in text and "China" in text
    assert 'class="reason' not in html


def test_suspicious_page_explains_the_hold(client, world):
    html = page(client, world.items["held-by-customs"]).get_data(as_text=True)
    text = text_of(html)
    assert verdict_of(html) == "suspicious"
    assert "Suspicious" in text and "Held by customs" in text
    assert "German Customs Hamburg is holding it for inspection." in text
    assert "Customs held it for inspection" in text
    assert "On its way" in text


def test_counterfeit_page_explains_the_gap(client, world):
    html = page(client, world.items["custody-gap"]).get_data(as_text=True)
    text = text_of(html)
    assert verdict_of(html) == "likely_counterfeit"
    assert "Likely counterfeit" in text and "A step in its journey is missing" in text
    assert "without a record of receiving it: a step is missing" in text


def test_in_transit_addressee_is_named_even_before_it_acts(client, world):
    text = text_of(page(client, world.items["in-transit"]).get_data(as_text=True))
    assert "On its way" in text
    assert re.search(r"Sent to [A-Z][a-z]+ [A-Z]", text)  # a display name, not a party id
    assert "Sent to hh-" not in text and "Sent to berlin-" not in text


def test_page_shows_the_checkpoint_and_links_to_working_inclusion_proofs(client, ledger, world):
    key = world.items["genuine-pallet"]
    html = page(client, key).get_data(as_text=True)
    answer = page(client, key, Accept="application/json").get_json()
    panel = html[html.index('id="verified"'):]
    assert unescape(answer["checkpoint"]).strip() in unescape(panel)
    size = ledger.verified_checkpoint(answer["checkpoint"]).size
    links = [unescape(h) for h in re.findall(r'href="(/api/v1/proof/inclusion\?[^"]+)"', panel)]
    assert len(links) == len(answer["path"])
    for step, link in zip(answer["path"], links):
        assert link == f"/api/v1/proof/inclusion?event_id={step['event_id']}&tree_size={size}"
        proof = client.get(link)
        assert proof.status_code == 200 and proof.get_json()["tree_size"] == size


def test_no_private_data_on_the_page(client, world, ledger):
    held = world.items["held-by-customs"]
    html = page(client, held).get_data(as_text=True)
    assert "documents incomplete" not in html  # the customs officer's note is business data
    for pid in ("acme-cn", "pearl-export", "de-customs"):
        for device in (0, 1):
            key = party_key(pid, device)
            assert key.keyid not in html and key.public_key_b64 not in html
    assert "public_key" not in html and "keyid" not in html and '"prev"' not in html
    assert "signatures" not in html and "payload" not in html
    # Event ids appear only where the SPEC path shows them: in the proof links of the verified panel.
    before_panel = html[:html.index('id="verified"')]
    assert "sha256:" not in before_panel


def test_unknown_serial_is_a_clear_200_page(client):
    response = client.get(f"/01/{GTIN}/21/NEVERMADE")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert verdict_of(html) == "likely_counterfeit"
    assert "We have no record of this item — likely counterfeit" in unescape(html)
    assert 'data-code="unknown_item"' in html and timeline(html) == []


@pytest.mark.parametrize("path", ["/01/09506000134353/21/X", "/01/12345/21/X", "/01/ABCDEFGHIJKLMN/21/X",
                                  f"/01/{GTIN}/21/{'A' * 21}", f"/01/{GTIN}/21/bad%20serial"])
def test_malformed_codes_get_a_friendly_400_page(client, path):
    response = client.get(path)
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'id="error"' in html and "not a valid product code" in html
    assert 'action="/search"' in html  # a way forward
    assert "Traceback" not in html
    json_response = client.get(path, headers={"Accept": "application/json"})
    assert json_response.status_code == 400
    assert json_response.get_json()["error"]["code"] == "invalid_identifier"


def test_accept_json_returns_the_provenance_answer(client, world):
    key = world.items["held-by-customs"]
    response = page(client, key, Accept="application/json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    gtin, serial = item_path(key)
    assert response.get_json() == client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    assert "Accept" in response.headers["Vary"]
    assert "Accept" in page(client, key).headers["Vary"]
    browser = page(client, key, Accept="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert browser.mimetype == "text/html"


def test_digital_link_variants_land_on_the_item_page(client, world):
    key = world.items["genuine-cross-border"]
    gtin, serial = item_path(key)
    for path in (f"/01/{gtin}/21/{serial}?17=270101", f"/01/{gtin}/21/{serial}?17=270101&10=L1",
                 f"/gs1/resolver/01/{gtin}/21/{serial}", f"/dl/01/{gtin}/21/{serial}?linkType=all",
                 f"/01/{gtin[1:]}/21/{serial}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert verdict_of(response.get_data(as_text=True)) == "genuine", path


def test_serials_with_reserved_characters(client):
    for serial in ("A/B", "a%b&c?d", "x+y=z"):
        assert client.post("/api/v1/events", json=commission([serial]).to_json()).status_code == 201
        from urllib.parse import quote

        response = client.get(f"/01/{GTIN}/21/{quote(serial, safe='')}")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert verdict_of(html) == "genuine" and f"<dd>{serial}</dd>" in unescape(html)


def test_page_escapes_what_signers_wrote(client):
    env = sign("commission", "acme-cn", items=[f"01/{GTIN}/21/XSS1"],
               product={"gtin": GTIN, "name": "<script>alert(1)</script><img src=x onerror=alert(2)>"})
    assert client.post("/api/v1/events", json=env.to_json()).status_code == 201
    html = client.get(f"/01/{GTIN}/21/XSS1").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_page_is_fast_enough_to_render_many_times(client, world):
    import time

    key = world.items["genuine-cross-border"]
    start = time.perf_counter()
    for _ in range(20):
        assert page(client, key).status_code == 200
    assert (time.perf_counter() - start) / 20 < 0.1


def test_digital_links_with_lot_and_variant_qualifiers_redirect_to_the_item(client, world):
    gtin, serial = item_path(world.items["genuine-cross-border"])
    for path in (f"/01/{gtin}/10/LOT1/21/{serial}", f"/01/{gtin}/22/2A/10/LOT1/21/{serial}?17=270101",
                 f"/resolver/01/{gtin}/10/L-1/21/{serial}"):
        response = client.get(path)
        assert response.status_code == 307, path
        assert response.headers["Location"].split("?")[0] == f"/01/{gtin}/21/{serial}"
        assert verdict_of(client.get(response.headers["Location"]).get_data(as_text=True)) == "genuine"
    for path in (f"/01/{gtin}/10/LOT1", f"/01/{gtin}", f"/01/{gtin}/99/x/21/{serial}"):
        response = client.get(path)
        assert response.status_code in (400, 404) and response.mimetype == "text/html", path
