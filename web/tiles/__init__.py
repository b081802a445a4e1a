"""The C2SP tlog-tiles read API (c2sp.org/tlog-tiles) next to the JSON API, under ``/tlog/``:
``checkpoint`` (with the witnesses' cosignatures), ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``.

Tiles and bundles are immutable: they are only served once a signed checkpoint covers them, and then
cached forever (a CDN in front of ``/tlog/`` can serve them). They have their own, generous rate limit
(``WAYBILL_TILES_LIMIT``): a mirror copies a whole log through them."""
from __future__ import annotations

import gzip

from flask import Blueprint, Response, request

from tracker.cosigning import cosigned_note
from tracker.tiles import parse_tile_path, read_tile

from .. import ledger
from ..security import limited

__all__ = ["bp", "IMMUTABLE", "MUTABLE"]

bp = Blueprint("tiles", __name__, url_prefix="/tlog")
IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "public, max-age=2"


@bp.get("/checkpoint")
@limited("tiles")
def checkpoint() -> Response:
    response = Response(cosigned_note(ledger()), content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = MUTABLE
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/tile/<path:rest>")
@limited("tiles")
def tile(rest: str) -> Response:
    ref = parse_tile_path(rest)
    data = read_tile(ledger(), ref)
    response = Response(data, content_type="application/octet-stream")
    if ref.level is None and "gzip" in request.headers.get("Accept-Encoding", ""):
        response.set_data(gzip.compress(data, compresslevel=6, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
