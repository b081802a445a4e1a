"""EPCIS capture: a party pushes an EPCIS document, signed by its own key, without a Waybill client on the
other end of the line.

The server never signs for a party. What it receives is a DSSE envelope (payload type
``application/vnd.waybill.epcis+json``) over an EPCIS 2.0 document whose header carries, under
``waybill:statements``, one signed Waybill statement per event, in event order — signed by the same party.
The server checks the document signature under the registry (who is speaking), validates the document,
re-derives every statement from its event and requires the signed one to say exactly that (so a statement
cannot claim what its event does not), then appends the signed statements through the normal door. The
ledger stores those statements, signed by the party itself: ``tracker verify`` and lookups treat them like any
other. :func:`sign_capture` builds such an envelope from a plan (``tracker.epcis.importer``)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from ..dsse import Envelope, parse_envelope, sign_envelope
from ..errors import InvalidInput, Rejected, TrackerError
from ..keys import KeyPair, verifier_for
from ..statements import Statement, parse_statement, statement_bytes
from .importer import Planned
from .hashing import event_hash_ids
from .mapping import Draft, draft_of_event
from .schema import Problem, validate_document
from .vocab import CONTEXT, PAYLOAD_TYPE, WAYBILL_PREFIX

if TYPE_CHECKING:  # the server side only: a handheld builds captures without loading the ledger
    from ..ledger import Ledger

__all__ = ["CaptureRefused", "Capture", "verify_capture", "sign_capture", "STATEMENTS", "MAX_DOCUMENT_BYTES",
           "MAX_EVENTS"]

STATEMENTS = f"{WAYBILL_PREFIX}:statements"  # epcisHeader field: the signed statements, one per event
MAX_DOCUMENT_BYTES = 12 * 1024 * 1024  # base64 in a 16 MiB request body (WAYBILL_MAX_BODY_BYTES)
MAX_EVENTS = 1000  # GS1-EPCIS-Capture-Limit


class CaptureRefused(InvalidInput):
    """The capture as a whole is refused (signature, document, statements): nothing is stored."""

    code = "capture_refused"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 problems: Sequence[Problem] = (), status: int = 400) -> None:
        super().__init__(message, code=code, field=field)
        self.problems = tuple(problems)
        self.http_status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """A verified capture: who signed it, and per event either its signed statement or why it was refused."""

    party: str
    events: tuple[Any, ...]
    statements: tuple[Envelope | TrackerError, ...]


def _signer(ledger: Ledger, env: Envelope, now: datetime) -> str:
    from ..ledger import party_from_record

    for sig in env.signatures:
        with ledger.store.read() as txn:
            party_id = txn.party_for_keyid(sig.keyid)
            record = txn.party_record(party_id) if party_id else None
        if record is None:
            continue
        key = party_from_record(record).key(sig.keyid)
        if key is None or key.revoked_by(now) or not key.valid_at(now):
            continue
        if verifier_for(key.public_key).is_valid(env.pae(), sig.sig):
            return party_from_record(record).id
    raise CaptureRefused("the document is not signed by a valid key of a registered party", code="unauthorized",
                         field="signatures", status=401)


def _same(draft: Draft, st: Statement, party: str, source: str) -> str | None:
    """What the signed statement says differently from its event, or None."""
    checks = [
        (st.actor == party, f"actor is {st.actor}, but the document is signed by {party}"),
        (st.type == draft.type, f"a {draft.type} event is signed as a {st.type} statement"),
        (set(st.items) == set(draft.items) and st.container == draft.container, "the statement names other EPCs"),
        (st.time == draft.time, f"time {st.time_str} is not the event's eventTime"),
        (st.raw.get("source_event") == source, f"source_event must be the event's ID {source}"),
        (draft.to is None or st.to == draft.to, f"the event ships to {draft.to}, the statement to {st.to}"),
        (draft.from_ is None or st.from_ == draft.from_, f"the event receives from {draft.from_}"),
        (draft.by is None or draft.by == party, f"the event says {draft.by} did this, not {party}"),
        (draft.decision is None or st.decision == draft.decision, "the decision differs from the disposition"),
        (draft.product is None or all(st.product and st.product.get(k) == v for k, v in draft.product.items()
                                      if k != "name"), "the product differs from the event's GTIN, lot or expiry"),
        (draft.location is None or (st.location["name"], st.location["country"]) == (
            draft.location["name"], draft.location["country"]), "the location differs from the event's"),
        (draft.gln is None or st.location.get("gln") == draft.gln, "the location GLN differs from the event's"),
    ]
    return next((why for ok, why in checks if not ok), None)


def verify_capture(ledger: Ledger, body: Any, *, now: datetime) -> Capture:
    """Check a capture envelope. Raises CaptureRefused for the whole; per-event problems come back in
    ``Capture.statements`` (an error in the event's place)."""
    try:
        env = parse_envelope(body, payload_type=PAYLOAD_TYPE, max_payload=MAX_DOCUMENT_BYTES)
    except TrackerError as exc:
        raise CaptureRefused(f"the body must be a DSSE envelope of type {PAYLOAD_TYPE}: {exc.message}",
                             code="invalid_envelope", field=exc.field) from exc
    party = _signer(ledger, env, now)
    try:
        doc = json.loads(env.payload)
    except ValueError as exc:
        raise CaptureRefused("the envelope's payload is not a JSON document", code="invalid_json") from exc
    try:
        events = validate_document(doc)
    except TrackerError as exc:
        raise CaptureRefused(exc.message, code=exc.code, field=exc.field, problems=getattr(exc, "problems", ()))
    if len(events) > MAX_EVENTS:
        raise CaptureRefused(f"a capture holds at most {MAX_EVENTS} events (GS1-EPCIS-Capture-Limit)",
                             code="capture_limit_exceeded", status=413)
    signed = (doc.get("epcisHeader") or {}).get(STATEMENTS)
    if not isinstance(signed, list) or len(signed) != len(events):
        raise CaptureRefused(f"epcisHeader.{STATEMENTS} must hold one signed statement per event ({len(events)}), "
                             "in event order: the server never signs for a party (docs/epcis.md)",
                             code="missing_statements", field=f"epcisHeader.{STATEMENTS}")
    need_hash = [i for i, e in enumerate(events) if not isinstance(e.get("eventID"), str)]
    hashes = dict(zip(need_hash, event_hash_ids([events[i] for i in need_hash], context=doc.get("@context", CONTEXT))))
    out: list[Envelope | TrackerError] = []
    for i, (event, statement_env) in enumerate(zip(events, signed)):
        try:
            draft = draft_of_event(event, index=i)
            st_env = parse_envelope(statement_env)
            why = _same(draft, parse_statement(st_env.payload), party, event.get("eventID") or hashes[i])
            if why:
                raise Rejected(f"the signed statement does not record its event: {why}", code="statement_mismatch",
                               field=f"epcisHeader.{STATEMENTS}[{i}]")
            out.append(st_env)
        except TrackerError as exc:
            out.append(exc)
    return Capture(party=party, events=tuple(events), statements=tuple(out))


def sign_capture(doc: dict[str, Any], plan: Sequence[Planned | TrackerError], key: KeyPair) -> Envelope:
    """The capture envelope for ``doc``: every planned statement signed with ``key`` into the header, then the
    document signed with the same key. Raises InvalidInput when an event has no statement to sign."""
    bad = next((i for i, p in enumerate(plan) if isinstance(p, TrackerError)), None)
    if bad is not None:
        err = plan[bad]
        raise InvalidInput(f"event {bad} cannot be captured: {err}", code=getattr(err, "code", "invalid_input"))
    statements = []
    for p in plan:
        assert isinstance(p, Planned)
        if p.payload is None:
            raise InvalidInput(f"event {p.index} is already recorded as {p.event_id}: leave it out of the capture",
                               code="already_recorded")
        statements.append(sign_envelope(p.payload, [key]).to_json())
    signed = dict(doc)
    signed["epcisHeader"] = dict(doc.get("epcisHeader") or {}, **{STATEMENTS: statements})
    return sign_envelope(statement_bytes(signed), [key], payload_type=PAYLOAD_TYPE)
