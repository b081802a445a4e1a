"""GS1 identifiers: GTIN, serial (AI 21), SSCC, and every form they arrive in (Digital Link, element strings,
the bracketed human-readable form, what a label prints). Everything is normalised to the SPEC's canonical keys
before it reaches the ledger, so one item has exactly one spelling everywhere.

The one parser lives in :mod:`tracker.gs1`; this module keeps the names the rest of the code imports.
"""
from __future__ import annotations

from .gs1 import (
    CSET82,
    ContainerKey,
    DigitalLink,
    ItemKey,
    Key,
    ScannedCode,
    digital_link,
    gs1_check_digit,
    is_container_key,
    is_item_key,
    normalize_gtin,
    normalize_sscc,
    parse_code,
    parse_digital_link,
    parse_key,
    parse_link_path,
    printable,
    read_code,
    validate_serial,
)

__all__ = [
    "CSET82",
    "ItemKey",
    "ContainerKey",
    "DigitalLink",
    "Key",
    "ScannedCode",
    "gs1_check_digit",
    "normalize_gtin",
    "validate_serial",
    "normalize_sscc",
    "parse_key",
    "parse_code",
    "parse_digital_link",
    "parse_link_path",
    "printable",
    "read_code",
    "digital_link",
    "is_item_key",
    "is_container_key",
]
