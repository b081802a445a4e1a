"""GS1 Application Identifiers, from biip's copy of GS1's own table: which AIs exist, which have a predefined
length, and whether a value fits its AI. Errors name the AI and what GS1 expects, in words."""
from __future__ import annotations

import re
from functools import lru_cache

from biip import ParseConfig, ParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_element_strings import GS1ElementString

from ..errors import InvalidIdentifier

__all__ = ["AI", "lookup", "at_start", "fixed_length", "check_value", "title"]

AI = GS1ApplicationIdentifier
_CONFIG = ParseConfig()  # dates are verified (a 13th month is refused)

# Short names for the AIs a person meets on our codes; any other AI is named by GS1's description.
_TITLES = {
    "00": "the SSCC",
    "01": "the GTIN",
    "10": "the lot",
    "21": "the serial",
    "22": "the variant",
    "235": "the third-party extension",
}


@lru_cache(maxsize=1024)
def lookup(code: str) -> AI | None:
    """The AI whose number is exactly ``code``, or None when GS1 defines no such AI."""
    try:
        ai = GS1ApplicationIdentifier.extract(code)
    except ParseError:
        return None
    return ai if ai.ai == code else None


def at_start(text: str) -> AI | None:
    """The AI that ``text`` starts with (AI numbers are prefix-free), or None."""
    if not text[:1].isdigit():
        return None
    for size in (2, 3, 4):
        if len(text) >= size and (ai := lookup(text[:size])) is not None:
            return ai
    return None


_FIXED_PART = re.compile(r"N(\d+)")


def fixed_length(ai: AI) -> int | None:
    """The value length of an AI whose value always has the same length, else None. For most such AIs GS1 needs
    no FNC1 after the value; for the rest (e.g. 7003, N4+N10) the FNC1 is due but its absence is unambiguous."""
    parts = ai.format.split("+")[1:]
    sizes = [_FIXED_PART.fullmatch(p) for p in parts]
    if not parts or not all(sizes):
        return None
    return sum(int(m.group(1)) for m in sizes if m)


def title(code: str) -> str:
    """'the lot', 'the serial', … or GS1's description of the AI."""
    if code in _TITLES:
        return _TITLES[code]
    ai = lookup(code)
    return f"({code}) {ai.description}" if ai else f"({code})"


def _expected(fmt: str) -> str:
    words = []
    for part in fmt.split("+")[1:]:
        m = re.fullmatch(r"\[?([NXYZ])(\.\.)?(\d+)\]?", part)
        if not m:
            return f"GS1 format {fmt}"
        kind = "digit" if m.group(1) == "N" else "character"
        plural = "" if m.group(3) == "1" and not m.group(2) else "s"
        words.append(f"{'up to ' if m.group(2) else ''}{m.group(3)} {kind}{plural}")
    return " then ".join(words)


def check_value(code: str, value: str) -> str:
    """``value`` if it is a valid value of AI ``code`` (full match, dates checked), else InvalidIdentifier."""
    ai = lookup(code)
    if ai is None:
        raise InvalidIdentifier(f"unknown GS1 application identifier ({code})", field="code")
    if not value:
        raise InvalidIdentifier(f"({code}) {ai.description} has no value", field="code")
    try:
        GS1ElementString.parse(f"{code}{value}", config=_CONFIG)
    except ParseError:
        raise InvalidIdentifier(f"({code}) {ai.description}: {value!r} is not valid; GS1 expects "
                                f"{_expected(ai.format)}", field="code") from None
    return value
