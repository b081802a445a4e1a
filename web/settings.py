"""Web settings from the environment (so ``gunicorn 'web:create_app()'`` needs nothing but env vars).

==============================  =====================================================================
``WAYBILL_HOME``, ``WAYBILL_DATABASE_URL``  where the ledger lives (tracker.config)
``WAYBILL_SECRET_KEY``          session/CSRF secret; default: generated once into WAYBILL_HOME/web-secret.key
``WAYBILL_LOOKUP_LIMIT``        per-client limit on public lookups (default ``120 per minute``)
``WAYBILL_SCAN_LIMIT``          per-client limit on photo uploads, ``POST /scan`` (default ``10 per minute; 60 per hour``)
``WAYBILL_WRITE_LIMIT``         per-client limit on API writes (default ``600 per minute``)
``WAYBILL_KEY_WRITE_LIMIT``     per-signing-key limit on ``POST /api/v1/events`` (default ``300 per minute``)
``WAYBILL_READ_LIMIT``          per-client limit on checkpoint, proof, event and party reads (default ``1200 per minute``)
``WAYBILL_LOGIN_LIMIT``         per-client limit on sign-in attempts (default ``20 per minute; 200 per hour``)
``WAYBILL_LOGIN_NAME_LIMIT``    failed sign-ins per user name before it is locked out (default ``10 per 5 minutes``)
``WAYBILL_DEFAULT_LIMIT``       per-client limit on every other route (default ``600 per minute``)
``WAYBILL_SCAN_MAX_BYTES``      largest photo upload (default 8 MiB)
``WAYBILL_SCAN_MAX_PIXELS``     largest photo, in pixels (default 24 million: refused beyond)
``WAYBILL_SCAN_SECONDS``        time budget for decoding one photo, seconds (default 1.5)
``WAYBILL_SCAN_CONCURRENCY``    photos decoded at once per process (default 1; others wait briefly, then 503)
``WAYBILL_RATELIMIT_ENABLED``   ``0`` turns rate limiting off (benchmarks)
``WAYBILL_RATELIMIT_STORAGE_URI``  ``memory://`` (per process) or e.g. ``redis://host:6379`` (shared)
``WAYBILL_PROXY_HOPS``          number of trusted reverse proxies setting X-Forwarded-For (default 0)
``WAYBILL_MAX_BODY_BYTES``      largest request body (default 16 MiB: batches, photos)
``WAYBILL_MAX_EVENT_BYTES``     largest single ``POST /events`` body (default 1 MiB)
``WAYBILL_SECURE_COOKIES``      ``1`` marks the session cookie Secure (serve over HTTPS)
``WAYBILL_SCAN_AFTER_SALE_NETWORKS``  consumer scans of a sold item from more distinct networks than this raise
                                ``label_copied`` (default 5)
``WAYBILL_SCAN_BEFORE_RETAIL_NETWORKS``  the same before any retailer held the item (default 3)
``WAYBILL_SCAN_RETENTION_DAYS``  how long daily scan counts are kept (default 90)
``WAYBILL_SCAN_FLUSH_SECONDS``  how often buffered scan counts are written (default 1)
``WAYBILL_WITNESSING``          ``0`` stops this process collecting witness cosignatures (see witness-policy.txt)
==============================  =====================================================================
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping

__all__ = ["from_environment", "persistent_secret", "ephemeral_secret", "DEFAULT_LOOKUP_LIMIT", "DEFAULT_LIMITS"]

DEFAULT_LOOKUP_LIMIT = "120 per minute"
DEFAULT_LIMITS = {
    "WAYBILL_LOOKUP_LIMIT": DEFAULT_LOOKUP_LIMIT,
    "WAYBILL_SCAN_LIMIT": "10 per minute; 60 per hour",
    "WAYBILL_WRITE_LIMIT": "600 per minute",
    "WAYBILL_KEY_WRITE_LIMIT": "300 per minute",
    "WAYBILL_READ_LIMIT": "1200 per minute",
    # A mirror copies the whole log tile by tile (256 entries a bundle): a 1M-entry ledger is ~8,000 requests.
    "WAYBILL_TILES_LIMIT": "6000 per minute",
    "WAYBILL_LOGIN_LIMIT": "20 per minute; 200 per hour",
    "WAYBILL_LOGIN_NAME_LIMIT": "10 per 5 minutes",
    "WAYBILL_DEFAULT_LIMIT": "600 per minute",
}
SECRET_FILE = "web-secret.key"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def from_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    return {
        "SECRET_KEY": env.get("WAYBILL_SECRET_KEY") or None,
        "MAX_CONTENT_LENGTH": int(env.get("WAYBILL_MAX_BODY_BYTES") or 16 * 1024 * 1024),
        "WAYBILL_MAX_EVENT_BYTES": int(env.get("WAYBILL_MAX_EVENT_BYTES") or 1024 * 1024),
        **{name: env.get(name) or default for name, default in DEFAULT_LIMITS.items()},
        "WAYBILL_SCAN_MAX_BYTES": int(env.get("WAYBILL_SCAN_MAX_BYTES") or 8 * 1024 * 1024),
        "WAYBILL_SCAN_MAX_PIXELS": int(env.get("WAYBILL_SCAN_MAX_PIXELS") or 24_000_000),
        "WAYBILL_SCAN_SECONDS": float(env.get("WAYBILL_SCAN_SECONDS") or 1.5),
        "WAYBILL_SCAN_CONCURRENCY": int(env.get("WAYBILL_SCAN_CONCURRENCY") or 1),
        "WAYBILL_WITNESSING": env.get("WAYBILL_WITNESSING") or "1",
        "WAYBILL_PROXY_HOPS": int(env.get("WAYBILL_PROXY_HOPS") or 0),
        "RATELIMIT_ENABLED": _flag(env.get("WAYBILL_RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": env.get("WAYBILL_RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,  # a dead shared limit store must not take lookups down with it
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag(env.get("WAYBILL_SECURE_COOKIES"), False),
        "WTF_CSRF_TIME_LIMIT": 6 * 3600,
        "WAYBILL_SCAN_AFTER_SALE_NETWORKS": int(env.get("WAYBILL_SCAN_AFTER_SALE_NETWORKS") or 5),
        "WAYBILL_SCAN_BEFORE_RETAIL_NETWORKS": int(env.get("WAYBILL_SCAN_BEFORE_RETAIL_NETWORKS") or 3),
        "WAYBILL_SCAN_RETENTION_DAYS": int(env.get("WAYBILL_SCAN_RETENTION_DAYS") or 90),
        "WAYBILL_SCAN_FLUSH_SECONDS": float(env.get("WAYBILL_SCAN_FLUSH_SECONDS") or 1.0),
    }


def persistent_secret(home: Path) -> str:
    """The installation's session secret, created once. Every gunicorn worker must share it, or a form
    served by one worker fails its CSRF check on another; creation is race-free (link is atomic)."""
    path = Path(home) / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another worker won the race: use its secret
    finally:
        tmp.unlink()
    return path.read_text().strip()


def ephemeral_secret() -> str:
    return secrets.token_hex(32)
