"""Whatever a scanner or a person hands us, read to one canonical key: a GS1 Digital Link, a canonical key, a
GS1 element string (FNC1/GS-separated, after an optional symbology identifier such as ``]d2``), its bracketed
human-readable form, or what is printed under our QR labels and typed by hand:

    GTIN 09506000134352  SN AASD0  (01)09506000134352(21)AASD0     (a label, in whole or line by line)
    09506000134352 AASD0            01 09506000134352 21 AASD0      (01) 09506000134352 (21) AASD0
    SSCC 009506005334546813         (00)009506005334546813

Typed text can sometimes be read in more than one way; every reading that fits is tried, and the text is
refused unless they all name the same unit. Nothing is ever guessed or cut short.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import InvalidIdentifier
from .elements import hri, key_from_pairs, printable, read_bracketed, read_fnc1, read_spaced
from .keys import ContainerKey, ItemKey, Key, normalize_gtin, normalize_sscc, parse_key
from .links import parse_digital_link, parse_link_path

__all__ = ["ScannedCode", "read_code", "parse_code", "MAX_CODE_LENGTH"]

MAX_CODE_LENGTH = 2048
_SYMBOLOGY_ID = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/")
_GTIN_LENGTHS = (8, 12, 13, 14)
_NUMBER = re.compile("[0-9]+")
_SPACES = re.compile("[ \t\r\n]+")
_WORDS = {"GTIN": "01", "SN": "21", "S/N": "21", "SERIAL": "21", "SSCC": "00"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedCode:
    """A code's canonical key (``01/{gtin14}/21/{serial}`` or ``00/{sscc18}``), the other GS1 AIs it carried
    (AI → value: lot, expiry, variant…, from the path, the query or the element string) and a Digital Link's
    query parameters that are not AIs (``linkType``…). Only ``key`` says which unit it is."""

    key: str
    elements: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> Key:
        return parse_key(self.key)


def _scanned(key: Key, elements: Mapping[str, str] | None = None,
             attributes: Mapping[str, str] | None = None) -> ScannedCode:
    return ScannedCode(key=str(key), elements=dict(elements or {}), attributes=dict(attributes or {}))


def _from_pairs(read: Callable[[], list[tuple[str, str]]]) -> ScannedCode:
    key, elements = key_from_pairs(read())
    return _scanned(key, elements)


def _gtin_and_serial(tokens: list[str]) -> ScannedCode:
    gtin, serial = tokens
    return _scanned(ItemKey(gtin=normalize_gtin(gtin), serial=serial))


def _labelled(tokens: list[str]) -> ScannedCode:
    """``GTIN … SN …`` or ``SSCC …``, as our labels print them, optionally followed by the label's last line."""
    found: dict[str, str] = {}
    i = 0
    while i < len(tokens) and (ai := _WORDS.get(tokens[i].upper().rstrip(":"))) is not None:
        if i + 1 >= len(tokens):
            raise InvalidIdentifier(f"{tokens[i]} needs its number after it", field="code")
        if ai in found:
            raise InvalidIdentifier(f"{tokens[i]} is given twice", field="code")
        found[ai] = tokens[i + 1]
        i += 2
    key: Key
    if "00" in found and ("01" in found or "21" in found):
        raise InvalidIdentifier("the text names both a shipping unit (SSCC) and a product (GTIN)", field="code")
    if "00" in found:
        key = ContainerKey(sscc=normalize_sscc(found["00"]))
        printed = f"(00){key.sscc}"
    elif "01" in found:
        gtin = normalize_gtin(found["01"])
        if "21" not in found:
            raise InvalidIdentifier("this code has no serial number: only serialised items are tracked",
                                    field="serial")
        key = ItemKey(gtin=gtin, serial=found["21"])
        printed = hri([("01", key.gtin), ("21", key.serial)])
    else:
        raise InvalidIdentifier("a serial number (SN) needs its GTIN: type 'GTIN … SN …'", field="gtin")
    rest = " ".join(tokens[i:])
    if not rest or rest == printed:  # the label's own last line, even where brackets make it ambiguous alone
        return _scanned(key)
    other = _read_plain(rest)
    if other.key != str(key):
        raise InvalidIdentifier(f"the text names two different units: {key} and {other.key}", field="code")
    return other


