"""Consumer pages (SPEC §5): the item page a QR scan opens, and the home page (search, photo upload)."""
from flask import Blueprint

bp = Blueprint("consumer", __name__)

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
