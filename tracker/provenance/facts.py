"""What a judgement reads: the path and everything the registry, the brand rules and the scan counts say about
it, gathered once inside the lookup's snapshot so that the steps themselves are pure functions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..brands import Licence
from ..dsse import Envelope
from ..identifiers import is_item_key
from ..parties import PartyRecord
from ..scans import ScanPolicy, ScanSummary
from ..statements import Statement
from .path import PathEvent

__all__ = ["Brand", "Facts", "hop_country"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Brand:
    """Who owns an item's GTIN: the registered parties claiming the longest prefix it starts with (normally one;
    none when nobody registered claims it), GS1's company prefix and member organisation for the messages."""

    owners: tuple[PartyRecord, ...]
    owner_prefix: str | None
    company_prefix: str | None
    gs1_office: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    key: str  # the unit looked up: an item (01/...) or a container (00/...)
    path: Sequence[PathEvent]
    envelopes: Mapping[str, Envelope]  # the path's envelopes proven included in the checkpoint
    parties: Mapping[str, PartyRecord | None]  # everyone the path names, as registered now (None: unregistered)
    ships: Mapping[str, Statement]  # each receive's shipment, in the path or not
    brand: Brand | None  # items only
    licences: Sequence[Licence]  # verified licences to the path's manufacturers
    scans: ScanSummary | None  # items only
    scan_policy: ScanPolicy

    @property
    def is_item(self) -> bool:
        return is_item_key(self.key)

    def name(self, pid: str | None) -> str:
        party = self.parties.get(pid) if pid else None
        return party.name if party else (pid or "an unknown party")


def hop_country(party: PartyRecord | None, location: Mapping[str, str]) -> tuple[str, bool]:
    """(the country a hop happened in, whether its declared location contradicts the registry).

    The registry decides: a declared location counts only where the party is registered (its own country or a
    registered site). A receiver that writes the sender's country would otherwise make a border crossing, and
    the customs clearance it needs, disappear."""
    declared = location.get("country", "")
    if party is None:
        return declared, False  # an unregistered signer is judged by the signer checks
    gln = location.get("gln")
    site = party.site_by_gln(gln) if gln else None
    if site is not None:
        return site.country, declared != site.country
    if declared in party.countries:
        return declared, False
    return party.country, True
