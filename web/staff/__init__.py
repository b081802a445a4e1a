"""Staff pages: record handoffs (ship, receive, aggregate) by scanning codes; the browser signs."""
from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
