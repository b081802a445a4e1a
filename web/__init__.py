"""The Waybill web app: the JSON API (``/api/v1``, SPEC §4) and the consumer pages (SPEC §5).

``create_app`` is the application factory. Production serving::

    WAYBILL_HOME=/srv/waybill gunicorn -c python:web.gunicorn_conf -b 127.0.0.1:8000 'web:create_app()'

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
    from tracker.scans import ScanPolicy, ScanRecorder
    from tracker.home import open_ledger, read_passphrase

    from . import errors, i18n, security, settings
    from .api import bp as api_bp
    from .auth import register as register_staff_side
    from .consumer import bp as consumer_bp
    from .tiles import bp as tiles_bp

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
    policy = ScanPolicy(after_sale_networks=int(app.config["WAYBILL_SCAN_AFTER_SALE_NETWORKS"]),
                        before_retail_networks=int(app.config["WAYBILL_SCAN_BEFORE_RETAIL_NETWORKS"]),
                        retention_days=int(app.config["WAYBILL_SCAN_RETENTION_DAYS"]))
    app.extensions["waybill_scans"] = ScanRecorder(ledger_handle.store, policy=policy,
                                                   flush_seconds=float(app.config["WAYBILL_SCAN_FLUSH_SECONDS"]))
    app.extensions["waybill_clock"] = ledger_clock(ledger_handle.store)

    hops = int(app.config.get("WAYBILL_PROXY_HOPS") or 0)
    if hops:
        # Behind a reverse proxy the client address (and so the rate-limit key) is in X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.jinja_env.add_extension("jinja2.ext.do")
    i18n.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(consumer_bp)
    app.register_blueprint(tiles_bp)
    _start_witnessing(app, ledger_handle)
    register_staff_side(app)  # auth, staff, customs, admin (web/auth)
    security.init_app(app, csrf_exempt=[api_bp, tiles_bp])
    errors.init_app(app)
    return app


def _start_witnessing(app: Flask, ledger_handle: Ledger) -> None:
    """The witness policy (``WAYBILL_HOME/witness-policy.txt`` or ``WAYBILL_POLICY``; ``test_config`` may hand
    one in as ``WAYBILL_WITNESS_POLICY``), and a background collector when it lists witness URLs."""
    from tracker.cosigning import load_policy

    policy = app.config.get("WAYBILL_WITNESS_POLICY")
    if policy is None and app.config.get("WAYBILL_CONFIG") is not None:
        policy = load_policy(app.config["WAYBILL_CONFIG"].home)
    app.extensions["waybill_policy"] = policy
    witnessing = str(app.config.get("WAYBILL_WITNESSING", "1")).lower() not in ("0", "false", "no", "off")
    if policy is not None and witnessing and ledger_handle.signing_key is not None and \
            any(w.url for w in policy.witnesses):
        from .cosigning import Collector

        collector = Collector(ledger_handle, policy)
        collector.start()
        app.extensions["waybill_collector"] = collector


def policy() -> Any:
    """The witness policy this app applies (tracker.policy.Policy), or None."""
    return current_app.extensions.get("waybill_policy")


def ledger() -> Ledger:
    """The ledger the current app serves."""
    return current_app.extensions["waybill"]


def now() -> datetime:
    """The server's time for everything the app records or judges (never behind what the ledger already
    recorded, never backwards within the process: tracker/clock.py)."""
    clock: Clock = current_app.extensions["waybill_clock"]
    return clock.now()
