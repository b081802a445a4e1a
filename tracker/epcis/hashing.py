"""CBV 2.0 event hash IDs (``ni:///sha-256;...?ver=CBV2.0``), computed by GS1's reference implementation
(the ``epcis-event-hash-generator`` package, pinned), never re-implemented here.

The package is a prototype and this module is the only one that imports it, so its rough edges are handled
once, here:
- it keeps process-wide state (a JSON-LD namespace table that grows with every document it has seen, and a
  separator), so calls are serialised under a lock and the namespace table starts empty for every call —
  otherwise a prefix one document declared would change the hashes of later documents;
- its JSON-LD document loader falls back to the network for unknown ``@context`` URLs: it is replaced by one
  that serves only the bundled GS1 contexts, and any other context is refused (the core does no networking);
- inside ``bizTransaction``, ``source`` and ``destination`` entries it hashes the fields in the order the JSON
  happens to list them, so the same event written ``{"source", "type"}`` or ``{"type", "source"}`` gets two
  IDs: every such entry is rewritten type-first (the order CBV 2.0 requires) before hashing.
Waybill's own extension fields (``waybill:*``) are links added on export, not event content: they are removed
before hashing, so an exported event keeps the ID of the event it records."""
from __future__ import annotations

import copy
import threading
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

from ..errors import InvalidInput
from .vocab import CONTEXT, EPCIS_CONTEXT, WAYBILL_PREFIX

__all__ = ["event_hash_ids", "event_hash_id", "HashUnavailable"]

_LOCK = threading.Lock()
_TYPED_LISTS = (("bizTransactionList", "bizTransaction"), ("sourceList", "source"),
                ("destinationList", "destination"))
_BUNDLED = {  # context URL -> file shipped inside the reference package
    "https://gs1.github.io/EPCIS/epcis-context.jsonld":
        "14b10c9d3e92d35f577bfc610fe5ec15aa2941124987919389d7cd9998516861.jsonld",
    EPCIS_CONTEXT: "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld",
}


class HashUnavailable(InvalidInput):
    code = "event_hash_unavailable"


@lru_cache(maxsize=1)
def _generator() -> tuple[Any, Any]:
    import json

    from epcis_event_hash_generator import hash_generator, json_to_py  # the one import of the package
    from pyld import jsonld

    def offline_loader(url: str, options: Any = None) -> dict[str, Any]:
        name = _BUNDLED.get(url)
        if name is None:
            raise jsonld.JsonLdError(f"context {url} is not available offline", "jsonld.LoadDocumentError",
                                     code="loading document failed")
        text = resources.files("epcis_event_hash_generator").joinpath(name).read_text("utf-8")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": json.loads(text)}

    jsonld.set_document_loader(offline_loader)
    return hash_generator, json_to_py


def _normalised(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if not k.startswith(WAYBILL_PREFIX + ":") and k != "@context"}
    for list_name, value_name in _TYPED_LISTS:
        entries = out.get(list_name)
        if isinstance(entries, list):
            out[list_name] = [({"type": e["type"], **{k: v for k, v in e.items() if k != "type"}}
                               if isinstance(e, dict) and "type" in e else e) for e in entries]
    return out


def event_hash_ids(events: Sequence[dict[str, Any]], *, context: Any = CONTEXT) -> list[str]:
    """The CBV 2.0 event hash ID of each event (as written in a document whose ``@context`` is ``context``).
    Raises HashUnavailable when the reference implementation cannot read an event (e.g. a context that is
    not available offline)."""
    if not events:
        return []
    generator, reader = _generator()
    contexts = context if isinstance(context, (list, tuple)) else [context]
    unknown = [c for c in contexts if isinstance(c, str) and c not in _BUNDLED]
    if unknown:
        raise HashUnavailable(f"cannot compute event hash IDs: @context {unknown[0]} is not available offline; "
                              "give the events an eventID", field="@context")
    doc = {"@context": copy.deepcopy(list(contexts)), "type": "EPCISDocument", "schemaVersion": "2.0",
           "creationDate": "2000-01-01T00:00:00Z",
           "epcisBody": {"eventList": [_normalised(e) for e in events]}}
    with _LOCK:
        reader._namespaces.clear()
        try:
            parsed = reader.event_list_from_epcis_document_json(doc)
            ids = generator.epcis_hashes_from_events(parsed)
        except Exception as exc:  # the prototype raises anything from pyld and its own parsing
            raise HashUnavailable(f"the reference event hash implementation cannot read these events: {exc}",
                                  field="eventList") from exc
        finally:
            reader._namespaces.clear()
    if len(ids) != len(events):  # it logs and skips events it cannot parse
        raise HashUnavailable("the reference event hash implementation skipped an event it could not read",
                              field="eventList")
    return list(ids)


def event_hash_id(event: dict[str, Any], *, context: Any = CONTEXT) -> str:
    return event_hash_ids([event], context=context)[0]
