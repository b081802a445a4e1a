"""The witness's HTTP service (c2sp.org/tlog-witness): ``POST /add-checkpoint`` and the monitoring
``GET /<origin hash>/checkpoint``. A separate small app: a witness is run by another organisation than the
ledger, in its own process, with its own database."""
from __future__ import annotations

from flask import Flask, Response, request

from tracker.witness import MAX_REQUEST_BYTES, Witness, WitnessReply

__all__ = ["create_witness_app"]


def _reply(r: WitnessReply) -> Response:
    response = Response(r.body, status=r.status, content_type=r.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def create_witness_app(witness: Witness) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    @app.post("/add-checkpoint")
    def add_checkpoint() -> Response:
        return _reply(witness.add_checkpoint(request.get_data(cache=False)))

    @app.get("/<origin_hex>/checkpoint")
    def checkpoint(origin_hex: str) -> Response:
        response = _reply(witness.latest_checkpoint(origin_hex))
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get("/")
    def index() -> Response:
        lines = [f"C2SP tlog-witness {witness.name}", f"vkey {witness.cosigner.vkey}",
                 *(f"log {v.vkey}" for v in witness.logs.values())]
        return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")

    return app
