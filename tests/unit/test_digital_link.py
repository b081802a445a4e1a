"""GS1 Digital Link URIs read as the GS1 Digital Link Standard: URI Syntax (1.x) reads them.

Rules checked (each with the attacker's link that would get round it and the honest link that must pass):
scheme http/https only; custom path segments before the key; the path ENDS with the primary key and its
qualifiers, in the standard's order (GTIN: 22, then 10, then 21; skipping allowed, reordering not); no
trailing '/'; characters a URI may not carry raw are refused, '/' inside a value is %2F; query attributes
are kept and never name the unit; GTIN-8/12/13 padded to 14.

The standard's own example URIs use GS1's example keys (GTIN 09520123456788, SSCC 106141412345678908 with
contained GTIN 00614141123452). The convenience short names ('lot', 'ser', …) of the same examples were
deprecated in version 1.2 and are refused.
"""
from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.errors import InvalidIdentifier
from tracker.identifiers import (
    ContainerKey,
    ItemKey,
    digital_link,
    parse_digital_link,
    parse_key,
    parse_link_path,
    read_code,
)

GTIN = "09506000134352"
EXAMPLE_GTIN = "09520123456788"   # GS1's example GTIN in the Digital Link standard
SSCC = "106141412345678908"       # GS1's example SSCC (company prefix 0614141)
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def refused(text: str, *words: str) -> str:
    with pytest.raises(InvalidIdentifier) as exc:
        read_code(text)
    for w in words:
        assert w in exc.value.message, exc.value.message
    assert exc.value.code == "invalid_identifier"
    return exc.value.message


# --- the standard's examples ---------------------------------------------------------------------------

def test_standard_example_gtin_lot_serial_and_expiry() -> None:
    scanned = read_code(f"https://id.gs1.org/01/{EXAMPLE_GTIN}/10/ABC1/21/12345?17=180426")
    assert scanned.key == f"01/{EXAMPLE_GTIN}/21/12345"
    assert dict(scanned.elements) == {"10": "ABC1", "17": "180426"}


def test_standard_example_sscc_with_data_attributes() -> None:
    scanned = read_code(f"https://id.gs1.org/00/{SSCC}?02=00614141123452&37=25&10=ABC123")
    assert scanned.unit == ContainerKey(sscc=SSCC)
    assert dict(scanned.elements) == {"02": "00614141123452", "37": "25", "10": "ABC123"}


@pytest.mark.parametrize("url", [
    f"https://id.gs1.org/01/{EXAMPLE_GTIN}",
    f"https://id.gs1.org/01/{EXAMPLE_GTIN}/22/2A",
    f"https://id.gs1.org/01/{EXAMPLE_GTIN}/10/ABC123",
    f"https://id.gs1.org/01/{EXAMPLE_GTIN}?3103=000195",
])
def test_standard_examples_without_a_serial_name_no_tracked_item(url: str) -> None:
    refused(url, "no serial number", "only serialised items are tracked")


def test_deprecated_short_names_are_refused_with_the_number_to_use() -> None:
    refused("https://id.gs1.org/01/614141123452/lot/ABC1/ser/12345?exp=180426", "'lot'", "(10)")


# --- key qualifiers: the standard's order ----------------------------------------------------------------

@pytest.mark.parametrize("path, elements", [
    (f"/01/{GTIN}/21/S1", {}),
    (f"/01/{GTIN}/22/V1/21/S1", {"22": "V1"}),
    (f"/01/{GTIN}/10/L1/21/S1", {"10": "L1"}),
    (f"/01/{GTIN}/22/V1/10/L1/21/S1", {"22": "V1", "10": "L1"}),
])
def test_qualifiers_may_be_skipped(path: str, elements: dict) -> None:
    scanned = read_code("https://id.example.com" + path)
    assert scanned.key == f"01/{GTIN}/21/S1" and dict(scanned.elements) == elements


def test_lot_after_serial_is_refused_not_read_as_a_longer_serial() -> None:
    # Today's two readers disagreed: one read serial "12345", the web route read "12345/10/4512". Two items.
    message = refused("https://id.example.com/01/01234565/21/12345/10/4512")
    assert message.endswith("this link lists the lot after the serial; GS1 Digital Link puts 22, then 10, then 21")
    with pytest.raises(InvalidIdentifier, match="lot after the serial"):
        parse_link_path("/01/01234565/21/12345/10/4512")


@pytest.mark.parametrize("path, words", [
    (f"/01/{GTIN}/10/L1/22/V1/21/S1", ("the variant after the lot",)),
    (f"/01/{GTIN}/21/S1/22/V1", ("the variant after the serial",)),
    (f"/01/{GTIN}/21/S1/21/S2", ("the serial (21) twice",)),
    (f"/01/{GTIN}/17/271231/21/S1", ("does not end with a GS1 key",)),
    (f"/00/{SSCC}/21/S1", ("(21) is not a key qualifier",)),
])
def test_qualifiers_out_of_order_or_foreign_are_refused(path: str, words: tuple[str, ...]) -> None:
    refused("https://id.example.com" + path, *words)


