"""The Waybill web app: the JSON API (``/api/v1``, SPEC §4) and the consumer pages (SPEC §5).

``create_app`` is the application factory. Production serving::

    WAYBILL_HOME=/srv/waybill gunicorn -w 4 -b 127.0.0.1:8000 'web:create_app()'

Settings come from the environment (see ``web.settings``) unless ``test_config`` overrides them;
``test_config["LEDGER"]`` hands in a ready :class:`tracker.ledger.Ledger`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from flask import Flask, current_app

from tracker.clock import Clock, ledger_clock
from tracker.ledger import Ledger

__all__ = ["create_app", "ledger", "now"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Raises TrackerError (code ``not_initialised``) when there is no ledger to serve."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from tracker.config import load_config
    from tracker.home import open_ledger, read_passphrase

    from . import errors, security, settings
    from .api import bp as api_bp
    from .auth import register as register_staff_side
    from .consumer import bp as consumer_bp

    app = Flask(__name__)
    app.config.from_mapping(settings.from_environment())
    if test_config is not None:
        app.config.from_mapping(test_config)

    ledger_handle = app.config.get("LEDGER")
    if ledger_handle is None:
        config = app.config.get("WAYBILL_CONFIG") or load_config()
        app.config["WAYBILL_CONFIG"] = config
        ledger_handle = open_ledger(config, passphrase=read_passphrase())
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = settings.persistent_secret(config.home)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.ephemeral_secret()
    app.extensions["waybill"] = ledger_handle
    app.extensions["waybill_clock"] = ledger_clock(ledger_handle.store)

    hops = int(app.config.get("WAYBILL_PROXY_HOPS") or 0)
    if hops:
        # Behind a reverse proxy the client address (and so the rate-limit key) is in X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.register_blueprint(api_bp)
    app.register_blueprint(consumer_bp)
    register_staff_side(app)  # auth, staff, customs, admin (web/auth)
    security.init_app(app, csrf_exempt=[api_bp])
    errors.init_app(app)
    return app


def ledger() -> Ledger:
    """The ledger the current app serves."""
    return current_app.extensions["waybill"]


def now() -> datetime:
    """The server's time for everything the app records or judges (never behind what the ledger already
    recorded, never backwards within the process: tracker/clock.py)."""
    clock: Clock = current_app.extensions["waybill_clock"]
    return clock.now()
