"""Statements (SPEC §2): the JSON a party signs. Parsed strictly from the signed bytes and validated
field by field, so every refusal names the field and the rule it broke.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from .errors import InvalidStatement
from .identifiers import is_container_key, is_item_key, normalize_gtin, parse_key

__all__ = [
    "TYPES",
    "SUPPLY_CHAIN_ROLES",
    "ROLES",
    "SIGNER_ROLES",
    "KeyRecord",
    "PartyRecord",
    "Statement",
    "parse_statement",
    "parse_time",
    "format_time",
    "statement_bytes",
    "PARTY_ID",
    "EVENT_ID",
]

TYPES = ("party", "commission", "aggregate", "disaggregate", "ship", "receive", "inspect", "sell")
ROLES = ("manufacturer", "exporter", "customs", "warehouse", "courier", "retailer", "admin")
SUPPLY_CHAIN_ROLES = frozenset({"manufacturer", "exporter", "warehouse", "courier", "retailer"})
SIGNER_ROLES: Mapping[str, frozenset[str]] = {
    "party": frozenset({"admin"}),
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

PARTY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EVENT_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_GLN = re.compile(r"^\d{13}$")
_PREFIX = re.compile(r"^\d{4,12}$")
# source_event: the id of the event this statement records from another system (an EPCIS eventID), so a
# re-import is recognised and an export gives the same id back.
_SOURCE_EVENT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$")

_COMMON = {"v", "type", "actor", "time", "location", "prev", "source_event"}
_EXTRA: Mapping[str, tuple[set[str], set[str]]] = {  # type -> (required, optional)
    "party": ({"party"}, set()),
    "commission": ({"items", "product"}, set()),
    "aggregate": ({"container", "items"}, set()),
    "disaggregate": ({"container", "items"}, set()),
    "ship": ({"items", "to"}, set()),
    "receive": ({"items", "from", "ship"}, set()),
    "inspect": ({"items", "decision"}, {"note"}),
    "sell": ({"items"}, set()),
}


def parse_time(value: Any, field: str = "time") -> datetime:
    """RFC 3339 in UTC with a ``Z`` suffix, as SPEC §2 requires."""
    if not isinstance(value, str) or not _TIME.match(value):
        raise InvalidStatement(f"{field} must be RFC 3339 UTC like 2026-01-31T12:00:00Z", field=field)
    frac = _TIME.match(value).group(7) or ""
    try:
        base = datetime.fromisoformat(value[:19])  # the regex has pinned the shape; this checks the calendar
    except ValueError as exc:
        raise InvalidStatement(f"{field} is not a real date and time", field=field) from exc
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    return base.replace(microsecond=micro, tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    keyid: str
    public_key: bytes
    not_before: datetime
    revoked_at: datetime | None = None

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when and (self.revoked_at is None or when < self.revoked_at)

    def revoked_by(self, now: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= now


@dataclass(frozen=True, slots=True, kw_only=True)
class PartyRecord:
    id: str
    name: str
    country: str
    roles: tuple[str, ...]
    keys: tuple[KeyRecord, ...]
    gs1_prefixes: tuple[str, ...] = ()

    def key(self, keyid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.keyid == keyid), None)

    def public_json(self) -> dict[str, Any]:
        import base64

        return {
            "id": self.id, "name": self.name, "country": self.country, "roles": list(self.roles),
            "gs1_prefixes": list(self.gs1_prefixes),
            "keys": [{"keyid": k.keyid, "public_key": base64.b64encode(k.public_key).decode(),
                      "not_before": format_time(k.not_before),
                      **({"revoked_at": format_time(k.revoked_at)} if k.revoked_at else {})} for k in self.keys],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
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
    note: str | None = None
    product: Mapping[str, str] | None = None
    party: PartyRecord | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def keys_touched(self) -> tuple[str, ...]:
        """Every item or container key the statement names, container first."""
        return ((self.container,) if self.container else ()) + self.items

    @property
    def time_str(self) -> str:
        return self.raw["time"]


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


def _text(doc: Mapping[str, Any], key: str, field: str, *, max_len: int = 200, required: bool = True) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len or not value.isprintable():
        raise InvalidStatement(f"{field} must be printable text of 1-{max_len} characters", field=field)
    return value


def _party_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not PARTY_ID.match(value):
        raise InvalidStatement(f"{field} must be a party id matching {PARTY_ID.pattern}", field=field)
    return value


def _event_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not EVENT_ID.match(value):
        raise InvalidStatement(f"{field} must be an event id sha256:<64 hex>", field=field)
    return value


_CANONICAL_ITEM = re.compile(r"^01/(\d{14})/21/[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


def _key(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidStatement(f"{field} must be a key string", field=field)
    m = _CANONICAL_ITEM.match(value)
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


def _location(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidStatement("location must be an object {name, country, gln?}", field="location")
    extra = set(value) - {"name", "country", "gln"}
    if extra:
        raise InvalidStatement(f"location has unknown field {sorted(extra)[0]!r}", field="location")
    name = _text(value, "name", "location.name")
    country = value.get("country")
    if not isinstance(country, str) or not _COUNTRY.match(country):
        raise InvalidStatement("location.country must be an ISO 3166-1 alpha-2 code like DE", field="location.country")
    out = {"name": name, "country": country}
    if "gln" in value:
        gln = value["gln"]
        if not isinstance(gln, str) or not _GLN.match(gln):
            raise InvalidStatement("location.gln must be 13 digits", field="location.gln")
        out["gln"] = gln
    return out


def _party(value: Any) -> PartyRecord:
    if not isinstance(value, dict):
        raise InvalidStatement("party must be an object", field="party")
    extra = set(value) - {"id", "name", "country", "roles", "keys", "gs1_prefixes"}
    if extra:
        raise InvalidStatement(f"party has unknown field {sorted(extra)[0]!r}", field="party")
    pid = _party_id(value.get("id"), "party.id")
    name = _text(value, "name", "party.name")
    country = value.get("country")
    if not isinstance(country, str) or not _COUNTRY.match(country):
        raise InvalidStatement("party.country must be an ISO 3166-1 alpha-2 code", field="party.country")
    roles = value.get("roles")
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles) or len(set(roles)) != len(roles):
        raise InvalidStatement(f"party.roles must be a non-empty list of distinct roles from {', '.join(ROLES)}",
                               field="party.roles")
    keys_doc = value.get("keys")
    if not isinstance(keys_doc, list) or not keys_doc or len(keys_doc) > 64:
        raise InvalidStatement("party.keys must list 1-64 keys", field="party.keys")
    from .keys import key_id, public_key_from_b64  # local: keeps statements free of pynacl at import

    keys = []
    for i, k in enumerate(keys_doc):
        f = f"party.keys[{i}]"
        if not isinstance(k, dict) or set(k) - {"public_key", "not_before", "revoked_at"}:
            raise InvalidStatement(f"{f} must be {{public_key, not_before, revoked_at?}}", field=f)
        try:
            pk = public_key_from_b64(k.get("public_key"))
        except Exception as exc:
            raise InvalidStatement(f"{f}.public_key must be a base64 32-byte Ed25519 key", field=f) from exc
        nb = parse_time(k.get("not_before"), f"{f}.not_before")
        ra = parse_time(k["revoked_at"], f"{f}.revoked_at") if k.get("revoked_at") is not None else None
        keys.append(KeyRecord(keyid=key_id(pk), public_key=pk, not_before=nb, revoked_at=ra))
    if len({k.keyid for k in keys}) != len(keys):
        raise InvalidStatement("party.keys lists a key twice", field="party.keys")
    prefixes = value.get("gs1_prefixes", [])
    if not isinstance(prefixes, list) or any(not isinstance(p, str) or not _PREFIX.match(p) for p in prefixes):
        raise InvalidStatement("party.gs1_prefixes must be a list of 4-12 digit GS1 company prefixes",
                               field="party.gs1_prefixes")
    return PartyRecord(id=pid, name=name, country=country, roles=tuple(roles), keys=tuple(keys),
                       gs1_prefixes=tuple(prefixes))


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
        kw["party"] = _party(doc["party"])
    elif stype == "commission":
        items = _items(doc, only_items=True)
        product = doc["product"]
        if not isinstance(product, dict) or set(product) - {"gtin", "name", "lot", "expiry"}:
            raise InvalidStatement("product must be {gtin, name, lot?, expiry?}", field="product")
        try:
            gtin = normalize_gtin(product.get("gtin"))
        except Exception as exc:
            raise InvalidStatement(f"product.gtin: {exc}", field="product.gtin") from exc
        prod = {"gtin": gtin, "name": _text(product, "name", "product.name")}
        for opt in ("lot", "expiry"):
            if opt in product:
                prod[opt] = _text(product, opt, f"product.{opt}", max_len=40)
        bad = next((k for k in items if k.split("/")[1] != gtin), None)
        if bad:
            raise InvalidStatement(f"item {bad} does not carry the product's GTIN {gtin}", field="items")
        kw.update(items=items, product=prod)
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
        kw.update(items=_items(doc, only_items=False), decision=decision,
                  note=_text(doc, "note", "note", max_len=500, required=False))
    elif stype == "sell":
        kw["items"] = _items(doc, only_items=True)
    prev_doc = doc.get("prev")
    prev: dict[str, str] = {}
    if stype in ("party", "commission"):
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
    return Statement(type=stype, actor=actor, time=when, location=location, prev=prev, raw=doc, **kw)


def statement_bytes(doc: Mapping[str, Any]) -> bytes:
    """Serialise a statement to the bytes a signer signs (compact, sorted keys, UTF-8)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