# --- path shape ------------------------------------------------------------------------------------------

def test_no_trailing_slash() -> None:
    refused(f"https://id.example.com/01/{GTIN}/21/XYZ/", "does not end with '/'")
    refused(f"/01/{GTIN}/21/XYZ/", "does not end with '/'")
    assert read_code(f"https://id.example.com/01/{GTIN}/21/XYZ").key == f"01/{GTIN}/21/XYZ"


def test_custom_path_before_the_key_is_read_from_the_right() -> None:
    assert read_code(f"https://a/00/faux/01/{GTIN}/21/XYZ").key == f"01/{GTIN}/21/XYZ"
    assert read_code(f"https://a/01/{GTIN}/21/S/01/{GTIN}/21/XYZ").key == f"01/{GTIN}/21/XYZ"
    assert read_code(f"https://a/some-extra/pathinfo/01/{GTIN}/21/XYZ").key == f"01/{GTIN}/21/XYZ"
    # A right-most key that is not valid is not skipped in favour of one further left.
    refused(f"https://a/01/{GTIN}/21/XYZ/00/123", "SSCC '123' must be 18 digits")


def test_a_raw_slash_is_a_separator_and_2f_is_part_of_the_value() -> None:
    assert read_code(f"https://a/01/{GTIN}/21/A%2FB").key == f"01/{GTIN}/21/A/B"
    assert read_code(f"https://a/01/{GTIN}/21/A%2fB").key == f"01/{GTIN}/21/A/B"
    refused(f"https://a/01/{GTIN}/21/A/B", "%2F")
    # Double encoding stays what it says: the serial "%2F", never "/".
    assert read_code(f"https://a/01/{GTIN}/21/%252F").key == f"01/{GTIN}/21/%2F"


@pytest.mark.parametrize("raw, encoded", [("<", "%3C"), (">", "%3E"), ('"', "%22"), ("\\", "%5C"), ("^", "%5E"),
                                          ("`", "%60"), ("{", "%7B"), ("|", "%7C")])
def test_characters_a_uri_cannot_carry_must_be_percent_encoded(raw: str, encoded: str) -> None:
    refused(f"https://a/01/{GTIN}/21/A{raw}B", f"write {encoded}")
    refused(f"/01/{GTIN}/21/A{raw}B", "percent-encoded")
    if raw in CSET82:  # the same character percent-encoded is a valid serial
        assert read_code(f"https://a/01/{GTIN}/21/A{encoded}B").key == f"01/{GTIN}/21/A{raw}B"


@pytest.mark.parametrize("url, words", [
    (f"https://a/01/{GTIN}/21/A B", ("no spaces",)),
    (f"https://a/01/{GTIN}/21/A%2", ("'%'",)),
    (f"https://a/01/{GTIN}/21/A%ZZ", ("'%'",)),
    (f"https://a/01/{GTIN}/21/%FF", ("not text",)),
    (f"https://a/01/{GTIN}/21/TLF008812%0A", ("'\\n' is not allowed",)),   # a newline smuggled in encoded
    (f"https://a/01/{GTIN}/21/caf%C3%A9", ("'é' is not allowed",)),
    (f"https://a/01/{GTIN}//21/S", ("does not end with a GS1 key",)),
    ("https://a/01//21/S", ("GTIN ''",)),
    (f"https://a/01/{GTIN}/21//S", ("does not end with a GS1 key",)),
])
def test_malformed_values(url: str, words: tuple[str, ...]) -> None:
    refused(url, *words)


# --- scheme and host -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [f"ftp://a/01/{GTIN}/21/S", f"file:///01/{GTIN}/21/S", f"javascript://a/01/{GTIN}/21/S",
                                 f"gs1://a/01/{GTIN}/21/S"])
def test_only_http_and_https(url: str) -> None:
    refused(url, "https:// or http://")


def test_scheme_case_and_host_forms() -> None:
    for url in (f"HTTPS://ID.EXAMPLE.COM/01/{GTIN}/21/S", f"http://127.0.0.1:8000/01/{GTIN}/21/S",
                f"https://[::1]:8443/dl/01/{GTIN}/21/S"):
        assert read_code(url).key == f"01/{GTIN}/21/S"
    refused(f"https:///01/{GTIN}/21/S", "no host")
    refused(f"https:/a/01/{GTIN}/21/S", "no host")


# --- query attributes: kept, never identity --------------------------------------------------------------

