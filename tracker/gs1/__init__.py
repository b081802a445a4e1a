"""GS1 identification, read one way everywhere: the canonical keys (``keys``), Application Identifiers from
biip's copy of GS1's table (``ais``), element strings (``elements``), Digital Link URIs (``links``), and the
one entry point for anything scanned or typed (``codes.read_code``). ``tracker.identifiers`` re-exports the
public names."""
from __future__ import annotations

from .codes import MAX_CODE_LENGTH, ScannedCode, parse_code, read_code
from .elements import printable
from .keys import (
    CSET82,
    ContainerKey,
    ItemKey,
    Key,
    digital_link,
    gs1_check_digit,
    is_container_key,
    is_item_key,
    normalize_gtin,
    normalize_sscc,
    parse_key,
    validate_serial,
)
from .links import DigitalLink, parse_digital_link, parse_link_path

__all__ = [
    "CSET82",
    "ContainerKey",
    "DigitalLink",
    "ItemKey",
    "Key",
    "MAX_CODE_LENGTH",
    "ScannedCode",
    "digital_link",
    "gs1_check_digit",
    "is_container_key",
    "is_item_key",
    "normalize_gtin",
    "normalize_sscc",
    "parse_code",
    "parse_digital_link",
    "parse_key",
    "parse_link_path",
    "printable",
    "read_code",
    "validate_serial",
]
