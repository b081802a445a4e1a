"""Statements (SPEC §2): the JSON a party signs. Parsed strictly from the signed bytes and validated
field by field, so every refusal names the field and the rule it broke.

Two levels: ``parse_statement`` is the shape every stored statement has (lookups and the audit read old entries
with it), and ``check_new_statement`` adds the door rules that apply to what is signed and admitted from now on
(SPEC §7), so that tightening the door never makes an honest old entry unreadable.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

from .brands import licence_index_key
from .errors import InvalidStatement
from .identifiers import is_container_key, is_item_key, normalize_gtin, parse_key
from .parties import (GS1_PREFIX, PARTY_ID, PARTY_ID_RULE, ROLES, KeyRecord, PartyRecord, Site, country_code, gln_code,
                      parse_party, text_field)
from .timefmt import format_time, parse_time

__all__ = [
    "TYPES",
    "SUPPLY_CHAIN_ROLES",
    "ROLES",
    "SIGNER_ROLES",
    "KeyRecord",
    "PartyRecord",
    "Site",
    "Statement",
    "parse_statement",
    "check_new_statement",
    "index_keys",
    "parse_time",
    "format_time",
    "statement_bytes",
    "PARTY_ID",
    "EVENT_ID",
]

TYPES = ("party", "licence", "commission", "aggregate", "disaggregate", "ship", "receive", "inspect", "sell")
SUPPLY_CHAIN_ROLES = frozenset({"manufacturer", "exporter", "warehouse", "courier", "retailer"})
SIGNER_ROLES: Mapping[str, frozenset[str]] = {
    "party": frozenset({"admin"}),
    "licence": frozenset({"manufacturer"}),
    "commission": frozenset({"manufacturer"}),
    "aggregate": SUPPLY_CHAIN_ROLES,
    "disaggregate": SUPPLY_CHAIN_ROLES,
    "ship": SUPPLY_CHAIN_ROLES,
    "receive": SUPPLY_CHAIN_ROLES | {"customs"},
    "inspect": frozenset({"customs"}),
    "sell": frozenset({"retailer"}),
}
DECISIONS = ("released", "held", "seized")
MAX_ITEMS = 1000
MAX_DEPTH = 8

EVENT_ID = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
NO_PREV_TYPES = frozenset({"party", "licence", "commission"})
# source_event: the id of the event this statement records from another system (an EPCIS eventID), so a
# re-import is recognised and an export gives the same id back.
_SOURCE_EVENT = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+\Z")

_COMMON = {"v", "type", "actor", "time", "location", "prev", "source_event"}
_EXTRA: Mapping[str, tuple[set[str], set[str]]] = {  # type -> (required, optional)
    "party": ({"party"}, set()),
    "licence": ({"licensee", "gs1_prefixes", "not_before"}, {"not_after"}),
    "commission": ({"items", "product"}, set()),
    "aggregate": ({"container", "items"}, set()),
    "disaggregate": ({"container", "items"}, set()),
    "ship": ({"items", "to"}, set()),
    "receive": ({"items", "from", "ship"}, set()),
    "inspect": ({"items", "decision"}, {"note", "note_commitment"}),
    "sell": ({"items"}, set()),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """A parsed statement. Mappings are read-only views: a value object must not change under its users."""

    type: str
    actor: str
    time: datetime
    location: Mapping[str, str]
    prev: Mapping[str, str]
    items: tuple[str, ...] = ()
    container: str | None = None
    to: str | None = None
    from_: str | None = None
    ship: str | None = None
    decision: str | None = None
    note: str | None = None  # legacy only: admission refuses a plaintext note (it would be public forever)
    note_commitment: str | None = None  # "sha256:" + hex(SHA-256(salt || UTF-8 note)); the note is kept off-ledger
    product: Mapping[str, str] | None = None
    party: PartyRecord | None = None
    licensee: str | None = None
    gs1_prefixes: tuple[str, ...] = ()
    not_before: datetime | None = None
    not_after: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def keys_touched(self) -> tuple[str, ...]:
        """Every item or container key the statement names, container first."""
        return ((self.container,) if self.container else ()) + self.items

    @property
    def time_str(self) -> str:
        return str(self.raw["time"])


def index_keys(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The item-index (key_events) rows a statement gets, from its signed JSON: the keys it touches, and for a
    licence its licensee's licence key. Commit and audit both use this, so they cannot disagree."""
    keys: tuple[str, ...] = ((body["container"],) if body.get("container") else ()) + tuple(body.get("items") or ())
    if body.get("type") == "licence" and isinstance(body.get("licensee"), str):
        keys += (licence_index_key(body["licensee"]),)
    return keys


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidStatement(f"duplicate JSON key {k!r}", field=k)
        out[k] = v
    return out


def _depth(value: Any, limit: int) -> None:
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            raise InvalidStatement(f"statement is nested deeper than {limit} levels", field="payload")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)


def _text(doc: Mapping[str, Any], key: str, field: str, *, max_len: int = 200) -> str:
    value = text_field(doc, key, field, max_len=max_len)
    assert value is not None
    return value


