"""The party registry's values: parties, their keys and their registered sites, as `party` statements carry
them (SPEC §2). The registry is what every judgement trusts about a hop -- which keys sign for it, which roles
it holds, where it operates, which GS1 company prefixes it owns -- so it is parsed as strictly as a statement.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from .errors import InvalidStatement
from .timefmt import format_time, parse_time

__all__ = ["ROLES", "KeyRecord", "Site", "PartyRecord", "parse_party", "party_from_record", "PARTY_ID", "PARTY_ID_RULE", "PARTY_ID_RULE",
           "COUNTRY", "GLN", "GS1_PREFIX", "text_field"]

ROLES = ("manufacturer", "exporter", "customs", "warehouse", "courier", "retailer", "admin")
# Anchored with \A and \Z (never $, which matches before a trailing newline), so that .match, .fullmatch and
# .search all mean "the whole value".
PARTY_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{1,62}\Z")
PARTY_ID_RULE = "^[a-z0-9][a-z0-9-]{1,62}$"
COUNTRY = re.compile(r"\A[A-Z]{2}\Z")
GLN = re.compile(r"\A[0-9]{13}\Z")
GS1_PREFIX = re.compile(r"\A[0-9]{4,12}\Z")
MAX_KEYS = 64
MAX_SITES = 64


def text_field(doc: Mapping[str, Any], key: str, field: str, *, max_len: int = 200,
               required: bool = True) -> str | None:
    """A printable one-line text of 1..max_len characters (no newline, no control characters)."""
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len or not value.isprintable():
        raise InvalidStatement(f"{field} must be printable text of 1-{max_len} characters", field=field)
    return value


def country_code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not COUNTRY.fullmatch(value):
        raise InvalidStatement(f"{field} must be an ISO 3166-1 alpha-2 code like DE", field=field)
    return value


def gln_code(value: Any, field: str) -> str:
    from .identifiers import gs1_check_digit

    if not isinstance(value, str) or not GLN.fullmatch(value) or gs1_check_digit(value[:-1]) != int(value[-1]):
        raise InvalidStatement(f"{field} must be a GLN: 13 digits with a valid GS1 check digit", field=field)
    return value


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
class Site:
    """A place the registry says a party operates (a warehouse abroad, a courier's depot): where its declared
    locations may be without raising a ``location_mismatch``."""

    name: str
    country: str
    gln: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "country": self.country, **({"gln": self.gln} if self.gln else {})}


@dataclass(frozen=True, slots=True, kw_only=True)
class PartyRecord:
    id: str
    name: str
    country: str
    roles: tuple[str, ...]
    keys: tuple[KeyRecord, ...]
    gs1_prefixes: tuple[str, ...] = ()
    sites: tuple[Site, ...] = ()

    def key(self, keyid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.keyid == keyid), None)

    @property
    def countries(self) -> frozenset[str]:
        """Every country the registry places this party in: its own and its sites'."""
        return frozenset({self.country, *(s.country for s in self.sites)})

    def site_by_gln(self, gln: str) -> Site | None:
        return next((s for s in self.sites if s.gln == gln), None)

    def public_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "country": self.country, "roles": list(self.roles),
            "gs1_prefixes": list(self.gs1_prefixes), "sites": [s.to_json() for s in self.sites],
            "keys": [{"keyid": k.keyid, "public_key": base64.b64encode(k.public_key).decode(),
                      "not_before": format_time(k.not_before),
                      **({"revoked_at": format_time(k.revoked_at)} if k.revoked_at else {})} for k in self.keys],
        }