def test_query_attributes_are_kept_but_never_name_the_item() -> None:
    plain = read_code(f"https://a/01/{GTIN}/21/S1")
    rich = read_code(f"https://a/01/{GTIN}/21/S1?17=271231&linkType=gs1%3Apip&utm_source=box#section")
    assert rich.key == plain.key
    assert dict(rich.elements) == {"17": "271231"}
    assert dict(rich.attributes) == {"linkType": "gs1:pip", "utm_source": "box"}


@pytest.mark.parametrize("query, words", [
    ("21=OTHER", ("the serial (21) twice",)),                 # a second serial must not slip in
    ("01=00000096385074", ("the GTIN (01) twice",)),
    ("10=L2", ("the lot (10) twice",)),
    ("17=271231&17=280101", ("(17) twice",)),
    ("17=271341", ("(17)", "is not valid")),                   # a 13th month
    ("89=X", ("unknown GS1 application identifier (89)",)),
    ("99999=1", ("unknown GS1 application identifier (99999)",)),
])
def test_query_attributes_that_contradict_or_do_not_exist_are_refused(query: str, words: tuple[str, ...]) -> None:
    refused(f"https://a/01/{GTIN}/10/L1/21/S1?{query}", *words)


def test_a_serial_only_in_the_query_is_no_serial() -> None:
    refused(f"https://a/01/{GTIN}?21=S1", "belongs in the path")


def test_same_value_in_path_and_query_is_accepted() -> None:
    assert read_code(f"https://a/01/{GTIN}/10/L1/21/S1?10=L1").key == f"01/{GTIN}/21/S1"


# --- keys ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gtin", ["96385074", "036000291452", "9506000134352", GTIN])
def test_short_gtins_are_padded_to_14(gtin: str) -> None:
    assert read_code(f"https://a/01/{gtin}/21/S").key == f"01/{gtin.zfill(14)}/21/S"


@pytest.mark.parametrize("gtin", ["123456789", "0950600013435", "095060001343520", "9506000134353"])
def test_bad_gtins_in_a_link(gtin: str) -> None:
    refused(f"https://a/01/{gtin}/21/S", "GTIN")


def test_other_primary_keys_are_not_tracked_units() -> None:
    refused("https://id.gs1.org/414/9520123456788", "neither a product (01) nor a shipping unit (00)", "(414)")


def test_parse_digital_link_returns_what_the_path_carried() -> None:
    link = parse_digital_link(f"https://a/dl/01/{GTIN}/22/V%2F1/10/L1/21/S%3F1?17=271231&linkType=all")
    assert link.key == ItemKey(gtin=GTIN, serial="S?1")
    assert dict(link.qualifiers) == {"22": "V/1", "10": "L1"}
    assert dict(link.data) == {"17": "271231"} and dict(link.attributes) == {"linkType": "all"}


# --- round trips -----------------------------------------------------------------------------------------

def check_digit(body: str) -> str:
    """Independent of the module: weight 3 on the digit next to the check digit, then 1, 3, ..."""
    return str(-sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body))) % 10)


gtins = st.builds(lambda length, digits: digits[:length - 1] + check_digit(digits[:length - 1]),
                  st.sampled_from([8, 12, 13, 14]), st.text(alphabet=string.digits, min_size=13, max_size=13))
serials = st.text(alphabet=CSET82, min_size=1, max_size=20)
prefixes = st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=8),
                    max_size=3).map(lambda parts: "".join("/" + p for p in parts))


@settings(max_examples=400, deadline=None)
@given(gtins, serials, prefixes)
def test_every_form_of_a_key_reads_to_the_same_canonical_key(gtin: str, serial: str, prefix: str) -> None:
    key = ItemKey(gtin=gtin, serial=serial)
    canonical = str(key)
    link = digital_link(key, resolver=f"https://id.example.com{prefix}")
    assert read_code(link).key == canonical
    assert read_code(link + "?17=271231&linkType=all").key == canonical
    assert parse_key(canonical) == key and read_code(canonical).key == canonical
    assert read_code(f"01{key.gtin}21{serial}").key == canonical
    assert read_code(f"]d201{key.gtin}21{serial}\x1d17271231").key == canonical
    assert read_code(f"]Q3\x1d01{key.gtin}10LOT\x1d21{serial}").key == canonical
    assert read_code(f"GTIN {key.gtin} SN {serial}").key == canonical
    assert read_code(f"{gtin} {serial}").key == canonical


@settings(max_examples=300, deadline=None)
@given(serials)
def test_digital_link_output_always_parses_back(serial: str) -> None:
    # Serials with '/', '%', '?', '&', '(' …: everything but letters, digits and '-._' is percent-encoded.
    key = ItemKey(gtin=GTIN, serial=serial)
    link = digital_link(key, resolver="https://r.example/dl/")
    tail = link.rsplit("/21/", 1)[1]
    assert all(ch.isalnum() or ch in "-._%" for ch in tail), link
    assert parse_digital_link(link).key == key
    assert parse_link_path(link[len("https://r.example"):]).key == key
