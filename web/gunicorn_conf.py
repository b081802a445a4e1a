"""gunicorn settings for Waybill: ``gunicorn -c python:web.gunicorn_conf 'web:create_app()'``.

Threaded workers (gthread) keep idle and slow connections in an event loop instead of a worker each: with the
default sync workers, a few hundred connections that open and send nothing (slowloris) hold every worker until
its timeout, and checkpoint reads stall. Put a buffering reverse proxy (nginx, a load balancer) in front in
production as well; these settings keep a bare gunicorn answering meanwhile. Override any of them on the
command line (``-w 8``) or with GUNICORN_CMD_ARGS.
"""
import os

try:  # gunicorn >= 23: a new connection holds a worker thread while it waits for its first bytes
    from gunicorn.workers import gthread as _gthread

    # ... for 5 s by default, so 500 connections that send nothing queue every real request behind them. Wait
    # 50 ms, then park the connection in the worker's event loop (where it costs nothing) until data arrives or
    # `keepalive` seconds pass. A module constant, not a setting: checked by tests/reliability/test_slowloris.py.
    if hasattr(_gthread, "DEFAULT_WORKER_DATA_TIMEOUT"):
        _gthread.DEFAULT_WORKER_DATA_TIMEOUT = float(os.environ.get("WAYBILL_FIRST_BYTE_WAIT", "0.05"))
except ImportError:  # pragma: no cover
    pass

bind = os.environ.get("WAYBILL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WAYBILL_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("WAYBILL_THREADS", "16"))
worker_connections = 2000  # idle connections a worker keeps in its event loop
keepalive = 5  # seconds an idle keep-alive connection is kept
timeout = 60
graceful_timeout = 10
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
