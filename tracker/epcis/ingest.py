"""``tracker epcis import``: validate an EPCIS document, plan one statement per event, sign each with the
device's key, and append them with ``Ledger.append_batch`` — one transaction per chunk of at most
``MAX_BATCH`` events, so a process that dies mid-import leaves each chunk wholly in or wholly out (and a re-run
finishes the job: recorded events are recognised, not recorded twice)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from ..dsse import sign_envelope
from ..errors import TrackerError
from ..keys import KeyPair
from ..ledger import MAX_BATCH, AppendResult, Ledger
from .importer import ImportRefused, Planned, plan_import
from .schema import validate_document
from .state import LedgerState
from .vocab import CONTEXT

__all__ = ["ImportResult", "import_document", "signer_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """One event's outcome: ``status`` is created, existing (recorded before) or refused (``error`` says why)."""

    index: int
    source_event: str | None
    status: str
    event_id: str | None = None
    leaf_index: int | None = None
    error: TrackerError | None = None
    ignored: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "eventID": self.source_event, "status": self.status}
        if self.event_id:
            out["event_id"] = self.event_id
        if self.leaf_index is not None:
            out["leaf_index"] = self.leaf_index
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.message,
                            **({"field": self.error.field} if self.error.field else {})}
        if self.ignored:
            out["ignored"] = list(self.ignored)
        return out


def signer_of(ledger: Ledger, key: KeyPair) -> str:
    """The party a device key belongs to. Raises ImportRefused when the key is not registered."""
    with ledger.store.read() as txn:
        party = txn.party_for_keyid(key.keyid)
    if party is None:
        raise ImportRefused(f"key {key.keyid} is not registered to any party", code="unknown_key", field="key")
    return party


def import_document(ledger: Ledger, doc: Any, *, key: KeyPair, now: datetime, actor: str | None = None,
                    directory: Mapping[str, str] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[ImportResult]:
    """Import every event of ``doc``; one result per event, in order. Raises InvalidDocument (nothing imported)
    when the document is not valid EPCIS 2.0."""
    events = validate_document(doc)
    actor = actor or signer_of(ledger, key)
    context = doc.get("@context", list(CONTEXT))
    results: list[ImportResult] = []
    for start in range(0, len(events), MAX_BATCH):
        chunk = events[start:start + MAX_BATCH]
        plan = plan_import(chunk, actor=actor, view=LedgerState(ledger), context=context, directory=directory)
        to_sign = [p for p in plan if isinstance(p, Planned) and not p.existing]
        appended = ledger.append_batch([sign_envelope(p.payload, [key]) for p in to_sign if p.payload], now=now)
        outcome = dict(zip((p.index for p in to_sign), appended))
        for pos, p in enumerate(plan):
            results.append(_result(start + pos, chunk[pos], p, outcome))
        if progress:
            progress(len(chunk), len(events))
    return results


def _result(index: int, event: Any, p: "Planned | TrackerError",
            outcome: Mapping[int, "AppendResult | TrackerError"]) -> ImportResult:
    if isinstance(p, TrackerError):
        given = event.get("eventID") if isinstance(event, dict) else None
        return ImportResult(index=index, source_event=given if isinstance(given, str) else None, status="refused",
                            error=p)
    if p.existing:
        return ImportResult(index=index, source_event=p.source_event, status="existing", event_id=p.event_id,
                            ignored=p.ignored)
    done = outcome[p.index]
    if isinstance(done, TrackerError):
        return ImportResult(index=index, source_event=p.source_event, status="refused", error=done,
                            ignored=p.ignored)
    return ImportResult(index=index, source_event=p.source_event, status="created" if done.created else "existing",
                        event_id=done.event_id, leaf_index=done.leaf_index, ignored=p.ignored)


def summary(results: Sequence[ImportResult]) -> dict[str, int]:
    counts = {"created": 0, "existing": 0, "refused": 0}
    for r in results:
        counts[r.status] += 1
    return counts


__all__ += ["summary"]
