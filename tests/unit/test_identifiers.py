"""SPEC §1 identifiers: GTIN normalisation and check digits, serials (AI 21, character set 82), SSCC,
and every spelling a scanner may hand us (Digital Link, element strings, canonical keys)."""
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
    gs1_check_digit,
    is_container_key,
    is_item_key,
    normalize_gtin,
    normalize_sscc,
    parse_code,
    parse_key,
    read_code,
    validate_serial,
)

GTIN = "09506000134352"  # GS1's own example GTIN-13 9506000134352, padded
ITEM = ItemKey(gtin=GTIN, serial="ABC123")
SSCC = "106141411234567897"

# GS1 General Specifications figure 7.11-1, written out by hand (not copied from the module under test).
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
NOT_CSET82 = " #$@[\\]^`{|}~\t\né€ß\x00\x1d"


def reference_check_digit(body: str) -> int:
    """Independent mod-10: weight 3 on the digit next to the check digit, then alternate 1, 3, ..."""
    digits = [int(c) for c in body]
    weights = [3 if (len(digits) - i) % 2 == 1 else 1 for i in range(len(digits))]
    return -sum(d * w for d, w in zip(digits, weights)) % 10


# --- check digits and GTIN normalisation ---------------------------------------------------------

@pytest.mark.parametrize("body, digit", [
    ("950600013435", 2),   # GTIN-13 9506000134352
    ("400638133393", 1),   # EAN-13 4006381333931
    ("03600029145", 2),    # UPC-A 036000291452
    ("9638507", 4),        # EAN-8 96385074
    ("1061414100041", 5),  # GTIN-14 10614141000415
    ("10614141123456789", 7),  # SSCC 106141411234567897
    ("0000000", 0),
])
def test_check_digit_known_answers(body: str, digit: int) -> None:
    assert gs1_check_digit(body) == digit
    assert reference_check_digit(body) == digit


@settings(deadline=None)
@given(st.text(alphabet=string.digits, min_size=1, max_size=17))
def test_check_digit_matches_reference(body: str) -> None:
    assert gs1_check_digit(body) == reference_check_digit(body)


@pytest.mark.parametrize("raw, gtin14", [
    ("96385074", "00000096385074"),          # GTIN-8
    ("036000291452", "00036000291452"),      # GTIN-12 (UPC-A)
    ("9506000134352", "09506000134352"),     # GTIN-13
    ("4006381333931", "04006381333931"),     # GTIN-13
    ("10614141000415", "10614141000415"),    # GTIN-14 stays as is
    ("09506000134352", "09506000134352"),
])
def test_normalize_gtin_pads_to_14(raw: str, gtin14: str) -> None:
    assert normalize_gtin(raw) == gtin14


@pytest.mark.parametrize("raw", ["96385074", "036000291452", "9506000134352", "10614141000415"])
def test_normalize_gtin_rejects_every_wrong_check_digit(raw: str) -> None:
    for d in "0123456789":
        if d == raw[-1]:
            continue
        with pytest.raises(InvalidIdentifier) as exc:
            normalize_gtin(raw[:-1] + d)
        assert exc.value.field == "gtin"
        assert "check digit" in exc.value.message


@pytest.mark.parametrize("raw", [
    "", "1234567", "963850740", "12345678901", "950600013435200", "9506000134352 ", " 9506000134352",
    "95060001343a2", "９５０６０００１３４３５２", "٩٥٠٦٠٠٠١٣٤٣٥٢", "+9506000134352", "-96385074",
    None, 9506000134352,
])
def test_normalize_gtin_rejects_bad_shapes(raw) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_gtin(raw)
    assert exc.value.field == "gtin"


@settings(deadline=None)
@given(st.text(alphabet=string.digits, min_size=7, max_size=13), st.sampled_from([8, 12, 13, 14]))
def test_normalize_gtin_accepts_any_valid_body(digits: str, length: int) -> None:
    body = (digits * 2)[: length - 1]
    gtin = body + str(reference_check_digit(body))
    assert normalize_gtin(gtin) == gtin.zfill(14)


# --- serials (AI 21) -----------------------------------------------------------------------------