def _sites(value: Any) -> tuple[Site, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_SITES:
        raise InvalidStatement(f"party.sites must be a list of at most {MAX_SITES} sites", field="party.sites")
    sites = []
    for i, doc in enumerate(value):
        f = f"party.sites[{i}]"
        if not isinstance(doc, dict) or set(doc) - {"name", "country", "gln"}:
            raise InvalidStatement(f"{f} must be {{name, country, gln?}}", field=f)
        name = text_field(doc, "name", f"{f}.name")
        assert name is not None
        gln = gln_code(doc["gln"], f"{f}.gln") if "gln" in doc else None
        sites.append(Site(name=name, country=country_code(doc.get("country"), f"{f}.country"), gln=gln))
    glns = [s.gln for s in sites if s.gln]
    if len(set(glns)) != len(glns):
        raise InvalidStatement("party.sites lists a GLN twice", field="party.sites")
    return tuple(sites)


def _prefixes(value: Any) -> tuple[str, ...]:
    """Shape only: whether GS1 allocates such a prefix to brand owners is a door rule (admission), so a record
    signed before that rule still reads."""
    if value is None:
        return ()
    if not isinstance(value, list) or any(not isinstance(p, str) or not GS1_PREFIX.fullmatch(p) for p in value):
        raise InvalidStatement("party.gs1_prefixes must be a list of 4-12 digit GS1 company prefixes",
                               field="party.gs1_prefixes")
    if len(set(value)) != len(value):
        raise InvalidStatement("party.gs1_prefixes lists a prefix twice", field="party.gs1_prefixes")
    return tuple(value)


def parse_party(value: Any) -> PartyRecord:
    """The ``party`` object of a `party` statement (or a stored registry record)."""
    if not isinstance(value, dict):
        raise InvalidStatement("party must be an object", field="party")
    extra = set(value) - {"id", "name", "country", "roles", "keys", "gs1_prefixes", "sites"}
    if extra:
        raise InvalidStatement(f"party has unknown field {sorted(extra)[0]!r}", field="party")
    pid = value.get("id")
    if not isinstance(pid, str) or not PARTY_ID.fullmatch(pid):
        raise InvalidStatement(f"party.id must be a party id matching {PARTY_ID_RULE}", field="party.id")
    name = text_field(value, "name", "party.name")
    assert name is not None
    country = country_code(value.get("country"), "party.country")
    roles = value.get("roles")
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles) or len(set(roles)) != len(roles):
        raise InvalidStatement(f"party.roles must be a non-empty list of distinct roles from {', '.join(ROLES)}",
                               field="party.roles")
    keys_doc = value.get("keys")
    if not isinstance(keys_doc, list) or not keys_doc or len(keys_doc) > MAX_KEYS:
        raise InvalidStatement(f"party.keys must list 1-{MAX_KEYS} keys", field="party.keys")
    from .keys import key_id, public_key_from_b64  # local: keeps the registry free of pynacl at import

    keys = []
    for i, k in enumerate(keys_doc):
        f = f"party.keys[{i}]"
        if not isinstance(k, dict) or set(k) - {"public_key", "not_before", "revoked_at"}:
            raise InvalidStatement(f"{f} must be {{public_key, not_before, revoked_at?}}", field=f)
        try:
            pk = public_key_from_b64(str(k.get("public_key")))  # a non-string fails as not base64
        except Exception as exc:
            raise InvalidStatement(f"{f}.public_key must be a base64 32-byte Ed25519 key", field=f) from exc
        nb = parse_time(k.get("not_before"), f"{f}.not_before")
        ra = parse_time(k["revoked_at"], f"{f}.revoked_at") if k.get("revoked_at") is not None else None
        keys.append(KeyRecord(keyid=key_id(pk), public_key=pk, not_before=nb, revoked_at=ra))
    if len({k.keyid for k in keys}) != len(keys):
        raise InvalidStatement("party.keys lists a key twice", field="party.keys")
    return PartyRecord(id=pid, name=name, country=country, roles=tuple(roles), keys=tuple(keys),
                       gs1_prefixes=_prefixes(value.get("gs1_prefixes")), sites=_sites(value.get("sites")))


def party_from_record(record_json: str) -> PartyRecord:
    """A stored registry row (the signed ``party`` object, re-serialised with sorted keys)."""
    return parse_party(json.loads(record_json))
