"""RFC 3339 times as statements carry them (SPEC §2): UTC with a ``Z`` suffix, parsed by a full match so that a
trailing newline or any other suffix is refused rather than silently stored."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidStatement

__all__ = ["parse_time", "format_time"]

_TIME = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z\Z")


def parse_time(value: Any, field: str = "time") -> datetime:
    """RFC 3339 in UTC with a ``Z`` suffix. Raises InvalidStatement naming ``field``."""
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidStatement(f"{field} must be RFC 3339 UTC like 2026-01-31T12:00:00Z", field=field)
    frac = match.group(7) or ""
    try:
        base = datetime.fromisoformat(value[:19])  # the pattern has pinned the shape; this checks the calendar
    except ValueError as exc:
        raise InvalidStatement(f"{field} is not a real date and time", field=field) from exc
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    return base.replace(microsecond=micro, tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
