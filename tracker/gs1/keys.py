"""The two keys the ledger tracks, in their one canonical spelling (SPEC §1): a serialised item (GTIN, AI 01,
plus serial, AI 21) as ``01/{gtin14}/21/{serial}`` and a shipping unit (SSCC, AI 00) as ``00/{sscc18}``.

Every reader (Digital Link, element strings, typed text) ends here, so the rules a key must meet, and the
words a person sees when it does not, live in one place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from ..errors import InvalidIdentifier

__all__ = [
    "CSET82",
    "ItemKey",
    "ContainerKey",
    "Key",
    "gs1_check_digit",
    "normalize_gtin",
    "validate_serial",
    "normalize_sscc",
    "parse_key",
    "digital_link",
    "is_item_key",
    "is_container_key",
]

# GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_CSET82_CHAR = "[" + re.escape(CSET82) + "]"
_SERIAL = re.compile(_CSET82_CHAR + "{1,20}")  # used with fullmatch only: '$' would admit a trailing newline
_DIGITS = re.compile("[0-9]+")


def gs1_check_digit(body: str) -> int:
    """Mod-10 check digit over ``body`` (all digits but the last), weights 3,1 from the right."""
    total = 3 * sum(map(int, body[-1::-2])) + sum(map(int, body[-2::-2]))
    return (10 - total % 10) % 10


def _check(kind: str, number: str, field: str) -> None:
    expected = gs1_check_digit(number[:-1])
    if expected != int(number[-1]):
        raise InvalidIdentifier(f"the check digit of {kind} {number} is wrong: the last digit should be {expected}",
                                field=field)


def normalize_gtin(gtin: str) -> str:
    """GTIN-8/12/13/14 → 14 digits with a verified check digit. Raises InvalidIdentifier."""
    if not isinstance(gtin, str):
        raise InvalidIdentifier(f"GTIN {gtin!r} must be a string of digits", field="gtin")
    return _normalize_gtin(gtin)


@lru_cache(maxsize=8192)  # a ledger names few GTINs many times; invalid ones raise and are not cached
def _normalize_gtin(gtin: str) -> str:
    if not gtin.isascii() or not _DIGITS.fullmatch(gtin) or len(gtin) not in (8, 12, 13, 14):
        raise InvalidIdentifier(f"GTIN {gtin!r} must be 8, 12, 13 or 14 digits", field="gtin")
    _check("GTIN", gtin, "gtin")
    return gtin.zfill(14)


def validate_serial(serial: str) -> str:
    """The serial (AI 21): 1–20 characters of GS1 character set 82, matched in full."""
    if isinstance(serial, str) and _SERIAL.fullmatch(serial):
        return serial
    if not isinstance(serial, str):
        raise InvalidIdentifier("the serial number must be text", field="serial")
    if not serial:
        raise InvalidIdentifier("the serial number is empty", field="serial")
    rule = f"serial {serial!r} must be 1-20 characters of the GS1 AI-82 character set"
    bad = sorted({ch for ch in serial if ch not in CSET82})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise InvalidIdentifier(f"{rule} (letters, digits and !\"%&'()*+,-./:;<=>?_): {shown} "
                                f"{'is' if len(bad) == 1 else 'are'} not allowed", field="serial")
    raise InvalidIdentifier(f"{rule}: it is {len(serial)} characters long", field="serial")


def normalize_sscc(sscc: str) -> str:
    """An SSCC (AI 00): exactly 18 digits with a valid check digit."""
    if not isinstance(sscc, str) or not sscc.isascii() or not _DIGITS.fullmatch(sscc) or len(sscc) != 18:
        raise InvalidIdentifier(f"SSCC {sscc!r} must be 18 digits", field="sscc")
    _check("SSCC", sscc, "sscc")
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
    """Parse a canonical key (``01/{gtin14}/21/{serial}`` or ``00/{sscc18}``) and insist it is canonical.
    The serial is everything after the fourth '/': '/' is an AI-82 character."""
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


def digital_link(key: Key | str, *, resolver: str) -> str:
    """The QR content for a key: ``{resolver}/01/{gtin14}/21/{serial}`` (or ``/00/{sscc}``). Every character
    but letters, digits and ``-._~`` is percent-encoded, as GS1 Digital Link asks of AI-82 symbols."""
    if isinstance(key, str):
        key = parse_key(key)
    base = resolver.rstrip("/")
    if isinstance(key, ItemKey):
        return f"{base}/01/{key.gtin}/21/{quote(key.serial, safe='')}"
    return f"{base}/00/{key.sscc}"
