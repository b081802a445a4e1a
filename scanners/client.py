"""HTTP client of the public JSON API (SPEC §4, ``/api/v1``): what a handheld needs and nothing more.

It speaks only the documented JSON (a third-party scanner could do the same) and never sees a private key:
envelopes arrive here already signed. Failures are translated into two errors:

* :class:`ServerUnreachable` — no HTTP answer at all (refused, DNS, timeout): the device is offline.
* :class:`ApiError` — an HTTP error answer, carrying the status and the SPEC error ``code``.
  ``retryable`` is true for 408/429/5xx (try again later) and false for a refusal (4xx): re-sending the
  same signed bytes would be refused again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, urlencode, urlsplit

import requests

from tracker.dsse import Envelope
from tracker.errors import TrackerError
from tracker.identifiers import ContainerKey, ItemKey, parse_key

__all__ = ["ApiClient", "ApiError", "ServerUnreachable", "PostResult", "DEFAULT_SERVER"]

DEFAULT_SERVER = "http://127.0.0.1:8000"
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class ServerUnreachable(TrackerError):
    """No answer from the server (connection refused, DNS failure, timeout)."""

    code = "server_unreachable"
    http_status = 503


class ApiError(TrackerError):
    """The server answered with an HTTP error; ``code`` is its SPEC error code (or ``http_<status>``)."""

    http_status = 400

    def __init__(self, message: str, *, status: int, code: str, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.http_status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in _RETRYABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class PostResult:
    """The server's acknowledgement. ``created`` is True for a new entry (201), False for an envelope the
    ledger already held (200), None when the answer does not say (batch results)."""

    event_id: str
    leaf_index: int
    created: bool | None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _api_error(response: requests.Response) -> ApiError:
    code, message = f"http_{response.status_code}", f"HTTP {response.status_code} {response.reason or ''}".strip()
    try:
        doc = response.json()
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
    except ValueError:
        pass  # not JSON (a proxy's error page): keep the HTTP status as the code
    return ApiError(message, status=response.status_code, code=code, retry_after=_retry_after(response))


def _result(doc: Any) -> PostResult:
    if not isinstance(doc, dict) or not isinstance(doc.get("event_id"), str) or not isinstance(doc.get("leaf_index"), int):
        raise ApiError(f"unexpected answer from the server: {str(doc)[:200]}", status=502, code="bad_answer")
    created = doc.get("created")
    return PostResult(event_id=doc["event_id"], leaf_index=doc["leaf_index"],
                      created=created if isinstance(created, bool) else None)


class ApiClient:
    """A session against one Waybill server. ``timeout`` is (connect, read) seconds."""

    def __init__(self, server: str = DEFAULT_SERVER, *, timeout: tuple[float, float] = (3.0, 30.0),
                 session: requests.Session | None = None, read_retries: int = 3, max_wait: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        server = server.strip().rstrip("/")
        if "://" not in server:
            server = "http://" + server
        self.server = server
        self.base = server + "/api/v1"
        self.timeout = timeout
        self.read_retries, self.max_wait, self.sleep = read_retries, max_wait, sleep
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "waybill-scanner/1")
        self.session.headers["Accept"] = "application/json"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: Any = None,
                 headers: Mapping[str, str] | None = None) -> requests.Response:
        url = (self.server + path) if path.startswith("/api/") else self.base + path
        try:
            if body is None:
                return self.session.request(method, url, timeout=self.timeout, headers=dict(headers or {}))
            data = json.dumps(body, separators=(",", ":")).encode()
            return self.session.request(method, url, data=data, timeout=self.timeout,
                                        headers={"Content-Type": "application/json", **(headers or {})})
        except requests.Timeout as exc:
            raise ServerUnreachable(f"{self.server} did not answer in time ({method} {path})") from exc
        except requests.ConnectionError as exc:
            raise ServerUnreachable(f"cannot reach {self.server}: {_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise ServerUnreachable(f"request to {self.server} failed: {exc}") from exc

    def _json(self, method: str, path: str, *, body: Any = None, ok: Sequence[int] = (200,),
              headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        response = self._response(method, path, body=body, ok=ok, headers=headers)
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise ApiError(f"the server's answer to {method} {path} is not JSON", status=502,
                           code="bad_answer") from exc

    def _response(self, method: str, path: str, *, body: Any = None, ok: Sequence[int] = (200,),
                  headers: Mapping[str, str] | None = None) -> requests.Response:
        response = self._request(method, path, body=body, headers=headers)
        # Reads are safe to repeat: when the server asks us to slow down (lookups are rate-limited per
        # client), wait as told, a bounded number of times. Writes are retried by the outbox, in order.
        for _ in range(self.read_retries if method == "GET" else 0):
            if response.status_code not in (429, 503):
                break
            wait = _retry_after(response)
            if wait is None or wait > self.max_wait:
                break
            self.sleep(wait)
            response = self._request(method, path, body=body, headers=headers)
        if response.status_code not in ok:
            raise _api_error(response)
        return response

    # --- writes ------------------------------------------------------------------------------------

    def post_event(self, envelope: Envelope | Mapping[str, Any]) -> PostResult:
        """POST /events. 201 → created, 200 → already stored (same ids). Raises ApiError / ServerUnreachable."""
        doc = envelope.to_json() if isinstance(envelope, Envelope) else envelope
        status, answer = self._json("POST", "/events", body=doc, ok=(200, 201))
        result = _result(answer)
        return PostResult(event_id=result.event_id, leaf_index=result.leaf_index, created=status == 201)

    def post_note(self, event_id: str, *, note: str, salt: str) -> bool:
        """POST /notes: the private note behind an inspect statement's note_commitment (salt as hex). True if the
        server stored it now, False if it had it already."""
        status, _ = self._json("POST", "/notes", body={"event_id": event_id, "note": note, "salt": salt},
                               ok=(200, 201))
        return status == 201

    def post_batch(self, envelopes: Sequence[Envelope | Mapping[str, Any]]) -> list[PostResult | ApiError]:
        """POST /events/batch (≤ 1000, applied in order): one PostResult or ApiError (status 422) per envelope."""
        docs = [e.to_json() if isinstance(e, Envelope) else e for e in envelopes]
        _, answer = self._json("POST", "/events/batch", body={"envelopes": docs})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(docs):
            raise ApiError("the server's batch answer does not hold one result per envelope", status=502,
                           code="bad_answer")
        out: list[PostResult | ApiError] = []
        for r in results:
            err = r.get("error") if isinstance(r, dict) else None
            if isinstance(err, dict):
                out.append(ApiError(str(err.get("message") or "refused"), status=422,
                                    code=str(err.get("code") or "rejected")))
            else:
                out.append(_result(r))
        return out

    def epcis_capture(self, envelope: Envelope, *, behaviour: str = "rollback") -> dict[str, Any]:
        """POST /epcis/capture: a party-signed EPCIS document with its signed statements. The capture job
        (per-event results and errors). Raises ApiError when the document as a whole is refused."""
        _, job = self._json("POST", "/epcis/capture", body=envelope.to_json(), ok=(202,),
                            headers={"GS1-Capture-Error-Behaviour": behaviour})
        if not isinstance(job, dict) or not isinstance(job.get("waybill:results"), list):
            raise ApiError("the server's capture answer has no per-event results", status=502, code="bad_answer")
        return job

    # --- reads -------------------------------------------------------------------------------------

    def epcis_events(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """GET /epcis/events, every page (following Link rel=next): the EPCIS events, in ledger order."""
        events: list[dict[str, Any]] = []
        path: str | None = "/epcis/events?" + urlencode(params)
        while path:
            response = self._response("GET", path)
            try:
                doc = response.json()
                events.extend(doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError("the server's EPCIS answer is not a query document", status=502,
                               code="bad_answer") from exc
            link = response.links.get("next", {}).get("url")
            path = urlsplit(link).path + "?" + urlsplit(link).query if link else None
        return events

    def head(self, key: str | ItemKey | ContainerKey) -> str | None:
        """The event id to put in ``prev`` for ``key``, or None when the server has no event for it.
        Items: GET /items/{gtin}/{serial}/head. Containers: GET /containers/{sscc}/head when the server offers
        it (not in SPEC v1), else None — the statement then names no prev for the container."""
        parsed = parse_key(str(key)) if not isinstance(key, (ItemKey, ContainerKey)) else key
        if isinstance(parsed, ItemKey):
            path = f"/items/{parsed.gtin}/{quote(parsed.serial, safe='')}/head"
        else:
            path = f"/containers/{parsed.sscc}/head"
        try:
            _, answer = self._json("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        event_id = answer.get("event_id") if isinstance(answer, dict) else None
        return event_id if isinstance(event_id, str) else None

    def item(self, gtin: str, serial: str) -> dict[str, Any]:
        """GET /items/{gtin}/{serial}: the provenance answer (path, verdict, reasons)."""
        return self._json("GET", f"/items/{gtin}/{quote(serial, safe='')}")[1]

    def event(self, event_id: str) -> dict[str, Any]:
        """GET /events/{event_id}: envelope and statement."""
        return self._json("GET", f"/events/{event_id}")[1]

    def party(self, party_id: str) -> dict[str, Any]:
        """GET /parties/{id}: public data (name, country, roles, keys)."""
        return self._json("GET", f"/parties/{quote(party_id, safe='')}")[1]

    def parties(self) -> list[dict[str, Any]]:
        """GET /parties."""
        answer = self._json("GET", "/parties")[1]
        return list(answer.get("parties", [])) if isinstance(answer, dict) else []


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests ConnectionError, e.g. 'Connection refused'."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "No route to host", "Network is unreachable", "timed out"):
        if marker in text:
            return marker.lower()
    return text[:200]
