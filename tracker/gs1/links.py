"""GS1 Digital Link URIs (GS1 Digital Link Standard: URI Syntax 1.x), read the way the standard reads them:

- ``http`` or ``https``, any host, then optional custom path segments of the host's own;
- the path ENDS with the primary key and its key qualifiers, each as ``/{AI}/{value}``, the qualifiers in
  the standard's order for that key (GTIN: 22, then 10, then 21; one may be skipped, none reordered), and
  nothing after them, not even a '/'. The key is found from the right, so a custom segment that looks like
  an AI (``/00/faux/01/…``) stays custom;
- values are percent-encoded; characters a URI path may not hold raw (``<``, ``>``, ``"``, space, …) are
  refused, and a '/' inside a value is ``%2F`` (a raw '/' separates segments);
- the query string carries data attributes (``?17=271231``, AI → value, checked like any AI) and other
  parameters (``linkType``, …). They are kept, never used to say which unit the link names.

GS1 accepts short GTINs (8/12/13 digits) in a link; they are padded to 14.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote_to_bytes, urlsplit

from ..errors import InvalidIdentifier
from . import ais
from .keys import ContainerKey, ItemKey, Key, normalize_gtin, normalize_sscc, validate_serial

__all__ = ["DigitalLink", "parse_digital_link", "parse_link_path", "PRIMARY_KEYS"]

# Primary keys and the order of their key qualifiers (GS1 Digital Link URI Syntax, path element order).
PRIMARY_KEYS: Mapping[str, tuple[str, ...]] = {
    "01": ("22", "10", "21", "235"), "8006": ("22", "10", "21"), "8013": (), "8010": ("8011",),
    "414": ("254", "7040"), "415": ("8020",), "417": ("7040",), "8017": ("8019",), "8018": ("8019",),
    "255": (), "00": (), "253": (), "401": (), "402": (), "8003": (), "8004": ("7040",),
}
_QUALIFIERS = {q for qs in PRIMARY_KEYS.values() for q in qs}
# The short names GS1 Digital Link 1.x once allowed in place of AI numbers (deprecated in 1.2, since removed).
_ALPHAS = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21", "sscc": "00"}

# RFC 3986: what a path segment (pchar) and a query may hold without percent-encoding.
_PCHAR = r"A-Za-z0-9\-._~!$&'()*+,;=:@"
_SEGMENT = re.compile(rf"(?:[{_PCHAR}]|%[0-9A-Fa-f]{{2}})*")
_QUERY = re.compile(rf"(?:[{_PCHAR}/?]|%[0-9A-Fa-f]{{2}})*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitalLink:
    """What a Digital Link names (``key``) and what else it carries: ``qualifiers`` in the path beyond the key
    (e.g. the lot ``10``), ``data`` (GS1 AIs in the query) and ``attributes`` (other query parameters)."""

    key: Key
    qualifiers: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)


def _decode(raw: str, where: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(raw):
        bad = next((ch for ch in raw if not pattern.fullmatch(ch)), None)
        if bad == "%" or bad is None:
            raise InvalidIdentifier(f"a '%' in {where} must start a percent-encoding such as %25 (for '%' itself)",
                                    field="code")
        shown = "".join(f"%{b:02X}" for b in bad.encode("utf-8"))
        raise InvalidIdentifier(f"{bad!r} must be percent-encoded in a link (write {shown}), in {where}",
                                field="code")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidIdentifier(f"{where} holds percent-encoded bytes that are not text", field="code") from None


def _query(query: str, primary: str, path_values: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    data: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for part in query.split("&") if query else ():
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name = _decode(raw_name, "the link's query string", _QUERY)
        value = _decode(raw_value, "the link's query string", _QUERY)
        if not name.isdigit():
            attributes[name] = value
            continue
        if ais.lookup(name) is None:
            raise InvalidIdentifier(f"unknown GS1 application identifier ({name}) in the link's query string",
                                    field="code")
        if name in path_values and path_values[name] != value:
            raise InvalidIdentifier(f"the link gives {ais.title(name)} ({name}) twice: {path_values[name]!r} in "
                                    f"the path and {value!r} in the query string", field="code")
        if data.get(name, value) != value:
            raise InvalidIdentifier(f"the link's query string gives ({name}) twice, as {data[name]!r} and "
                                    f"{value!r}", field="code")
        data[name] = ais.check_value(name, value)
    return data, attributes


def _order(primary: str, found: list[str]) -> None:
    allowed = PRIMARY_KEYS[primary]
    seen: list[str] = []
    for code in found:
        if code not in allowed:
            raise InvalidIdentifier(f"({code}) is not a key qualifier of {ais.title(primary)} ({primary}) in a "
                                    "GS1 Digital Link", field="code")
        if code in seen:
            raise InvalidIdentifier(f"this link gives {ais.title(code)} ({code}) twice", field="code")
        later = [s for s in seen if allowed.index(s) > allowed.index(code)]
        if later:
            order = ", then ".join(allowed[:3] if primary == "01" else allowed)
            raise InvalidIdentifier(f"this link lists {ais.title(code)} after {ais.title(later[0])}; "
                                    f"GS1 Digital Link puts {order}", field="code")
        seen.append(code)


def parse_link_path(path: str, query: str = "") -> DigitalLink:
    """The unit a Digital Link's path names, from the path and query AS SENT (still percent-encoded): only the
    raw text tells a '/' inside a serial (``%2F``) from one between segments."""
    if not path.startswith("/"):
        raise InvalidIdentifier("a Digital Link path starts with '/'", field="code")
    segments = path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        raise InvalidIdentifier("a GS1 Digital Link does not end with '/': remove the last '/'", field="code")
    for raw in segments:
        _decode(raw, "the link's path", _SEGMENT)
    end, pairs = len(segments), []
    while end >= 2:
        code, raw_value = segments[end - 2], segments[end - 1]
        if code in PRIMARY_KEYS:
            break
        if code not in _QUALIFIERS:
            end = 0
            break
        pairs.append((code, raw_value))
        end -= 2
    else:
        end = 0
    if end < 2:
        alpha = next((s for s in segments[:-1] if s in _ALPHAS), None)
        if alpha is not None:
            raise InvalidIdentifier(f"this link names an AI by its old short name {alpha!r}: GS1 Digital Link "
                                    f"uses the number ({_ALPHAS[alpha]})", field="code")
        if any(s in PRIMARY_KEYS for s in segments[:-1]):
            raise InvalidIdentifier(
                "the link's path does not end with a GS1 key and its qualifiers (…/01/{gtin}/21/{serial}): "
                "a '/' inside a serial or lot must be written %2F, and nothing may follow the serial", field="code")
        raise InvalidIdentifier("this link names no GS1 key: it should end with /01/{gtin}/21/{serial} or "
                                "/00/{sscc}", field="code")
    primary, primary_value = segments[end - 2], _decode(segments[end - 1], "the link's path", _SEGMENT)
    pairs.reverse()
    _order(primary, [code for code, _ in pairs])
    values = {code: _decode(raw, "the link's path", _SEGMENT) for code, raw in pairs}
    key: Key
    if primary == "01":
        gtin = normalize_gtin(primary_value)
        if "21" not in values:
            if re.search(r"(?:^|&)21=", query):
                raise InvalidIdentifier("the serial (21) belongs in the path of the link (…/01/{gtin}/21/{serial}), "
                                        "not in its query string", field="serial")
            raise InvalidIdentifier("this code has no serial number: only serialised items are tracked",
                                    field="serial")
        key = ItemKey(gtin=gtin, serial=validate_serial(values["21"]))
        qualifiers = {code: ais.check_value(code, v) for code, v in values.items() if code != "21"}
        data, attributes = _query(query, primary, {"01": gtin, **values})
    elif primary == "00":
        key, qualifiers = ContainerKey(sscc=normalize_sscc(primary_value)), {}
        data, attributes = _query(query, primary, {"00": primary_value})
    else:
        ai = ais.lookup(primary)
        what = f"({primary}) {ai.description}" if ai else f"({primary})"
        raise InvalidIdentifier(f"this link names neither a product (01) nor a shipping unit (00) but {what}",
                                field="code")
    return DigitalLink(key=key, qualifiers=qualifiers, data=data, attributes=attributes)


def parse_digital_link(uri: str) -> DigitalLink:
    """A whole Digital Link URI: ``http(s)://{host}[/custom/path]/01/{gtin}[/22/…][/10/…]/21/{serial}[?…]``."""
    uri = uri.strip()
    scheme = _SCHEME.match(uri)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        given = f", not {scheme.group(1)}:" if scheme else ""
        raise InvalidIdentifier(f"a GS1 Digital Link starts with https:// or http://{given}", field="code")
    if any(ch.isspace() for ch in uri):
        raise InvalidIdentifier("a link has no spaces in it (a space inside a value is written %20)", field="code")
    parts = urlsplit(uri)
    if not uri[scheme.end():].startswith("//") or not parts.hostname:
        raise InvalidIdentifier("the link has no host name (https://host/01/…)", field="code")
    if parts.fragment:
        _decode(parts.fragment, "the link's fragment", _QUERY)
    return parse_link_path(parts.path or "/", parts.query)
