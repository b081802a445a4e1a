"""Consumer pages (SPEC §5): the item page a QR scan opens, and the home page (search, photo upload)."""
from flask import Blueprint

from ..routing import use_serial_path

bp = Blueprint("consumer", __name__)
use_serial_path(bp)

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
