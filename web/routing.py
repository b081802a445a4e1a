"""URL converters shared by the blueprints."""
from __future__ import annotations

from flask import Blueprint
from werkzeug.routing import PathConverter


class SerialPathConverter(PathConverter):
    """``path``, but it may start with '/': a GS1 serial may ("/", "/A1" are valid AI-82), and its URL form
    ``%2F...`` arrives decoded. The stock converter refuses a leading '/', so such items answered 404 (API)
    or redirected to themselves forever (consumer page)."""

    regex = ".+?"
    part_isolating = False  # spans '/' (werkzeug infers isolation from a '/' in the regex, and there is none)


def use_serial_path(bp: Blueprint) -> None:
    """Make ``<serial_path:...>`` available to ``bp``'s rules (deferred functions run in recording order, so
    call this before the views module adds its rules)."""
    bp.record_once(lambda state: state.app.url_map.converters.setdefault("serial_path", SerialPathConverter))
