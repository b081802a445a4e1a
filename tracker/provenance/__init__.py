"""Provenance: rebuild a unit's path from the ledger and judge it (SPEC §4, §7).

A judgement is a numbered sequence, each step adding named reasons (tracker.provenance.reasons):
  0 gather the path: the unit's events and those of every container it travelled in (path)
  1 ledger integrity: checkpoint signature, no erased leaves, inclusion of every path event (integrity)
  2 signers, 3 origin (brand owner or licensee; a container's packing), 4 chain (prev links) (judge)
  5 custody, borders from the registry, sale and consumer scans (custody)
Items (01/...) and containers (00/...) are judged by the same rules.
"""
from __future__ import annotations

from .integrity import COMPLETENESS_TTL, COMPLETENESS_TTL_MAX
from .lookup import Provenance, caches_of, head, lookup
from .paging import MAX_PAGE, PathPage, page_of, summary_of
from .path import MAX_NESTING, MAX_PATH, LookupCaches, PathEvent
from .reasons import SEVERITY, VERDICTS, Reason, verdict_for

__all__ = ["Reason", "PathEvent", "Provenance", "LookupCaches", "lookup", "head", "caches_of", "SEVERITY",
           "VERDICTS", "verdict_for", "MAX_PATH", "MAX_NESTING", "COMPLETENESS_TTL", "COMPLETENESS_TTL_MAX",
           "MAX_PAGE", "PathPage", "page_of", "summary_of"]
