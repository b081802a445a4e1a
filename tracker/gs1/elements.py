"""GS1 element strings: the AI/value pairs a GS1 DataMatrix, GS1 QR or GS1-128 carries (``01…21…`` with FNC1,
sent as the GS character, ending each variable-length value) and their human-readable form with the AIs in
brackets, ``(01)…(21)…``. Either reads to the pairs, then to one key and the other AIs as data.

The bracketed form cannot carry a value that itself holds a bracket: ``(21)AB(C)D`` could be the serial
``AB(C)D`` or something else, so such a value is refused rather than cut short.
"""
from __future__ import annotations

import re
from typing import Sequence

from ..errors import InvalidIdentifier
from . import ais
from .keys import ContainerKey, ItemKey, Key, normalize_gtin

__all__ = ["GS", "printable", "read_fnc1", "read_bracketed", "read_spaced", "key_from_pairs", "hri"]

GS = "\x1d"
Pairs = list[tuple[str, str]]


def printable(text: str) -> str:
    """A code's content for people: the FNC1 separator (GS) shown as ``<GS>``, other controls escaped."""
    text = text.replace(GS, "<GS>")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def hri(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"({ai}){value}" for ai, value in pairs)


def _after(pairs: Pairs) -> str:
    return f" (after {hri(pairs)})" if pairs else ""


def read_fnc1(text: str) -> Pairs:
    """Pairs from an element string whose variable-length values end at GS (or a space, as people type it;
    neither is in any GS1 character set). A separator is allowed after any element (GS1 GenSpecs 7.8.6)."""
    text = text.replace("<GS>", GS)
    pairs: Pairs = []
    pos, end_of_text = 0, len(text)
    while pos < end_of_text:
        if text[pos] in (GS, " "):
            pos += 1
            continue
        rest = text[pos:]
        ai = ais.at_start(rest)
        if ai is None:
            raise InvalidIdentifier(f"unknown GS1 application identifier at {printable(rest[:24])!r}{_after(pairs)}",
                                    field="code")
        start = pos + len(ai.ai)
        length = ais.fixed_length(ai)
        if length is not None:
            end = start + length
            value = text[start:end]
        else:
            stops = [i for i in (text.find(GS, start), text.find(" ", start)) if i >= 0]
            end = min(stops) if stops else end_of_text
            value = text[start:end]
        pairs.append((ai.ai, ais.check_value(ai.ai, value)))
        pos = end
    if not pairs:
        raise InvalidIdentifier("the element string is empty", field="code")
    return pairs


_MARK = re.compile(r"\(\s*([0-9]{2,4})\s*\)")


def read_bracketed(text: str) -> Pairs:
    """Pairs from the human-readable form ``(01)09506000134352(21)ABC``; spaces around brackets and values are
    allowed (people type them), spaces inside a value are not (no GS1 value holds one)."""
    marks = list(_MARK.finditer(text))
    if not marks or text[:marks[0].start()].strip():
        raise InvalidIdentifier("a bracketed code starts with an application identifier in brackets, like (01)",
                                field="code")
    pairs: Pairs = []
    for i, mark in enumerate(marks):
        value = text[mark.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        code = mark.group(1)
        if ais.lookup(code) is None:
            raise InvalidIdentifier(f"unknown GS1 application identifier ({code}){_after(pairs)}", field="code")
        if "(" in value or ")" in value:
            raise InvalidIdentifier(
                f"the value after ({code}) holds a bracket ({value!r}): in the bracketed form that cannot be told "
                "apart from the next application identifier, so it is not read. Scan the code, or type what is "
                "printed as 'GTIN … SN …'", field="code")
        if any(ch.isspace() for ch in value):
            raise InvalidIdentifier(f"the value after ({code}) has a space in it ({value!r}): "
                                    "no GS1 value holds a space", field="code")
        pairs.append((code, ais.check_value(code, value)))
    return pairs


def read_spaced(tokens: Sequence[str]) -> Pairs:
    """Pairs typed as ``01 09506000134352 21 ABC``: each AI, then its value, as separate words."""
    if len(tokens) < 2 or len(tokens) % 2:
        raise InvalidIdentifier("each application identifier needs its value after it", field="code")
    pairs: Pairs = []
    for code, value in zip(tokens[0::2], tokens[1::2]):
        if ais.lookup(code) is None:
            raise InvalidIdentifier(f"unknown GS1 application identifier ({code}){_after(pairs)}", field="code")
        pairs.append((code, ais.check_value(code, value)))
    return pairs


def key_from_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[Key, dict[str, str]]:
    """The code's key and every other AI as data. A code names one unit: an SSCC, or a GTIN with a serial."""
    found: dict[str, str] = {}
    for code, value in pairs:
        if found.get(code, value) != value:
            raise InvalidIdentifier(f"the code gives {ais.title(code)} ({code}) twice, as {found[code]!r} and "
                                    f"{value!r}", field="code")
        found[code] = value
    if "00" in found and "01" in found:
        raise InvalidIdentifier("the code names both a shipping unit (00) and a product (01): "
                                "scan the label of one of them", field="code")
    key: Key
    if "00" in found:
        key, used = ContainerKey(sscc=found["00"]), {"00"}
    elif "01" in found:
        normalize_gtin(found["01"])  # the check digit first: a wrong GTIN is the bigger mistake
        if "21" not in found:
            raise InvalidIdentifier("this code has no serial number: only serialised items are tracked",
                                    field="serial")
        key, used = ItemKey(gtin=found["01"], serial=found["21"]), {"01", "21"}
    elif "21" in found:
        raise InvalidIdentifier("this code has a serial number (21) but no GTIN (01)", field="gtin")
    else:
        raise InvalidIdentifier("this code names no product (01 with 21) and no shipping unit (00)", field="code")
    return key, {code: value for code, value in found.items() if code not in used}
