"""The JSON API, SPEC §4, under ``/api/v1``."""
from flask import Blueprint

from ..routing import use_serial_path

bp = Blueprint("api", __name__, url_prefix="/api/v1")
use_serial_path(bp)  # before the views add their rules

from . import epcis, views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
