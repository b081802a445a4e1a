"""`tracker licence`: a brand owner licenses a contract manufacturer for some of its GS1 company prefixes.

The licence is a statement the brand owner signs with its own device key, like every write (docs/verdicts.md).
Exit codes as `tracker record`: 0 appended, 1 refused, 2 usage error, 3 other errors.
"""
from __future__ import annotations

import json
from typing import Any

import click

from .cli import _load_key, _now, _passphrase_opt
from .errors import Rejected
from .home import open_ledger
from .signing import new_statement, sign_statement
from .statements import format_time, parse_time

__all__ = ["licence"]


@click.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The brand owner's device key file.")
@click.option("--licensee", required=True, help="Party id of the contract manufacturer.")
@click.option("--gs1-prefix", "prefixes", multiple=True, required=True,
              help="A GS1 company prefix the brand owner owns (or a narrower range of one); repeatable.")
@click.option("--not-before", help="RFC 3339 UTC start of the licence (default: now).")
@click.option("--not-after", help="RFC 3339 UTC end of the licence (default: open-ended). Signing a new licence "
                                  "with an earlier end ends it.")
@_passphrase_opt
def licence(key_file: str, licensee: str, prefixes: tuple[str, ...], not_before: str | None, not_after: str | None,
            passphrase_file: str | None) -> None:
    """License LICENSEE to commission GTINs under your GS1 company prefixes."""
    ledger = open_ledger()
    key = _load_key(key_file, passphrase_file)
    with ledger.store.read() as txn:
        actor = txn.party_for_keyid(key.keyid)
    if actor is None:
        raise Rejected(f"key {key.keyid} is not registered to any party", code="unknown_key", field="--key")
    owner = ledger.party(actor)
    now = _now(ledger).replace(microsecond=0)
    fields: dict[str, Any] = {"licensee": licensee, "gs1_prefixes": list(prefixes),
              "not_before": format_time(parse_time(not_before, "--not-before")) if not_before else format_time(now)}
    if not_after:
        fields["not_after"] = format_time(parse_time(not_after, "--not-after"))
    doc = new_statement("licence", actor=actor, time=now, location={"name": owner.name, "country": owner.country},
                        **fields)
    result = ledger.append(sign_statement(doc, key), now=_now(ledger))
    click.echo(json.dumps({"event_id": result.event_id, "leaf_index": result.leaf_index, "created": result.created}))
