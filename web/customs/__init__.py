"""Customs dashboard for the officer's country: inbound goods awaiting clearance, flagged items, one-click
release/hold/seize (an `inspect` statement signed in the browser), charts and a CSV export."""
from flask import Blueprint

bp = Blueprint("customs", __name__, url_prefix="/customs")

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
