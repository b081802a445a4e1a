"""`tracker epcis`: import EPCIS 2.0 documents (signed per event with a device key) and export an item's history.

Exit codes: 0 every event recorded (now or before); 1 an event or the document was refused; 2 usage error;
3 any other error."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

import click

from ..errors import InvalidIdentifier, InvalidInput
from ..home import open_ledger, read_passphrase
from ..identifiers import parse_code
from ..keys import read_key_file
from .epc import key_of_epc
from .export import item_history
from .ingest import import_document, summary
from .schema import InvalidDocument

__all__ = ["epcis"]


@click.group()
def epcis() -> None:
    """Speak EPCIS 2.0 / CBV 2.0: import events from logistics systems, export histories (docs/epcis.md)."""


@epcis.command("import")
@click.argument("document", type=click.File("rb"))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The device key that signs one statement per event (its party is the signer).")
@click.option("--actor", help="Party id of the signer (default: the party that owns the key).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True),
              help="File whose first line is the key passphrase (else WAYBILL_KEY_PASSPHRASE).")
@click.option("--quiet", is_flag=True, help="Print only the summary line, not one JSON line per event.")
def import_(document: Any, key_file: str, actor: str | None, passphrase_file: str | None, quiet: bool) -> None:
    """Import the events of an EPCIS 2.0 JSON-LD DOCUMENT: one JSON line per event (created, existing or
    refused, with the reason and the fields Waybill does not keep), then a summary. Re-importing is harmless."""
    try:
        doc = json.loads(document.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{document.name} is not JSON: {exc}", code="invalid_json") from exc
    key = read_key_file(key_file, passphrase=read_passphrase(passphrase_file))
    ledger = open_ledger()
    try:
        with click.progressbar(length=1, label="importing", file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done)
            results = import_document(ledger, doc, key=key, actor=actor, now=datetime.now(timezone.utc),
                                      progress=progress)
    except InvalidDocument as exc:
        for problem in exc.problems:
            click.echo(json.dumps({"error": {"code": exc.code, **problem.to_json()}}))
        click.echo(f"error: {exc.code}: {exc.message}: nothing was imported", err=True)
        sys.exit(1)
    if not quiet:
        for r in results:
            click.echo(json.dumps(r.to_json()))
    counts = summary(results)
    click.echo(f"{len(results)} events: {counts['created']} created, {counts['existing']} already recorded, "
               f"{counts['refused']} refused", err=True)
    if counts["refused"]:
        sys.exit(1)


@epcis.command("export")
@click.argument("item")
@click.option("--out", type=click.File("w"), default="-", help="Write the document here (default: stdout).")
def export(item: str, out: Any) -> None:
    """ITEM's whole history (Digital Link, element string, key or EPC URN) as an EPCISQueryDocument: every
    event with its CBV 2.0 event hash ID, its signed envelope and an inclusion proof to the signed checkpoint."""
    try:
        key = key_of_epc(item) if item.startswith("urn:epc:") else str(parse_code(item))
    except InvalidIdentifier:
        raise
    doc = item_history(open_ledger(writable=False), key, now=datetime.now(timezone.utc))
    out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
