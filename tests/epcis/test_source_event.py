"""The one new statement field, `source_event`: a signed URI naming the EPCIS event a statement records."""
from __future__ import annotations

import pytest

from tests.store.helpers import location
from tracker.errors import InvalidStatement
from tracker.signing import new_statement
from tracker.statements import parse_statement, statement_bytes

GOOD = ["urn:uuid:5d3c82cc-3fb2-4b70-af4a-914f1f839c5b",
        "ni:///sha-256;6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7?ver=CBV2.0",
        "https://events.example/e/1?x=%20", "x:" + "a" * 298]
BAD = ["", "no-scheme", "urn:uuid:has space", "urn:x:tab\there", "urn:x:\u00e9", "x:" + "a" * 299, 42, None,
       ["urn:uuid:1"], "1http://digits-first"]


def _statement(source_event: object) -> bytes:
    doc = new_statement("commission", actor="acme", time="2026-03-02T09:00:00Z", location=location("acme"),
                        items=["01/09506000134352/21/S1"], product={"gtin": "09506000134352", "name": "Drill"})
    doc["source_event"] = source_event
    return statement_bytes(doc)


@pytest.mark.parametrize("value", GOOD)
def test_a_uri_is_kept_as_signed(value: str) -> None:
    assert parse_statement(_statement(value)).raw["source_event"] == value


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_anything_else_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidStatement) as info:
        parse_statement(_statement(value))
    assert info.value.field == "source_event"


def test_statements_without_it_are_unchanged() -> None:
    doc = new_statement("commission", actor="acme", time="2026-03-02T09:00:00Z", location=location("acme"),
                        items=["01/09506000134352/21/S1"], product={"gtin": "09506000134352", "name": "Drill"})
    assert "source_event" not in parse_statement(statement_bytes(doc)).raw
