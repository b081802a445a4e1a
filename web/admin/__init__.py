"""Admin pages: parties and their keys, users, device approvals and key revocations.

Registry changes are `party` statements signed in the admin's browser with the admin's own device key (a key
of party ``admin``): the server prepares the exact statement bytes, the browser shows and signs them, the
server checks the signed statement is exactly the requested change and appends it."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
