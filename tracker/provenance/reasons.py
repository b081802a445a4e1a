"""Reason codes (SPEC §4, §7) and how they make a verdict. Codes are stable API; messages are for people."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = ["SEVERITY", "VERDICTS", "Reason", "verdict_for", "ordered"]

SEVERITY: Mapping[str, str] = {
    "unknown_item": "critical",
    "not_commissioned_by_manufacturer": "critical",
    "bad_signature": "critical",
    "unauthorized_signer": "critical",
    "revoked_key": "critical",
    "custody_gap": "critical",
    "missing_customs_clearance": "critical",
    "seized": "critical",
    "fork": "critical",
    "cloned_serial": "critical",
    "activity_after_sale": "critical",
    "ledger_integrity_failure": "critical",
    "unreceived_shipment": "warning",
    "held_by_customs": "warning",
    "time_inconsistency": "warning",
    "unverified_brand": "warning",
    "location_mismatch": "warning",
    "label_copied": "warning",
    "path_truncated": "warning",
    "in_transit": "info",
    "sold": "info",
    "licensed_manufacturer": "info",
}
VERDICTS = ("genuine", "suspicious", "likely_counterfeit")
_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    code: str
    message: str
    event_id: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[self.code]

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "event_id": self.event_id}


def verdict_for(reasons: Iterable[Reason]) -> str:
    """Any critical reason: likely_counterfeit; else any warning: suspicious; else genuine."""
    severities = {r.severity for r in reasons}
    if "critical" in severities:
        return "likely_counterfeit"
    if "warning" in severities:
        return "suspicious"
    return "genuine"


def ordered(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    """Each reason once, the gravest first (stable within a severity)."""
    unique = list(dict.fromkeys(reasons))
    unique.sort(key=lambda r: _ORDER[r.severity])
    return tuple(unique)
