"""GS1 identifiers: GTIN, serial (AI 21), SSCC, and the Digital Link / element-string forms they
arrive in. Everything is normalised to the SPEC's canonical keys before it reaches the ledger, so
one item has exactly one spelling everywhere.
"""
from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidIdentifier

__all__ = [
    "ItemKey",
    "ContainerKey",
    "gs1_check_digit",
    "normalize_gtin",
    "validate_serial",
    "normalize_sscc",
    "parse_key",
    "parse_code",
    "digital_link",
    "is_item_key",
    "is_container_key",
]

# GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
_CSET82 = re.compile(r"\A[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}\Z")  # \Z: "$" would admit a trailing newline
_GS = "\x1d"


def gs1_check_digit(body: str) -> int:
    """Mod-10 check digit over ``body`` (all digits but the last), weights 3,1 from the right."""
    total = 3 * sum(map(int, body[-1::-2])) + sum(map(int, body[-2::-2]))
    return (10 - total % 10) % 10


def normalize_gtin(gtin: str) -> str:
    """GTIN-8/12/13/14 → 14 digits with a verified check digit. Raises InvalidIdentifier."""
    if not isinstance(gtin, str):
        raise InvalidIdentifier(f"GTIN {gtin!r} must be a string of digits", field="gtin")
    return _normalize_gtin(gtin)


@lru_cache(maxsize=8192)  # a ledger names few GTINs many times; invalid ones raise and are not cached
def _normalize_gtin(gtin: str) -> str:
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        raise InvalidIdentifier(f"GTIN {gtin!r} must be 8, 12, 13 or 14 digits", field="gtin")
    padded = gtin.zfill(14)
    if gs1_check_digit(padded[:-1]) != int(padded[-1]):
        raise InvalidIdentifier(f"GTIN {gtin} has a wrong check digit", field="gtin")
    return padded


def validate_serial(serial: str) -> str:
    """The serial (AI 21): 1–20 characters of GS1 character set 82."""
    if not isinstance(serial, str) or not _CSET82.match(serial):
        raise InvalidIdentifier(
            f"serial {serial!r} must be 1-20 characters of the GS1 AI-82 character set", field="serial"
        )
    return serial


def normalize_sscc(sscc: str) -> str:
    if not isinstance(sscc, str) or not sscc.isascii() or not sscc.isdigit() or len(sscc) != 18:
        raise InvalidIdentifier(f"SSCC {sscc!r} must be 18 digits", field="sscc")
    if gs1_check_digit(sscc[:-1]) != int(sscc[-1]):
        raise InvalidIdentifier(f"SSCC {sscc} has a wrong check digit", field="sscc")
    return sscc


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemKey:
    gtin: str
    serial: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "gtin", normalize_gtin(self.gtin))
        validate_serial(self.serial)

    def __str__(self) -> str:
        return f"01/{self.gtin}/21/{self.serial}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerKey:
    sscc: str

    def __post_init__(self) -> None:
        normalize_sscc(self.sscc)

    def __str__(self) -> str:
        return f"00/{self.sscc}"


Key = ItemKey | ContainerKey


def is_item_key(key: str) -> bool:
    return key.startswith("01/")


def is_container_key(key: str) -> bool:
    return key.startswith("00/")


def parse_key(key: str) -> Key:
    """Parse a canonical key (``01/{gtin14}/21/{serial}`` or ``00/{sscc18}``) and insist it is canonical."""
    if not isinstance(key, str):
        raise InvalidIdentifier("a key must be a string", field="key")
    parts = key.split("/", 3)
    if len(parts) == 4 and parts[0] == "01" and parts[2] == "21":
        item = ItemKey(gtin=parts[1], serial=parts[3])
        if str(item) != key:
            raise InvalidIdentifier(f"{key!r} is not canonical: use {item}", field="key")
        return item
    if len(parts) == 2 and parts[0] == "00":
        return ContainerKey(sscc=parts[1])
    raise InvalidIdentifier(f"{key!r} is neither 01/{{gtin14}}/21/{{serial}} nor 00/{{sscc18}}", field="key")


