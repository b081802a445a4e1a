"""Brand ownership: which registered party owns a GTIN, and which contract manufacturers it has licensed.

A GTIN-14 is an indicator digit, then the GS1 company prefix and item reference, then a check digit. The
company prefix is read *after* the indicator digit (``gtin14[1:13]``): reading from the first digit lets the
owner of prefix 950777 claim 95077712345673, whose company prefix is 50777... (GS1 UK). GS1's own rules --
which ranges are company prefixes at all, and how long a company prefix is in each range -- come from biip.

A brand owner licenses a contract manufacturer with a `licence` statement it signs itself: the licensee may
then commission GTINs under the named prefixes between ``not_before`` and ``not_after``. The latest licence
from one owner to one licensee for a prefix decides, so a licence is ended by signing a new one that ends
earlier.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from biip.gs1_prefixes import GS1CompanyPrefix, GS1Prefix

from .errors import InvalidStatement
from .parties import PartyRecord

__all__ = ["company_prefix_of", "gs1_office_of", "check_company_prefix", "owner_of", "Licence",
           "licensed", "LICENCE_INDEX_PREFIX", "licence_index_key"]

# GS1 prefix ranges that never identify a brand owner's company prefix: restricted circulation numbers,
# coupons, refund receipts, ISBN/ISSN/ISMN, GTIN-8 allocations, and unassigned or reserved ranges.
_NOT_A_COMPANY = ("restricted circulation", "coupon", "refund", "issn", "isbn", "ismn", "bookland",
                  "gtin-8", "reserved", "unused", "demonstration")
LICENCE_INDEX_PREFIX = "licence:"


def licence_index_key(licensee: str) -> str:
    """The item-index key under which a licensee's licences are found (never a GS1 key: those start 00/, 01/)."""
    return LICENCE_INDEX_PREFIX + licensee


def _body(gtin14: str) -> str:
    """The digits a company prefix is read from: after the indicator digit, before the check digit."""
    return gtin14[1:13]


def company_prefix_of(gtin14: str) -> str | None:
    """The GS1 company prefix of a GTIN by GS1's prefix-length table, or None where GS1 gives no length."""
    found = GS1CompanyPrefix.extract(_body(gtin14))
    return found.value if found else None


def gs1_office_of(digits: str) -> str | None:
    """Which GS1 member organisation (or special range) a prefix belongs to, e.g. "GS1 UK"."""
    found = GS1Prefix.extract(digits)
    return found.usage if found else None


def check_company_prefix(prefix: str, *, field: str) -> None:
    """Refuse a registry prefix in a range GS1 never allocates to a brand owner (checked at the door only:
    stored records are read as they were signed)."""
    office = gs1_office_of(prefix)
    if office is None or any(word in office.lower() for word in _NOT_A_COMPANY):
        what = office or "not assigned by GS1"
        raise InvalidStatement(f"{prefix} is not a GS1 company prefix ({what})", field=field)


def owner_of(gtin14: str, parties: Iterable[PartyRecord]) -> tuple[PartyRecord, str] | None:
    """The registered party owning ``gtin14`` and the prefix it owns it by: the longest registered prefix the
    digits after the indicator start with. None when nobody registered has claimed it."""
    body = _body(gtin14)
    best: tuple[PartyRecord, str] | None = None
    for party in parties:
        for prefix in party.gs1_prefixes:
            if body.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
                best = (party, prefix)
    return best


@dataclass(frozen=True, slots=True, kw_only=True)
class Licence:
    """One signed `licence` statement, as stored at ``leaf_index``."""

    leaf_index: int
    event_id: str
    licensor: str
    licensee: str
    gs1_prefixes: tuple[str, ...]
    not_before: datetime
    not_after: datetime | None

    def covers(self, gtin14: str) -> bool:
        return any(_body(gtin14).startswith(p) for p in self.gs1_prefixes)

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when and (self.not_after is None or when < self.not_after)


def licensed(gtin14: str, *, owner: str, manufacturer: str, at: datetime,
             licences: Sequence[Licence]) -> Licence | None:
    """The licence under which ``manufacturer`` made ``gtin14`` at ``at`` for ``owner``, if any: the latest
    licence from owner to manufacturer covering the GTIN decides."""
    latest = max((lic for lic in licences if lic.licensor == owner and lic.licensee == manufacturer
                  and lic.covers(gtin14)), key=lambda lic: lic.leaf_index, default=None)
    return latest if latest is not None and latest.valid_at(at) else None


def registered_parties(parties: Mapping[str, PartyRecord | None]) -> list[PartyRecord]:
    return [p for p in parties.values() if p is not None]