def _read_plain(body: str) -> ScannedCode:
    """Element strings and typed forms: everything that is not a link or a canonical key."""
    if body.startswith("("):
        return _from_pairs(lambda: read_bracketed(body))
    machine = "\x1d" in body or "<GS>" in body  # GS separators: scanned, not typed, so no typed readings
    tokens = [body] if machine else _SPACES.split(body)
    if tokens[0].upper().rstrip(":") in _WORDS:
        return _labelled(tokens)
    if not (body[0] in "0123456789" or body.startswith(("\x1d", "<GS>"))):
        raise InvalidIdentifier("not a GS1 code: expected a Digital Link (https://…/01/…/21/…), a code like "
                                "(01)…(21)…, or what is printed under the QR code ('GTIN … SN …')", field="code")
    readings: list[tuple[str, Callable[[], ScannedCode]]] = [("element string", lambda: _from_pairs(
        lambda: read_fnc1(body)))]
    first = tokens[0]
    number = bool(_NUMBER.fullmatch(first)) and not machine
    if len(tokens) == 2 and number and len(first) in _GTIN_LENGTHS:
        readings.insert(0, ("GTIN and serial", lambda: _gtin_and_serial(tokens)))
    if len(tokens) >= 2 and number and len(first) <= 4:
        readings.insert(0, ("application identifiers and values", lambda: _from_pairs(lambda: read_spaced(tokens))))
    if len(tokens) == 1 and number and len(first) == 18:
        readings.insert(0, ("SSCC", lambda: _scanned(ContainerKey(sscc=first))))
    if len(tokens) == 1 and number and len(first) in _GTIN_LENGTHS:
        normalize_gtin(first)
        raise InvalidIdentifier(f"{first} is a product number (GTIN) without a serial number: type the serial "
                                f"after it, e.g. '{first} ABC123'", field="serial")
    results: list[tuple[str, ScannedCode]] = []
    errors: list[InvalidIdentifier] = []
    for name, read in readings:
        try:
            results.append((name, read()))
        except InvalidIdentifier as exc:
            errors.append(exc)
    keys = {r.key for _, r in results}
    if len(keys) == 1:
        return results[0][1]
    if len(keys) > 1:
        ways = "; ".join(f"as {name}: {r.key}" for name, r in results)
        raise InvalidIdentifier(f"this text can be read in more than one way ({ways}): type it with brackets, "
                                "like (01)…(21)…, or scan the code", field="code")
    raise errors[0]


def _read(text: str) -> ScannedCode:
    body = text
    if body.startswith("]") and _SYMBOLOGY_ID.match(body):
        body = body[3:]
    if not body:
        raise InvalidIdentifier("the code is empty", field="code")
    if _URL.match(body):
        link = parse_digital_link(body)
        return _scanned(link.key, {**link.qualifiers, **link.data}, link.attributes)
    if body.startswith("/"):
        path, _, query = body.partition("#")[0].partition("?")
        link = parse_link_path(path, query)
        return _scanned(link.key, {**link.qualifiers, **link.data}, link.attributes)
    if body.startswith(("01/", "00/")):
        return _scanned(parse_key(body))
    return _read_plain(body)


def read_code(text: str) -> ScannedCode:
    """A scanned or typed code as a canonical key and the data it carried. Raises InvalidIdentifier whose message
    starts with the code (quoted) and then says, in plain words, what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidIdentifier("empty code: scan or type a code", field="code")
    text = text.strip()
    shown = repr(printable(text)) if len(text) <= 120 else repr(printable(text[:117]) + "...")
    try:
        if len(text) > MAX_CODE_LENGTH:
            raise InvalidIdentifier(f"the code is too long (more than {MAX_CODE_LENGTH} characters)", field="code")
        return _read(text)
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"{shown}: {exc.message}", field=exc.field or "code") from None


def parse_code(text: str) -> Key:
    """``read_code(text)``'s unit, for callers that need only which item or container a code names."""
    return read_code(text).unit