# Fixed-length AIs we may meet beside 00/01/21 in an element string; anything else is refused.
_FIXED_AI = {"00": 18, "01": 14, "02": 14, "11": 6, "12": 6, "13": 6, "15": 6, "16": 6, "17": 6, "20": 2}
_VARIABLE_AI = {"10": 20, "21": 20, "22": 20, "240": 30, "241": 30, "30": 8, "37": 8, "400": 30}


def _element_string(text: str) -> dict[str, str]:
    text = text.strip()
    for prefix in ("]Q3", "]d2", "]C1", "]e0", "]J1"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("("):
        found = re.findall(r"\((\d{2,4})\)([^(]*)", text)
        if not found or "".join(f"({a}){v}" for a, v in found) != text:
            raise InvalidIdentifier(f"cannot read {text!r} as a GS1 element string", field="code")
        return {ai: value for ai, value in found}
    # FNC1 form: GS (or a space, as typed by hand) ends a variable-length field.
    text = text.replace(" ", _GS)
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos] == _GS:
            pos += 1
            continue
        ai = next((a for a in (text[pos:pos + 2], text[pos:pos + 3]) if a in _FIXED_AI or a in _VARIABLE_AI), None)
        if ai is None:
            raise InvalidIdentifier(f"unknown GS1 application identifier at {text[pos:pos + 4]!r} in {text!r}", field="code")
        pos += len(ai)
        if ai in _FIXED_AI:
            value = text[pos:pos + _FIXED_AI[ai]]
            if len(value) != _FIXED_AI[ai]:
                raise InvalidIdentifier(f"AI ({ai}) needs {_FIXED_AI[ai]} characters in {text!r}", field="code")
        else:
            end = text.find(_GS, pos)
            end = len(text) if end < 0 else end
            value = text[pos:end]
            if not 1 <= len(value) <= _VARIABLE_AI[ai]:
                raise InvalidIdentifier(f"AI ({ai}) has a bad length in {text!r}", field="code")
        out[ai] = value
        pos += len(value)
    return out


def _from_elements(elements: dict[str, str], original: str) -> Key:
    if "00" in elements:
        return ContainerKey(sscc=elements["00"])
    if "01" in elements and "21" in elements:
        return ItemKey(gtin=elements["01"], serial=elements["21"])
    raise InvalidIdentifier(f"{original!r} names no serialised item (01+21) or container (00)", field="code")


def parse_code(text: str) -> Key:
    """Whatever a scanner or a person hands us — a Digital Link URL, a path, an element string or a
    canonical key — as a canonical item or container key.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidIdentifier("empty code", field="code")
    text = text.strip()
    if len(text) > 2048:
        raise InvalidIdentifier("code is too long", field="code")
    if "://" in text or text.startswith("/"):
        path = urlsplit(text).path if "://" in text else text.split("?", 1)[0]
        segments = [s for s in path.split("/") if s]
        for i in range(len(segments) - 1):
            seg = segments[i]
            if seg == "01" and i + 1 < len(segments):
                # Key qualifiers follow the GTIN in the order 22 (variant), 10 (lot), 21 (serial).
                j = i + 2
                while j + 1 < len(segments) and segments[j] in ("22", "10"):
                    j += 2
                if j + 1 < len(segments) and segments[j] == "21":
                    return ItemKey(gtin=segments[i + 1], serial=unquote(segments[j + 1]))
            if seg == "00" and i + 1 < len(segments):
                return ContainerKey(sscc=segments[i + 1])
        raise InvalidIdentifier(f"{text!r} is not a GS1 Digital Link for an item or container", field="code")
    if text.startswith(("01/", "00/")):
        return parse_key(text)
    return _from_elements(_element_string(text), text)


def digital_link(key: Key | str, *, resolver: str) -> str:
    """The QR content for a key: ``{resolver}/01/{gtin14}/21/{serial}`` with the serial percent-encoded."""
    if isinstance(key, str):
        key = parse_key(key)
    base = resolver.rstrip("/")
    if isinstance(key, ItemKey):
        return f"{base}/01/{key.gtin}/21/{quote(key.serial, safe='')}"
    return f"{base}/00/{key.sscc}"
