"""Long journeys: an item that moved thousands of times is judged on every event, but its answer is shown in
parts -- the API pages the path with a cursor, the consumer page shows a summary (where it began, where it is
now, and every step a reason points at) and pages the rest. The verdict and reasons always cover the whole path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import InvalidInput
from ..statements import EVENT_ID

__all__ = ["PathPage", "page_of", "summary_of", "MAX_PAGE", "SUMMARY_FIRST", "SUMMARY_LAST"]

MAX_PAGE = 1000
SUMMARY_FIRST, SUMMARY_LAST = 3, 5


@dataclass(frozen=True, slots=True, kw_only=True)
class PathPage:
    rows: tuple[Mapping[str, Any], ...]
    start: int  # position of the first row in the whole path
    total: int
    next: str | None  # cursor for the next page: the event id of this page's last row

    def to_json(self, limit: int) -> dict[str, Any]:
        return {"limit": limit, "start": self.start, "total": self.total, "next": self.next}


def page_of(path: Sequence[Mapping[str, Any]], *, limit: int, after: str | None = None) -> PathPage:
    """The ``limit`` path rows after the event ``after`` (from the start without it). The path only grows at its
    end (new events have higher leaf indexes), so a cursor stays valid while the unit keeps moving."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="invalid_limit", field="limit")
    start = 0
    if after is not None:
        if not EVENT_ID.match(after):
            raise InvalidInput("after must be an event id from this unit's path (sha256:<64 hex digits>)",
                               code="invalid_cursor", field="after")
        found = next((i for i, row in enumerate(path) if row.get("event_id") == after), None)
        if found is None:
            raise InvalidInput("after names no event of this unit's path", code="invalid_cursor", field="after")
        start = found + 1
    rows = tuple(path[start:start + limit])
    more = start + len(rows) < len(path)
    return PathPage(rows=rows, start=start, total=len(path), next=rows[-1]["event_id"] if more and rows else None)


def summary_of(path: Sequence[Mapping[str, Any]], flagged: set[str], *, first: int = SUMMARY_FIRST,
               last: int = SUMMARY_LAST) -> list[tuple[int, Mapping[str, Any]]]:
    """(position, row) of the steps a long journey's summary shows: the first ``first`` (where it began), the last
    ``last`` (where it is now) and every step a reason names, in path order."""
    keep = set(range(min(first, len(path)))) | set(range(max(0, len(path) - last), len(path)))
    keep |= {i for i, row in enumerate(path) if row.get("event_id") in flagged}
    return [(i, path[i]) for i in sorted(keep)]