def _party_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not PARTY_ID.fullmatch(value):
        raise InvalidStatement(f"{field} must be a party id matching {PARTY_ID_RULE}", field=field)
    return value


def _event_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not EVENT_ID.fullmatch(value):
        raise InvalidStatement(f"{field} must be an event id sha256:<64 hex>", field=field)
    return value


_CANONICAL_ITEM = re.compile(r"\A01/(\d{14})/21/[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}\Z")


def _key(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidStatement(f"{field} must be a key string", field=field)
    m = _CANONICAL_ITEM.fullmatch(value)
    if m is not None:  # the common case, checked without building an ItemKey
        try:
            normalize_gtin(m.group(1))
            return value
        except Exception as exc:
            raise InvalidStatement(f"{field}: {exc}", field=field) from exc
    try:
        return str(parse_key(value))
    except InvalidStatement:
        raise
    except Exception as exc:  # InvalidIdentifier carries the GS1 rule
        raise InvalidStatement(f"{field}: {exc}", field=field) from exc


def _items(doc: Mapping[str, Any], *, only_items: bool) -> tuple[str, ...]:
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidStatement("items must be a non-empty list", field="items")
    if len(items) > MAX_ITEMS:
        raise InvalidStatement(f"items may list at most {MAX_ITEMS} keys", field="items")
    keys = tuple(_key(v, f"items[{i}]") for i, v in enumerate(items))
    if len(set(keys)) != len(keys):
        raise InvalidStatement("items lists a key twice", field="items")
    if only_items:
        bad = next((k for k in keys if not is_item_key(k)), None)
        if bad:
            raise InvalidStatement(f"items[{keys.index(bad)}] must be an item key 01/.../21/...", field="items")
    return keys


def _location(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise InvalidStatement("location must be an object {name, country, gln?}", field="location")
    extra = set(value) - {"name", "country", "gln"}
    if extra:
        raise InvalidStatement(f"location has unknown field {sorted(extra)[0]!r}", field="location")
    out = {"name": _text(value, "name", "location.name"),
           "country": country_code(value.get("country"), "location.country")}
    if "gln" in value:
        out["gln"] = gln_code(value["gln"], "location.gln")
    return MappingProxyType(out)


def _licence(doc: Mapping[str, Any], actor: str) -> dict[str, Any]:
    licensee = _party_id(doc["licensee"], "licensee")
    if licensee == actor:
        raise InvalidStatement("a licence names another party than its signer", field="licensee")
    prefixes = doc["gs1_prefixes"]
    if (not isinstance(prefixes, list) or not prefixes or len(prefixes) > 64 or len(set(prefixes)) != len(prefixes)
            or any(not isinstance(p, str) or not GS1_PREFIX.fullmatch(p) for p in prefixes)):
        raise InvalidStatement("gs1_prefixes must list 1-64 distinct GS1 company prefixes (4-12 digits)",
                               field="gs1_prefixes")
    not_before = parse_time(doc["not_before"], "not_before")
    not_after = parse_time(doc["not_after"], "not_after") if doc.get("not_after") is not None else None
    if not_after is not None and not_after <= not_before:
        raise InvalidStatement("not_after must be later than not_before", field="not_after")
    return {"licensee": licensee, "gs1_prefixes": tuple(prefixes), "not_before": not_before, "not_after": not_after}


def parse_statement(payload: bytes) -> Statement:
    """Decode and validate the signed payload bytes. Raises InvalidStatement naming field and rule."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidStatement("payload is not valid UTF-8", field="payload") from exc
    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicates)
    except InvalidStatement:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidStatement("payload is not valid JSON", field="payload") from exc
    if not isinstance(doc, dict):
        raise InvalidStatement("a statement is a JSON object", field="payload")
    if payload.count(b"{") + payload.count(b"[") > 12:  # only documents with many containers can be deep
        _depth(doc, MAX_DEPTH)
    if doc.get("v") != 1 or isinstance(doc.get("v"), bool):
        raise InvalidStatement("v must be 1", field="v")
    stype = doc.get("type")
    if stype not in TYPES:
        raise InvalidStatement(f"type must be one of {', '.join(TYPES)}", field="type")
    required, optional = _EXTRA[stype]
    allowed = _COMMON | required | optional
    unknown = set(doc) - allowed
    if unknown:
        raise InvalidStatement(f"unknown field {sorted(unknown)[0]!r} for a {stype} statement", field=sorted(unknown)[0])
    missing = sorted(({"actor", "time", "location"} | required) - set(doc))
    if missing:
        raise InvalidStatement(f"{missing[0]} is required for a {stype} statement", field=missing[0])
    actor = _party_id(doc["actor"], "actor")
    if "source_event" in doc and (not isinstance(doc["source_event"], str) or len(doc["source_event"]) > 300
                                  or not _SOURCE_EVENT.fullmatch(doc["source_event"])):
        raise InvalidStatement("source_event must be a URI of at most 300 printable ASCII characters",
                               field="source_event")
    when = parse_time(doc["time"])
    location = _location(doc["location"])
    kw: dict[str, Any] = {}
    if stype == "party":
        kw["party"] = parse_party(doc["party"])
    elif stype == "licence":
        kw.update(_licence(doc, actor))
    elif stype == "commission":
        items = _items(doc, only_items=True)
        product = doc["product"]
        if not isinstance(product, dict) or set(product) - {"gtin", "name", "lot", "expiry"}:
            raise InvalidStatement("product must be {gtin, name, lot?, expiry?}", field="product")
        if not isinstance(product.get("gtin"), str):
            raise InvalidStatement("product.gtin must be a GTIN: a string of 8, 12, 13 or 14 digits",
                                   field="product.gtin")
        try:
            gtin = normalize_gtin(product["gtin"])
        except Exception as exc:
            raise InvalidStatement(f"product.gtin: {exc}", field="product.gtin") from exc
        prod = {"gtin": gtin, "name": _text(product, "name", "product.name")}
        for opt in ("lot", "expiry"):
            if opt in product:
                prod[opt] = _text(product, opt, f"product.{opt}", max_len=40)
        bad = next((k for k in items if k.split("/")[1] != gtin), None)
        if bad:
            raise InvalidStatement(f"item {bad} does not carry the product's GTIN {gtin}", field="items")
        kw.update(items=items, product=MappingProxyType(prod))
    elif stype in ("aggregate", "disaggregate"):
        container = _key(doc["container"], "container")
        if not is_container_key(container):
            raise InvalidStatement("container must be a container key 00/{sscc18}", field="container")
        items = _items(doc, only_items=False)
        if container in items:
            raise InvalidStatement("a container cannot contain itself", field="items")
        kw.update(container=container, items=items)
    elif stype == "ship":
        kw.update(items=_items(doc, only_items=False), to=_party_id(doc["to"], "to"))
        if kw["to"] == actor:
            raise InvalidStatement("to must be another party than the actor", field="to")
    elif stype == "receive":
        kw.update(items=_items(doc, only_items=False), from_=_party_id(doc["from"], "from"),
                  ship=_event_id(doc["ship"], "ship"))
    elif stype == "inspect":
        decision = doc["decision"]
        if decision not in DECISIONS:
            raise InvalidStatement(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
        commitment = doc.get("note_commitment")
        if commitment is not None and (not isinstance(commitment, str) or not EVENT_ID.match(commitment)):
            raise InvalidStatement("note_commitment must be sha256:<64 lowercase hex digits>", field="note_commitment")
        note = text_field(doc, "note", "note", max_len=500, required=False)
        kw.update(items=_items(doc, only_items=False), decision=decision, note_commitment=commitment, note=note)
    elif stype == "sell":
        kw["items"] = _items(doc, only_items=True)
    prev_doc = doc.get("prev")
    prev: dict[str, str] = {}
    if stype in NO_PREV_TYPES:
        if prev_doc not in (None, {}):
            raise InvalidStatement(f"a {stype} statement has no prev", field="prev")
    else:
        if not isinstance(prev_doc, dict):
            raise InvalidStatement("prev must map each key the statement touches to its latest event id", field="prev")
        touched = set(kw.get("items", ())) | ({kw["container"]} if kw.get("container") else set())
        for k, v in prev_doc.items():
            if k not in touched:
                raise InvalidStatement(f"prev names {k!r}, which the statement does not touch", field="prev")
            prev[k] = _event_id(v, f"prev[{k}]")
    return Statement(type=stype, actor=actor, time=when, location=location, prev=MappingProxyType(prev),
                     raw=MappingProxyType(doc), **kw)


def check_new_statement(st: Statement, *, container_exists: bool = False) -> None:
    """The door rules for a statement signed and admitted now (SPEC §7), beyond its shape: ``prev`` names every
    item and container it touches -- all but a commission's items and the container an aggregate creates --
    so that a device cannot continue a chain without saying where it continues from (a second ship with
    ``"prev": {}`` otherwise forks the history without claiming any event, and no fork is seen).
    ``container_exists`` says whether an aggregate's container is already in the ledger (then it needs a prev too).
    A plaintext customs ``note`` is refused too: anything signed is public forever, so a note travels as a salted
    ``note_commitment`` and the note itself is kept off the ledger. Raises InvalidStatement naming the field."""
    if st.note is not None:
        raise InvalidStatement("a plaintext note would be public on the ledger forever: sign note_commitment "
                               "(sha256 of salt and note) and hand the note to the notes endpoint", field="note")
    if st.type in NO_PREV_TYPES:
        return
    needed = list(st.items)
    if st.container and (st.type != "aggregate" or container_exists):
        needed.insert(0, st.container)
    missing = [k for k in needed if k not in st.prev]
    if missing:
        raise InvalidStatement(f"prev must name the latest event of {missing[0]} (every item and container the "
                               f"statement touches, as GET /api/v1/items/.../head or the unit's history gives it)",
                               field=f"prev[{missing[0]}]")


def statement_bytes(doc: Mapping[str, Any]) -> bytes:
    """Serialise a statement to the bytes a signer signs (compact, sorted keys, UTF-8)."""
    return json.dumps(dict(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
