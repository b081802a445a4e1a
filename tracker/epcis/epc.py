"""Identifiers in EPCIS documents: EPC URNs (GS1 Tag Data Standard) and GS1 Digital Link URIs for items and
containers, GLN-based and Waybill URIs for locations and parties.

An EPC URN carries the GS1 company prefix length (the dot after it), so ``urn:epc:id:sgtin:0614141.107346.2017``
converts to a GTIN without any lookup; the other way needs that length, which a GTIN alone does not carry:
exports therefore use Digital Link URIs, which need none."""
from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import quote, unquote

from ..errors import InvalidIdentifier
from ..identifiers import ContainerKey, ItemKey, digital_link, gs1_check_digit, parse_code, parse_key
from .vocab import WAYBILL_NS

__all__ = ["key_of_epc", "epc_uri", "epc_urn", "gln_of_uri", "gln_uri", "location_uri", "location_of_uri",
           "party_uri", "party_of_uri", "DL_HOST"]

DL_HOST = "https://id.gs1.org"  # the canonical Digital Link host (CBV 2.0 event hash rule 18)
_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$")
_SSCC = re.compile(r"^urn:epc:id:sscc:(\d+)\.(\d+)$")
_SGLN = re.compile(r"^urn:epc:id:(sgln|pgln):(\d+)\.(\d*)(?:\.(.+))?$")
_GLN_DL = re.compile(r"^https?://[^/]+(?:/.*)?/(414|417)/(\d{13})(?:/.*)?$")
_LOCATION = re.compile(r"^" + re.escape(WAYBILL_NS) + r"location:([A-Z]{2}):(.+)$")
_PARTY = re.compile(r"^" + re.escape(WAYBILL_NS) + r"party:([a-z0-9][a-z0-9-]{1,62})$")
_URN_ESCAPE = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}


def key_of_epc(uri: str) -> str:
    """The canonical item or container key of an EPC URN or Digital Link URI. Raises InvalidIdentifier
    saying what the value is when it names anything else (a class, a location, a returnable asset...)."""
    if not isinstance(uri, str):
        raise InvalidIdentifier("an EPC must be a URI string", field="epc")
    m = _SGTIN.match(uri)
    if m:
        prefix, reference, serial = m.groups()
        if len(prefix) + len(reference) != 13 or not 6 <= len(prefix) <= 12:
            raise InvalidIdentifier(f"{uri}: company prefix and item reference must have 13 digits together",
                                    field="epc")
        body = reference[0] + prefix + reference[1:]
        return str(ItemKey(gtin=body + str(gs1_check_digit(body)), serial=unquote(serial)))
    m = _SSCC.match(uri)
    if m:
        prefix, reference = m.groups()
        if len(prefix) + len(reference) != 17 or not 6 <= len(prefix) <= 12:
            raise InvalidIdentifier(f"{uri}: company prefix and serial reference must have 17 digits together",
                                    field="epc")
        body = reference[0] + prefix + reference[1:]
        return str(ContainerKey(sscc=body + str(gs1_check_digit(body))))
    if uri.startswith(("http://", "https://")):
        return str(parse_code(uri))
    kind = uri.split(":")[3] if uri.startswith("urn:epc:") and uri.count(":") >= 3 else None
    what = f"an EPC of type {kind!r}" if kind else "neither an EPC URN nor a GS1 Digital Link URI"
    raise InvalidIdentifier(f"{uri} is {what}: Waybill tracks serialised items (sgtin, 01+21) and containers "
                            "(sscc, 00)", field="epc")


def epc_uri(key: str) -> str:
    """The canonical GS1 Digital Link URI of a canonical key (what exports carry)."""
    return digital_link(key, resolver=DL_HOST)


def epc_urn(key: str, prefix_length: int) -> str:
    """The EPC URN of a key, given the GS1 company prefix length (6-12) that the URN spells out."""
    if not 6 <= prefix_length <= 12:
        raise InvalidIdentifier("a GS1 company prefix has 6 to 12 digits", field="prefix_length")
    parsed = parse_key(key)
    if isinstance(parsed, ItemKey):
        g = parsed.gtin
        serial = "".join(_URN_ESCAPE.get(c, c) for c in parsed.serial)
        return f"urn:epc:id:sgtin:{g[1:1 + prefix_length]}.{g[0]}{g[1 + prefix_length:13]}.{serial}"
    s = parsed.sscc
    return f"urn:epc:id:sscc:{s[1:1 + prefix_length]}.{s[0]}{s[1 + prefix_length:17]}"


def gln_of_uri(uri: str) -> str | None:
    """The 13-digit GLN a location or party URI names (sgln/pgln URN, or Digital Link AI 414/417), else None."""
    m = _SGLN.match(uri)
    if m:
        body = m.group(2) + m.group(3)
        return body + str(gs1_check_digit(body)) if len(body) == 12 else None
    m = _GLN_DL.match(uri)
    if m and gs1_check_digit(m.group(2)[:12]) == int(m.group(2)[12]):
        return m.group(2)
    return None


def gln_uri(gln: str, *, party: bool = False) -> str:
    return f"{DL_HOST}/{417 if party else 414}/{gln}"


def location_uri(location: Mapping[str, str]) -> str:
    """A Waybill location as a URI: country and name (percent-encoded), so it survives a round trip."""
    loc = dict(location)
    return f"{WAYBILL_NS}location:{loc['country']}:{quote(loc['name'], safe='')}"


def location_of_uri(uri: str) -> dict[str, str] | None:
    m = _LOCATION.match(uri)
    if not m:
        return None
    return {"name": unquote(m.group(2)), "country": m.group(1)}


def party_uri(party_id: str) -> str:
    return f"{WAYBILL_NS}party:{party_id}"


def party_of_uri(uri: str) -> str | None:
    m = _PARTY.match(uri)
    return m.group(1) if m else None
