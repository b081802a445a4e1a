"""Validation of EPCIS 2.0 documents against GS1's JSON Schema, before any mapping: every refusal names the
event (index and eventID) and the field (a JSON path inside the event)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Sequence

import jsonschema_rs
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

from ..errors import InvalidInput

__all__ = ["Problem", "InvalidDocument", "validate_document", "event_list", "document_problems"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a document: ``index`` is the event's position (None: the document itself)."""

    index: int | None
    event_id: str | None
    field: str
    message: str

    def describe(self) -> str:
        where = "document" if self.index is None else f"event {self.index}" + (
            f" ({self.event_id})" if self.event_id else "")
        return f"{where}: {self.field}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "eventID": self.event_id, "field": self.field, "message": self.message}


class InvalidDocument(InvalidInput):
    """The document is not valid EPCIS 2.0 JSON: nothing of it is imported."""

    code = "invalid_epcis_document"

    def __init__(self, problems: Sequence[Problem]) -> None:
        first = problems[0].describe() if problems else "not an EPCIS document"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}", field=problems[0].field if problems else None)
        self.problems = tuple(problems)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("data/EPCIS-JSON-Schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft7Validator:
    """The reference validator: slow (milliseconds per event) but it explains every error."""
    return Draft7Validator(_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """The same schema compiled by jsonschema-rs (microseconds per event): valid documents pass through it
    alone; an invalid one is explained by the reference validator."""
    return jsonschema_rs.Draft7Validator(_schema(), validate_formats=True)


def _deepest(error: ValidationError) -> ValidationError:
    """Inside anyOf/allOf/if-then the telling error is the deepest one (the field, not the whole event)."""
    best = error
    for sub in error.context or ():
        cand = _deepest(sub)
        if len(cand.absolute_path) > len(best.absolute_path):
            best = cand
    return best


_EVENT_PATHS = (("epcisBody", "eventList"), ("epcisBody", "queryResults", "resultsBody", "eventList"))


def event_list(doc: Any) -> list[Any]:
    """The events of an EPCISDocument or EPCISQueryDocument (in document order); [] when there are none."""
    if not isinstance(doc, dict):
        return []
    for path in _EVENT_PATHS:
        node: Any = doc
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, list):
            return node
    return []


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def _locate(error: ValidationError) -> tuple[int | None, str]:
    parts = list(error.absolute_path)
    for prefix in _EVENT_PATHS:
        n = len(prefix)
        index = parts[n] if len(parts) > n else None
        if tuple(parts[:n]) == prefix and isinstance(index, int):
            return index, _path(parts[n + 1:]).replace("(root)", "(event)")
    return None, _path(parts)


def document_problems(doc: Any) -> list[Problem]:
    """Every schema violation, at most one (the most telling) per event and one for the document itself."""
    if not isinstance(doc, dict):
        return [Problem(index=None, event_id=None, field="(root)", message="an EPCIS document is a JSON object")]
    if doc.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        return [Problem(index=None, event_id=None, field="type",
                        message="type must be EPCISDocument or EPCISQueryDocument")]
    try:
        if _fast_validator().is_valid(doc):
            return [] if event_list(doc) else [Problem(index=None, event_id=None, field="epcisBody.eventList",
                                                       message="the document has no events")]
    except (ValueError, TypeError, OverflowError):
        pass  # something jsonschema-rs cannot represent: let the reference validator say what it is
    grouped: dict[int | None, list[ValidationError]] = {}
    for error in _validator().iter_errors(doc):
        index, _ = _locate(error)
        grouped.setdefault(index, []).append(error)
    events = event_list(doc)
    problems = []
    for index in sorted(grouped, key=lambda i: -1 if i is None else i):
        error = _deepest(best_match(grouped[index]))
        _, field = _locate(error)
        event = events[index] if index is not None and index < len(events) else None
        event_id = event.get("eventID") if isinstance(event, dict) and isinstance(event.get("eventID"), str) else None
        problems.append(Problem(index=index, event_id=event_id, field=field, message=error.message[:300]))
    if not problems and not events:
        problems.append(Problem(index=None, event_id=None, field="epcisBody.eventList", message="the document has no events"))
    return problems


def validate_document(doc: Any) -> list[Any]:
    """Check ``doc`` against the EPCIS 2.0 JSON Schema; return its events. Raises InvalidDocument."""
    problems = document_problems(doc)
    if problems:
        raise InvalidDocument(problems)
    return event_list(doc)
