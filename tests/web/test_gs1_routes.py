"""Every web entry point reads GS1 codes with the core's one parser: the consumer page behind the QR code
(read from the RAW request path, so ``%2F`` stays inside a serial and a real '/' does not), the search box,
the staff scan resolver and the JSON API. A bad link is a 400 that names the rule it broke."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.web.conftest import GTIN, commission
from tests.web.staffside import client as staff_client  # noqa: F401  (fixture)
from tests.web.staffside import logged_in, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)

JSON = {"Accept": "application/json"}


def post(client, serials: list[str]) -> None:
    response = client.post("/api/v1/events", json=commission(serials).to_json())
    assert response.status_code == 201, response.get_json()


def error_of(response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert body["error"]["code"] in ("invalid_identifier", "not_an_item"), body
    return body["error"]["message"]


# --- the consumer page: raw path, the standard's rules ----------------------------------------------------

def test_an_encoded_slash_is_part_of_the_serial_a_raw_slash_is_not(client):
    post(client, ["A/B", "A"])
    page = client.get(f"/01/{GTIN}/21/A%2FB", headers=JSON)
    assert page.status_code == 200 and page.get_json()["serial"] == "A/B"
    # Before: the decoded path made /21/A/B the item "A/B" as well; now it is a link with a stray segment.
    assert "%2F" in error_of(client.get(f"/01/{GTIN}/21/A/B", headers=JSON))
    assert "%2F" in error_of(client.get(f"/dl/01/{GTIN}/21/A/B", headers=JSON))
    html = client.get(f"/01/{GTIN}/21/A/B")
    assert html.status_code == 400 and html.mimetype == "text/html" and "%2F" in html.get_data(as_text=True)


@pytest.mark.parametrize("path, words", [
    # read today as serial "12345/10/4512" by this route and as "12345" by the core: two different items
    ("/01/01234565/21/12345/10/4512", "lists the lot after the serial; GS1 Digital Link puts 22, then 10, then 21"),
    (f"/01/{GTIN}/10/L1/22/V1/21/S1", "lists the variant after the lot"),
    (f"/01/{GTIN}/21/XYZ/", "does not end with '/'"),
    (f"/resolver/01/{GTIN}/21/XYZ/", "does not end with '/'"),
    (f"/01/{GTIN}/21/S1?21=S2", "the serial (21) twice"),
    (f"/01/{GTIN}/21/S1?17=271341", "(17)"),
    (f"/01/{GTIN}/21/S1?89=X", "unknown GS1 application identifier (89)"),
    (f"/01/{GTIN}/21/TLF008812%0A", "is not allowed"),
])
def test_links_that_break_a_rule_are_400_naming_it(client, path, words):
    assert words in error_of(client.get(path, headers=JSON))
    assert client.get(path).status_code == 400


def test_characters_that_must_be_percent_encoded(client):
    post(client, ["A<B"])
    # The test client sends the path as given; '<' arrives raw, as a hand-made request would send it.
    environ = {"RAW_URI": f"/01/{GTIN}/21/A<B", "REQUEST_URI": f"/01/{GTIN}/21/A<B"}
    raw = client.get(f"/01/{GTIN}/21/A<B", headers=JSON, environ_overrides=environ)
    assert "must be percent-encoded" in error_of(raw)
    good = client.get(f"/01/{GTIN}/21/A%3CB", headers=JSON)
    assert good.status_code == 200 and good.get_json()["serial"] == "A<B"


def test_honest_variants_still_land_on_the_item(client, world):
    key = world.items["genuine-cross-border"]
    serial = key.rsplit("/", 1)[1]
    for path in (f"/00/faux/01/{GTIN}/21/{serial}", f"/01/{GTIN[1:]}/21/{serial}",
                 f"/01/{GTIN}/21/{serial}?17=271231&linkType=all", f"/01/{GTIN}/21/{serial}#top"):
        response = client.get(path, headers=JSON)
        assert response.status_code == 200, path
        assert response.get_json()["item"] == key and response.get_json()["verdict"] == "genuine"


def test_qualified_links_redirect_to_the_canonical_page_with_the_query(client, world):
    key = world.items["genuine-cross-border"]
    serial = key.rsplit("/", 1)[1]
    response = client.get(f"/dl/01/{GTIN}/22/2A/10/L%2F1/21/{serial}?17=271231")
    assert response.status_code == 307
    assert response.headers["Location"] == f"/01/{GTIN}/21/{serial}?17=271231"


def test_a_container_link_is_not_a_product_page(client):
    assert "shipping unit" in error_of(client.get(f"/x/01/{GTIN}/21/S/00/106141412345678908", headers=JSON))


def test_item_links_built_by_the_app_encode_the_slash(client, app):
    post(client, ["/A1", "A/B?C"])
    with app.test_request_context():
        from web.consumer.views import item_url

        for serial in ("/A1", "A/B?C"):
            url = item_url(f"01/{GTIN}/21/{serial}")
            assert url == f"/01/{GTIN}/21/{quote(serial, safe='')}"
            assert client.get(url, headers=JSON).get_json()["serial"] == serial


# --- the search box: what is printed under the QR code ----------------------------------------------------

@pytest.mark.parametrize("code", [
    f"GTIN {GTIN}\nSN GENW\n(01){GTIN}(21)GENW",       # the whole label, as scanners/labels.py prints it
    f"GTIN {GTIN} SN GENW",
    f"{GTIN} GENW",
    f"(01) {GTIN} (21) GENW",
    f"01 {GTIN} 21 GENW",
    f"(01){GTIN}(7003)2612311230(21)GENW",                # any GS1 AI beyond the key is data
])
def test_search_reads_what_the_label_prints(client, code):
    response = client.get("/search", query_string={"code": code})
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    assert response.headers["Location"] == f"/01/{GTIN}/21/GENW"


@pytest.mark.parametrize("code, words", [
    (f"(01){GTIN}(21)AB(C)D", "holds a bracket"),
    (f"https://id.example.com/01/{GTIN}/21/12345/10/4512", "lists the lot after the serial"),
    ("09506000134353 GENW", "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2"),
])
def test_search_refusals_say_what_is_wrong(client, code, words):
    response = client.get("/search", query_string={"code": code})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert words in response.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"')


# --- the API ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [f"/api/v1/items/{GTIN}/A%0A", f"/api/v1/items/{GTIN}/A%2",
                                  f"/api/v1/items/{GTIN}/A/B/C", f"/api/v1/items/{GTIN}//head"])
def test_api_item_paths_go_through_the_parser(client, path):
    error_of(client.get(path))


def test_api_refuses_raw_characters_that_must_be_encoded(client):
    environ = {"RAW_URI": f"/api/v1/items/{GTIN}/A<B"}
    assert "percent-encoded" in error_of(client.get(f"/api/v1/items/{GTIN}/A<B", environ_overrides=environ))


def test_without_a_raw_uri_the_decoded_path_is_used(client):
    # A server that gives no RAW_URI/REQUEST_URI: the plain serial still works (a %2F cannot be told apart).
    post(client, ["PLAIN1"])
    response = client.get(f"/api/v1/items/{GTIN}/PLAIN1", environ_overrides={"RAW_URI": "", "REQUEST_URI": ""})
    assert response.status_code == 200 and response.get_json()["serial"] == "PLAIN1"


def test_a_raw_uri_that_does_not_match_the_routed_path_is_not_trusted(client):
    post(client, ["REAL1"])
    forged = {"RAW_URI": f"/api/v1/items/{GTIN}/OTHER", "REQUEST_URI": f"/api/v1/items/{GTIN}/OTHER"}
    response = client.get(f"/api/v1/items/{GTIN}/REAL1", environ_overrides=forged)
    assert response.get_json()["serial"] == "REAL1"


# --- the staff scan resolver ----------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "GTIN 09506000134352 SN TRNW",
    "09506000134352 TRNW",
    "(01) 09506000134352 (21) TRNW",
    "01 09506000134352 21 TRNW",
    "https://waybill.example/dl/01/09506000134352/10/LOT1/21/TRNW?17=271231",
])
def test_staff_resolver_reads_typed_codes(staff_client, code):  # noqa: F811
    logged_in(staff_client, "hh-staff")
    response = staff_client.get("/staff/resolve", query_string={"code": code}, headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["key"] == "01/09506000134352/21/TRNW"


def test_staff_resolver_refuses_an_ambiguous_bracketed_serial(staff_client):  # noqa: F811
    logged_in(staff_client, "hh-staff")
    response = staff_client.get("/staff/resolve", query_string={"code": "(01)09506000134352(21)TRNW(C)D"},
                                headers=JSON)
    assert "holds a bracket" in error_of(response)