def test_every_cset82_character_is_a_valid_serial() -> None:
    assert len(CSET82) == 82
    for ch in CSET82:
        assert validate_serial(ch) == ch
    assert validate_serial(CSET82[:20]) == CSET82[:20]


@pytest.mark.parametrize("ch", list(NOT_CSET82))
def test_characters_outside_cset82_are_refused(ch: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_serial("AB" + ch + "C")
    assert exc.value.field == "serial"
    assert "82" in exc.value.message


def test_serial_length_is_1_to_20() -> None:
    assert validate_serial("X" * 20) == "X" * 20
    for bad in ("", "X" * 21):
        with pytest.raises(InvalidIdentifier) as exc:
            validate_serial(bad)
        assert exc.value.field == "serial"
    with pytest.raises(InvalidIdentifier):
        validate_serial(None)  # type: ignore[arg-type]


def test_item_key_validates_and_normalises() -> None:
    key = ItemKey(gtin="9506000134352", serial="ABC123")
    assert key.gtin == GTIN
    assert str(key) == f"01/{GTIN}/21/ABC123"
    with pytest.raises(InvalidIdentifier):
        ItemKey(gtin=GTIN, serial="has space")
    with pytest.raises(InvalidIdentifier):
        ItemKey(gtin="09506000134353", serial="A")
    with pytest.raises(Exception):
        key.serial = "other"  # type: ignore[misc]  # frozen


# --- SSCC ----------------------------------------------------------------------------------------

def test_sscc() -> None:
    assert normalize_sscc(SSCC) == SSCC
    assert str(ContainerKey(sscc=SSCC)) == f"00/{SSCC}"
    for bad in (SSCC[:-1] + "8", SSCC[:-1], "0" + SSCC, SSCC[:-1] + "x", ""):
        with pytest.raises(InvalidIdentifier) as exc:
            normalize_sscc(bad)
        assert exc.value.field == "sscc"
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_sscc(SSCC[:-1] + "8")
    assert "check digit" in exc.value.message


# --- canonical keys ------------------------------------------------------------------------------

def test_parse_key_canonical_forms() -> None:
    assert parse_key(f"01/{GTIN}/21/ABC123") == ITEM
    assert parse_key(f"00/{SSCC}") == ContainerKey(sscc=SSCC)
    # The serial is everything after the 4th slash: '/' is a legal AI-82 character.
    assert parse_key(f"01/{GTIN}/21/A/B") == ItemKey(gtin=GTIN, serial="A/B")
    assert is_item_key(f"01/{GTIN}/21/X") and not is_container_key(f"01/{GTIN}/21/X")
    assert is_container_key(f"00/{SSCC}") and not is_item_key(f"00/{SSCC}")


@pytest.mark.parametrize("key", [
    "01/9506000134352/21/ABC123",   # GTIN-13: valid GTIN, but not the canonical 14-digit spelling
    f"01/{GTIN}/10/ABC123",
    f"21/ABC/01/{GTIN}",
    f"01/{GTIN}",
    f"00/{SSCC}/x",
    f"01/{GTIN}/21/",
    "",
])
def test_parse_key_refuses_non_canonical(key: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_key(key)


# --- Digital Link --------------------------------------------------------------------------------

@pytest.mark.parametrize("url, serial", [
    (f"https://id.example.com/01/{GTIN}/21/ABC123", "ABC123"),
    (f"http://127.0.0.1:8000/01/{GTIN}/21/ABC123", "ABC123"),
    (f"https://id.example.com/01/{GTIN}/21/A%2FB", "A/B"),
    (f"https://id.example.com/01/{GTIN}/21/100%25", "100%"),
    (f"https://id.example.com/01/{GTIN}/21/%41%42%43", "ABC"),
    (f"https://id.example.com/01/{GTIN}/21/a%3Fb%26c", "a?b&c"),
    (f"https://id.example.com/01/{GTIN}/21/A+B", "A+B"),        # '+' is not a space in a path
    (f"https://id.example.com/01/{GTIN}/21/A%2BB", "A+B"),
    # resolver path prefixes
    (f"https://resolver.example.org/dl/01/{GTIN}/21/ABC123", "ABC123"),
    (f"https://resolver.example.org/a/b/c/01/{GTIN}/21/ABC123", "ABC123"),
    # query strings and fragments
    (f"https://id.example.com/01/{GTIN}/21/ABC123?linkType=gs1:pip", "ABC123"),
    (f"https://id.example.com/01/{GTIN}/21/ABC123?17=261231&10=LOT1", "ABC123"),
    (f"https://id.example.com/01/{GTIN}/21/ABC123#top", "ABC123"),
    # path only (what the consumer page route sees)
    (f"/01/{GTIN}/21/ABC123", "ABC123"),
    (f"/01/{GTIN}/21/ABC123?x=1", "ABC123"),
    (f"  https://id.example.com/01/{GTIN}/21/ABC123\n", "ABC123"),
    # a GTIN-13 in the URL still names the one canonical item
    ("https://id.example.com/01/9506000134352/21/ABC123", "ABC123"),
])
def test_parse_digital_link(url: str, serial: str) -> None:
    assert parse_code(url) == ItemKey(gtin=GTIN, serial=serial)


@pytest.mark.parametrize("url", [
    # GS1 Digital Link: GTIN key qualifiers come in the order 22 (CPV), 10 (lot), 21 (serial).
    f"https://id.example.com/01/{GTIN}/10/LOT1/21/ABC123",
    f"https://id.example.com/01/{GTIN}/22/V1/10/LOT1/21/ABC123",
])
def test_parse_digital_link_with_key_qualifiers_before_the_serial(url: str) -> None:
    # The same data as an element string, (01)...(10)LOT1(21)ABC123, is accepted; a Digital Link
    # printed by a manufacturer that includes the lot must name the same item.
    assert parse_code(url) == ItemKey(gtin=GTIN, serial="ABC123")


def test_parse_digital_link_container() -> None:
    assert parse_code(f"https://id.example.com/00/{SSCC}") == ContainerKey(sscc=SSCC)
    assert parse_code(f"https://id.example.com/dl/00/{SSCC}?x=y") == ContainerKey(sscc=SSCC)


@pytest.mark.parametrize("url", [
    f"https://id.example.com/01/{GTIN}",              # no serial: not a serialised item
    f"https://id.example.com/01/{GTIN}/21/",
    f"https://id.example.com/01/{GTIN}/21/A%20B",       # space is not AI-82
    "https://id.example.com/01/09506000134353/21/A",   # bad check digit
    f"https://id.example.com/01/{GTIN}/21/" + "X" * 21,
    "https://id.example.com/",
    "https://id.example.com/product/123",
    f"https://id.example.com/00/{SSCC[:-1]}8",
])
def test_parse_digital_link_refusals(url: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_code(url)


# --- element strings -----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    f"(01){GTIN}(21)ABC123",
    f"(01){GTIN}(10)LOT1(21)ABC123",
    f"(01){GTIN}(17)261231(21)ABC123",
    f"(21)ABC123(01){GTIN}",
    f"(01) {GTIN} (21) ABC123",            # spaces around the brackets, as people type them
])
def test_bracketed_element_strings(text: str) -> None:
    assert parse_code(text) == ITEM


@pytest.mark.parametrize("text", [
    f"01{GTIN}21ABC123",                  # fixed-length AI 01 needs no separator
    f"01{GTIN}\x1d21ABC123",
    f"01{GTIN} 21ABC123",                 # SPEC §1 example: typed by hand with a space
    f"01{GTIN}10LOT1\x1d21ABC123",         # GS ends the variable-length lot
    f"01{GTIN}10LOT1 21ABC123",
    f"01{GTIN}21ABC123\x1d10LOT1",
    f"01{GTIN}17261231 21ABC123",
    f"]d201{GTIN}21ABC123",               # symbology identifier (GS1 DataMatrix)
    f"]Q301{GTIN}\x1d21ABC123",           # GS1 QR
    f"\x1d01{GTIN}21ABC123",               # leading FNC1
])
def test_fnc1_and_space_separated_element_strings(text: str) -> None:
    assert parse_code(text) == ITEM


def test_element_string_container() -> None:
    assert parse_code(f"00{SSCC}") == ContainerKey(sscc=SSCC)
    assert parse_code(f"(00){SSCC}") == ContainerKey(sscc=SSCC)


@pytest.mark.parametrize("text", [
    f"01{GTIN} 89XYZ 21ABC123",
    f"01{GTIN}\x1d0721ABC",
    "89ABC",
    f"(01){GTIN}(89)X(21)ABC123",
])
def test_unknown_application_identifier_is_an_error(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        parse_code(text)
    assert exc.value.field == "code"
    assert "unknown" in exc.value.message and "application identifier" in exc.value.message


@pytest.mark.parametrize("text, elements", [
    # Was refused as "unknown" by the hand-written reader: 99, 98 and 7003 are GS1 AIs (company internal
    # information, expiry date and time). Any AI GS1 defines is kept as data beside the key.
    (f"01{GTIN} 99XYZ 21ABC123", {"99": "XYZ"}),
    (f"01{GTIN}\x1d98INTERNAL\x1d21ABC123", {"98": "INTERNAL"}),
    (f"(01){GTIN}(7003)2612311230(21)ABC123", {"7003": "2612311230"}),
    (f"01{GTIN}70032612311230\x1d21ABC123", {"7003": "2612311230"}),
])
def test_every_gs1_application_identifier_is_kept_as_data(text: str, elements: dict) -> None:
    scanned = read_code(text)
    assert scanned.unit == ITEM and dict(scanned.elements) == elements


@pytest.mark.parametrize("text", [
    "(99)ABC",                         # no item and no container
    f"(01){GTIN}",                     # GTIN without serial is not serialised
    f"01{GTIN}",
    f"01{GTIN[:-2]}",                  # truncated fixed-length field
    f"01{GTIN}21" + "X" * 21,           # serial too long
    f"01{GTIN}21",                     # empty serial
    f"(01){GTIN}(21)ABC123 trailing",
    f"(01){GTIN}(21)ABC 123",
    "(01)9506000134352(21)ABC123",      # AI (01) is 14 digits: short GTINs are padded only in Digital Links
    f"01{GTIN}21ABC123\n21X",           # a newline is not a separator
    "(1)X",
    "",
    "   ",
    "x" * 3000,
])
def test_element_string_refusals(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_code(text)


def test_parse_code_accepts_canonical_keys() -> None:
    assert parse_code(f"01/{GTIN}/21/ABC123") == ITEM
    assert parse_code(f"00/{SSCC}") == ContainerKey(sscc=SSCC)
    with pytest.raises(InvalidIdentifier):
        parse_code("01/9506000134352/21/ABC123")  # not canonical


def test_parse_code_rejects_non_strings() -> None:
    for bad in (None, 12, b"01/x"):
        with pytest.raises(InvalidIdentifier):
            parse_code(bad)  # type: ignore[arg-type]


# --- digital_link round trip ---------------------------------------------------------------------

def test_digital_link_exact_form() -> None:
    assert digital_link(ITEM, resolver="https://id.example.com") == f"https://id.example.com/01/{GTIN}/21/ABC123"
    assert digital_link(f"01/{GTIN}/21/A/B%", resolver="https://r.example/dl/") == \
        f"https://r.example/dl/01/{GTIN}/21/A%2FB%25"
    assert digital_link(ContainerKey(sscc=SSCC), resolver="https://r.example") == f"https://r.example/00/{SSCC}"


serials = st.text(alphabet=CSET82, min_size=1, max_size=20)
gtins = st.sampled_from(["96385074", "036000291452", "9506000134352", "4006381333931", "10614141000415"])
resolvers = st.sampled_from(["https://id.example.com", "https://id.example.com/", "http://127.0.0.1:8000",
                             "https://resolver.example.org/dl/gs1"])


@settings(max_examples=300, deadline=None)
@given(gtins, serials, resolvers)
def test_digital_link_round_trip(gtin: str, serial: str, resolver: str) -> None:
    key = ItemKey(gtin=gtin, serial=serial)
    url = digital_link(key, resolver=resolver)
    assert url.startswith(resolver.rstrip("/") + "/01/")
    assert parse_code(url) == key
    assert parse_code(url + "?linkType=all") == key
    assert parse_key(str(key)) == key
    assert digital_link(str(key), resolver=resolver) == url


@settings(deadline=None)
@given(gtins, serials)
def test_bracketed_element_string_round_trip(gtin: str, serial: str) -> None:
    key = ItemKey(gtin=gtin, serial=serial)
    assert parse_code(f"01{key.gtin}21{serial}") == key
    assert parse_code(f"]d201{key.gtin}21{serial}\x1d10LOT") == key
    if "(" in serial or ")" in serial:
        # A bracket inside a bracketed value cannot be told apart from the next AI: refused, never cut short.
        with pytest.raises(InvalidIdentifier, match="holds a bracket"):
            parse_code(f"(01){key.gtin}(21){serial}")
    else:
        assert parse_code(f"(01){key.gtin}(21){serial}") == key


# --- one parser: findings from the review of the three readers -------------------------------------------

@pytest.mark.parametrize("text", [
    f"(01){GTIN}(21)AB(C)D",      # read as serial "AB" before: a handheld signed for the wrong item
    f"(01){GTIN}(21)AB(C)",
    f"(01){GTIN}(21)AB)",
    f"(01){GTIN}(21)(AB",
    f"(01){GTIN}(10)L(1)(21)AB",
])
def test_a_bracketed_value_holding_a_bracket_is_refused_never_cut_short(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        read_code(text)
    assert "holds a bracket" in exc.value.message and exc.value.field == "code"
    # The same serial is read whole from the forms that are not ambiguous.
    assert read_code(f"01{GTIN}21AB(C)D").key == f"01/{GTIN}/21/AB(C)D"
    assert read_code(f"GTIN {GTIN} SN AB(C)D").key == f"01/{GTIN}/21/AB(C)D"


@pytest.mark.parametrize("serial", ["TLF008812\n", "TLF008812\r\n", "TLF\n008812", "\nTLF008812", "TLF008812\x00"])
def test_a_serial_matches_in_full_a_trailing_newline_is_not_admitted(serial: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_serial(serial)
    assert exc.value.field == "serial"
    with pytest.raises(InvalidIdentifier):
        ItemKey(gtin=GTIN, serial=serial)
    with pytest.raises(InvalidIdentifier):
        parse_key(f"01/{GTIN}/21/{serial}")


def test_a_gtin_or_sscc_matches_in_full() -> None:
    for bad in (GTIN + "\n", "\n" + GTIN, GTIN[:-1] + "\u0662"):
        with pytest.raises(InvalidIdentifier):
            normalize_gtin(bad)
    with pytest.raises(InvalidIdentifier):
        normalize_sscc(SSCC + "\n")


LABEL_GTIN = "09506000134352"


@pytest.mark.parametrize("text, key", [
    # exactly what scanners/labels.py prints under the code (human_lines), whole or line by line
    (f"GTIN {LABEL_GTIN}\nSN AASD0\n(01){LABEL_GTIN}(21)AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"GTIN {LABEL_GTIN} SN AASD0 (01){LABEL_GTIN}(21)AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"GTIN {LABEL_GTIN}\nSN DM/7(A)\n(01){LABEL_GTIN}(21)DM/7(A)", f"01/{LABEL_GTIN}/21/DM/7(A)"),
    (f"(01){LABEL_GTIN}(21)AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    ("SSCC 009506005334546813\n(00)009506005334546813", "00/009506005334546813"),
    # the common typed forms
    (f"GTIN {LABEL_GTIN} SN AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"gtin: {LABEL_GTIN} s/n: AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"{LABEL_GTIN} AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"{LABEL_GTIN} HLDD0", f"01/{LABEL_GTIN}/21/HLDD0"),   # was "unknown GS1 application identifier at '0950'"
    ("9506000134352 HLDD0", f"01/{LABEL_GTIN}/21/HLDD0"),
    (f"(01) {LABEL_GTIN} (21) AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"01 {LABEL_GTIN} 21 AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    (f"01 {LABEL_GTIN} 10 L1 21 AASD0", f"01/{LABEL_GTIN}/21/AASD0"),
    ("SSCC 009506005334546813", "00/009506005334546813"),
    ("(00)009506005334546813", "00/009506005334546813"),
    ("009506005334546813", "00/009506005334546813"),
])
def test_typing_what_the_label_prints_works(text: str, key: str) -> None:
    assert read_code(text).key == key
    assert str(parse_code(text)) == key


def test_every_label_the_label_module_prints_reads_back() -> None:
    from scanners.labels import human_lines

    for key in (ItemKey(gtin=LABEL_GTIN, serial="AASD0"), ItemKey(gtin=LABEL_GTIN, serial="A/B(C)?%"),
                ContainerKey(sscc="009506005334546813")):
        lines = human_lines(key)
        assert read_code("\n".join(lines)).key == str(key)
        assert read_code(" ".join(lines)).key == str(key)
        assert read_code(" ".join(lines[:-1])).key == str(key)


@pytest.mark.parametrize("text, words", [
    (f"GTIN {LABEL_GTIN} SN AASD0 (01){LABEL_GTIN}(21)OTHER", ("two different units",)),
    (f"GTIN {LABEL_GTIN}", ("no serial number",)),
    ("SN AASD0", ("needs its GTIN",)),
    (f"{LABEL_GTIN}", ("without a serial number",)),
    (f"{LABEL_GTIN} AASD0 extra", ("unknown GS1 application identifier",)),
    ("SSCC 009506005334546814", ("the check digit of SSCC 009506005334546814 is wrong: the last digit should be 3",)),
])
def test_typed_forms_that_do_not_name_one_unit_are_refused(text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        read_code(text)
    for w in words:
        assert w in exc.value.message, exc.value.message


def test_text_that_reads_two_ways_is_refused() -> None:
    # "17YYMMDD 0109506000134352" + "21X" is an expiry date, then GTIN + serial X (element string with a typed
    # space); when 17YYMMDD also has a valid GTIN-8 check digit it is as well GTIN 17YYMMDD with serial
    # "010950600013435221X". Two different items: refused, whichever the person meant.
    date = next(f"17{yy}{mm:02d}{dd:02d}" for yy in range(20, 40) for mm in range(1, 13) for dd in range(1, 29)
                if reference_check_digit(f"17{yy}{mm:02d}{dd:02d}"[:7]) == dd % 10)
    with pytest.raises(InvalidIdentifier, match="more than one way"):
        read_code(f"{date} 0109506000134352" + "21X")
    # The same data with brackets, or without the ambiguous space, is one item.
    assert read_code(f"({date[:2]}){date[2:]}(01){GTIN}(21)X").key == f"01/{GTIN}/21/X"
    assert read_code(f"{date}0109506000134352" + "21X").key == f"01/{GTIN}/21/X"


@pytest.mark.parametrize("text, message", [
    (f"(01){GTIN}(10)L1", "this code has no serial number: only serialised items are tracked"),
    (f"https://id.example.com/01/{GTIN}", "this code has no serial number: only serialised items are tracked"),
    ("(01)09506000134353(21)X", "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2"),
    ("09506000134353 X", "the check digit of GTIN 09506000134353 is wrong: the last digit should be 2"),
    (f"https://a/01/{GTIN}/21/S/10/L", "this link lists the lot after the serial; GS1 Digital Link puts 22, then 10, "
                                      "then 21"),
    (f"(01){GTIN}(17)271341(21)X", "(17) Expiration date (YYMMDD): '271341' is not valid; GS1 expects 6 digits"),
])
def test_errors_say_what_a_person_did_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        read_code(text)
    assert exc.value.code == "invalid_identifier"
    assert exc.value.message == f"{text!r}: {message}"
    assert "pattern" not in exc.value.message and "^" not in exc.value.message  # no parser internals


@pytest.mark.parametrize("prefix", ["]C1", "]e0", "]d2", "]Q3", "]J1", "\x1d", "]d2\x1d"])
def test_symbology_identifiers_and_leading_fnc1(prefix: str) -> None:
    scanned = read_code(f"{prefix}01{GTIN}17271231\x1d10LOT 1\x1d21ABC123".replace("LOT 1", "LOT1"))
    assert scanned.unit == ITEM and dict(scanned.elements) == {"17": "271231", "10": "LOT1"}


def test_element_string_with_gs_is_never_read_as_typed_text() -> None:
    # With GS separators the text came from a scanner: no "GTIN then serial" guessing on it.
    with pytest.raises(InvalidIdentifier):
        read_code(f"{GTIN}\x1dABC123")
