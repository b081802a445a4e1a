"""`scanner epcis import DOC`: the handheld imports an EPCIS 2.0 document over the public HTTP API only.

The device plans one statement per event (the same planner as ``tracker epcis import``), learning what the
ledger knows from the API: item heads from ``GET /items/{gtin}/{serial}/head``, everything else (container
heads and contents, shipments to confirm, events already recorded) from ``GET /epcis/events``. It signs every
statement and the document with its own key and sends them to ``POST /epcis/capture``: the server signs nothing.
Documents past the capture limit go in chunks, each chunk planned after the previous one was stored.
There is no offline queue for documents: an unreachable server is an error (exit 3), and a re-run is harmless."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Mapping, Sequence

import click

from tracker.dsse import parse_envelope
from tracker.epcis.capture import MAX_EVENTS, sign_capture
from tracker.epcis.epc import epc_uri
from tracker.epcis.importer import Planned, plan_import
from tracker.epcis.schema import InvalidDocument, validate_document
from tracker.epcis.vocab import CONTEXT, EVENT_LINK
from tracker.errors import TrackerError
from tracker.identifiers import is_container_key
from tracker.statements import KeyRecord, PartyRecord, Statement, parse_statement

from .client import ApiClient, ApiError

__all__ = ["HttpState", "epcis"]

_URL_KEYS = 40  # EPCs per query URL: stays far below common URL length limits


class HttpState:
    """What the ledger knows, asked over HTTP (a :class:`tracker.epcis.importer.LedgerView`)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._events: dict[str, list[tuple[str, Statement, dict[str, Any]]]] = {}
        self._parties: dict[str, PartyRecord | None] = {}

    def party(self, party_id: str) -> PartyRecord | None:
        if party_id not in self._parties:
            try:
                doc = self.client.party(party_id)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self._parties[party_id] = None
            else:
                self._parties[party_id] = PartyRecord(id=doc["id"], name=doc["name"], country=doc["country"],
                                                      roles=tuple(doc["roles"]), keys=tuple[KeyRecord, ...]())
        return self._parties[party_id]

    def _load(self, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys) - set(self._events))
        for start in range(0, len(wanted), _URL_KEYS):
            chunk = wanted[start:start + _URL_KEYS]
            for k in chunk:
                self._events[k] = []
            events = self.client.epcis_events({"MATCH_anyEPC": "|".join(epc_uri(k) for k in chunk),
                                               "perPage": "1000"})
            for event in events:
                link = event.get(EVENT_LINK) or {}
                st = parse_statement(parse_envelope(link["envelope"]).payload)
                for k in st.keys_touched:
                    if k in self._events and k in chunk:
                        self._events[k].append((link["eventId"], st, event))

    def _of(self, keys: Iterable[str]) -> list[tuple[str, Statement, dict[str, Any]]]:
        keys = set(keys)
        self._load(keys)
        seen: dict[str, tuple[str, Statement, dict[str, Any]]] = {}
        for k in keys:
            for row in self._events[k]:
                seen.setdefault(row[0], row)
        return list(seen.values())

    def heads(self, keys: Iterable[str]) -> dict[str, str]:
        out = {}
        for k in keys:
            head = self.client.head(k)
            if head is None and is_container_key(k):
                self._load([k])
                head = self._events[k][-1][0] if self._events[k] else None
            if head is not None:
                out[k] = head
        return out

    def contents(self, container: str) -> set[str]:
        self._load([container])
        inside: set[str] = set()
        for _, st, _ in self._events[container]:
            if st.container == container:
                (inside.update if st.type == "aggregate" else inside.difference_update)(st.items)
        return inside

    def shipments(self, keys: Iterable[str]) -> list[tuple[str, Statement]]:
        rows = sorted(self._of(keys), key=lambda row: row[2][EVENT_LINK]["leafIndex"])
        return [(eid, st) for eid, st, _ in rows if st.type == "ship"]

    def recorded(self, source_ids: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for eid, st, event in self._of({k for ks in source_ids.values() for k in ks}):
            if event.get("eventID") in source_ids:
                found.setdefault(event["eventID"], (st.actor, eid))
        return found


def _echo(index: int, event: Any, outcome: dict[str, Any]) -> None:
    given = event.get("eventID") if isinstance(event, dict) else None
    click.echo(json.dumps({"index": index, "eventID": outcome.pop("eventID", given), **outcome}))


@click.group()
def epcis() -> None:
    """EPCIS 2.0 documents from the systems a site already runs (docs/epcis.md)."""


@epcis.command("import")
@click.argument("document", type=click.File("rb"))
@click.pass_context
def import_(ctx: click.Context, document: Any) -> None:
    """Record every event of an EPCIS 2.0 JSON-LD DOCUMENT as a statement signed by this device: one JSON line
    per event (created, existing or refused with its reason). Exit 0 all recorded, 1 some refused."""
    from .cli import Device, Refused, _open_session

    device: Device = ctx.find_object(Device)  # type: ignore[assignment]
    try:
        doc = json.loads(document.read())
        events = validate_document(doc)
    except InvalidDocument as exc:
        for problem in exc.problems:
            click.echo(json.dumps({"error": {"code": exc.code, **problem.to_json()}}))
        raise Refused(f"{exc.message}: nothing was imported", code=exc.code) from None
    except ValueError as exc:
        raise Refused(f"{document.name} is not JSON: {exc}", code="invalid_json") from None
    session = _open_session(device, location_name=None, country=None)
    if not session.online:
        raise TrackerError(f"the server is unreachable ({session.offline_reason}): EPCIS documents are not queued; "
                           "run the import again when online", code="server_unreachable")
    context = doc.get("@context", list(CONTEXT))
    refused = 0
    for start in range(0, len(events), MAX_EVENTS):
        chunk = events[start:start + MAX_EVENTS]
        plan = plan_import(chunk, actor=session.party, view=HttpState(device.client), context=context)
        todo = [(i, p) for i, p in enumerate(plan) if isinstance(p, Planned) and not p.existing]
        results: dict[int, dict[str, Any]] = {}
        if todo:
            part = dict(doc, epcisBody={"eventList": [chunk[i] for i, _ in todo]})
            part.pop("epcisHeader", None)
            envelope = sign_capture(part, [p for _, p in todo], session.keypair)
            try:
                job = device.client.epcis_capture(envelope, behaviour="proceed")
            except ApiError as exc:
                if exc.retryable:
                    raise
                raise Refused(f"the server refused the document: {exc.message}", code=exc.code) from None
            errors = {e["index"]: e for e in job.get("errors", [])}
            for n, (i, p) in enumerate(todo):
                stored = job["waybill:results"][n]
                results[i] = ({"status": "created" if stored["created"] else "existing", "event_id": stored["event_id"],
                               "leaf_index": stored["leaf_index"]} if stored else
                              {"status": "refused", "error": {k: errors.get(n, {}).get(k) for k in ("code", "message")}})
        for i, one in enumerate(plan):
            if isinstance(one, TrackerError):
                outcome: dict[str, Any] = {"status": "refused", "error": {"code": one.code, "message": one.message}}
            elif one.existing:
                outcome = {"eventID": one.source_event, "status": "existing", "event_id": one.event_id}
            else:
                outcome = {"eventID": one.source_event, **results[i]}
            refused += outcome["status"] == "refused"
            _echo(start + i, chunk[i], outcome)
    click.echo(f"{len(events)} events, {refused} refused", err=True)
    if refused:
        sys.exit(1)
