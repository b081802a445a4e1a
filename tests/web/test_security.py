"""Security headers on every response, no inline script anywhere, CSRF on forms, per-client rate limits."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.conftest import GTIN, item_path, make_app

WEB = Path(__file__).resolve().parents[2] / "web"
REQUIRED_CSP = ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'",
                "base-uri 'none'"]


def assert_security_headers(response, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    directives = [d.strip() for d in csp.split(";")]
    for required in REQUIRED_CSP:
        assert required in directives, f"{what}: CSP lacks {required!r}: {csp}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("X-Frame-Options") == "DENY", what
    assert response.headers.get("Referrer-Policy"), what


def test_security_headers_on_every_kind_of_response(client, world):
    gtin, serial = item_path(world.items["genuine-cross-border"])
    requests = [
        ("get", "/", {}), ("get", f"/01/{gtin}/21/{serial}", {}), ("get", f"/01/{gtin}/21/NEVERMADE", {}),
        ("get", f"/01/{gtin}/21/{serial}", {"headers": {"Accept": "application/json"}}),
        ("get", "/01/123/21/X", {}), ("get", "/no/such/page", {}), ("get", "/search?code=x", {}),
        ("get", f"/search?code=(01){gtin}(21){serial}", {}), ("post", "/scan", {}), ("delete", "/", {}),
        ("get", "/static/waybill.css", {}), ("get", "/api/v1/openapi.json", {}), ("get", "/api/v1/checkpoint", {}),
        ("get", "/api/v1/log/verifier-key", {}), ("get", "/api/v1/parties", {}),
        ("get", f"/api/v1/items/{gtin}/{serial}", {}), ("get", f"/api/v1/items/{gtin}/{serial}/head", {}),
        ("get", "/api/v1/nothing", {}), ("post", "/api/v1/events", {"data": "x"}),
        ("post", "/api/v1/events/batch", {"json": {"envelopes": []}}), ("put", "/api/v1/events", {}),
    ]
    for method, path, kwargs in requests:
        response = getattr(client, method)(path, **kwargs)
        assert_security_headers(response, f"{method.upper()} {path} -> {response.status_code}")


def test_unexpected_errors_are_a_json_500_without_details(ledger, monkeypatch):
    app = make_app(ledger, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    from tracker import provenance

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(provenance, "lookup", boom)
    response = client.get(f"/api/v1/items/{GTIN}/X")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)
    page = client.get(f"/01/{GTIN}/21/X")
    assert page.status_code == 500 and page.mimetype == "text/html" and "secret" not in page.get_data(as_text=True)
    assert_security_headers(page, "500 page")


def test_templates_have_no_inline_script_or_event_handlers():
    templates = list((WEB / "templates").rglob("*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        for script in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            # an inert data block (the proof bundle, rendered with |tojson, which escapes '<') is not a script
            assert "src=" in script or 'type="application/json"' in script, f"{path}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), f"{path}: inline event handler"
        assert "javascript:" not in text.lower(), path
        assert "|safe" not in text and "autoescape false" not in text, f"{path}: escaping turned off"
        assert 'style="' not in text, f"{path}: inline style (CSP style-src 'self')"


def test_rendered_pages_have_no_inline_script(client, world):
    for key in world.items.values():
        gtin, serial = item_path(key)
        html = client.get(f"/01/{gtin}/21/{serial}").get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html, flags=re.I)
        assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts), scripts
        assert not re.search(r"\son[a-z]+\s*=", html)


def test_session_cookie_flags(client):
    client.get("/")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_rate_limit_on_public_lookups_answers_429(ledger, world):
    app = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_LOOKUP_LIMIT="3 per minute")
    client = app.test_client()
    gtin, serial = item_path(world.items["genuine-cross-border"])
    for _ in range(3):
        assert client.get(f"/api/v1/items/{gtin}/{serial}").status_code == 200
    response = client.get(f"/api/v1/items/{gtin}/{serial}")
    assert response.status_code == 429 and response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == "rate_limited" and body["error"]["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert_security_headers(response, "429")
    from tests.web.openapi_check import OpenApi

    OpenApi(client.get("/api/v1/openapi.json").get_json()).check(response, "/items/{gtin}/{serial}")
    # One bucket per client across the page and the API; other clients and non-lookup endpoints are unaffected.
    assert client.get(f"/api/v1/items/{gtin}/{serial}/head").status_code == 429
    page = client.get(f"/01/{gtin}/21/{serial}")
    assert page.status_code == 429 and page.mimetype == "text/html" and "Too many requests" in page.get_data(as_text=True)
    assert client.get(f"/01/{gtin}/21/{serial}", headers={"Accept": "application/json"}).get_json()["error"]["code"] == "rate_limited"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/").get_data(as_text=True))
    scan = client.post("/scan", data={"csrf_token": token.group(1)}, content_type="multipart/form-data")
    assert scan.status_code == 429  # decoding photos is the costliest lookup of all
    other = client.get(f"/api/v1/items/{gtin}/{serial}", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    assert client.get("/api/v1/checkpoint").status_code == 200
    assert client.get("/api/v1/parties").status_code == 200


def test_rate_limit_is_per_app(ledger, world):
    """Each app has its own limiter: counters in one never leak into another (tests, workers)."""
    strict = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_LOOKUP_LIMIT="1 per minute").test_client()
    loose = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_LOOKUP_LIMIT="100 per minute").test_client()
    gtin, serial = item_path(world.items["genuine-cross-border"])
    assert strict.get(f"/api/v1/items/{gtin}/{serial}").status_code == 200
    assert strict.get(f"/api/v1/items/{gtin}/{serial}").status_code == 429
    for _ in range(5):
        assert loose.get(f"/api/v1/items/{gtin}/{serial}").status_code == 200


def test_proxy_hops_take_the_client_address_from_x_forwarded_for(ledger, world):
    client = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_LOOKUP_LIMIT="1 per minute",
                      WAYBILL_PROXY_HOPS=1).test_client()
    gtin, serial = item_path(world.items["genuine-cross-border"])
    url = f"/api/v1/items/{gtin}/{serial}"
    assert client.get(url, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    assert client.get(url, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429
    assert client.get(url, headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 200


@pytest.mark.parametrize("path", ["/", "/search?code=x"])
def test_html_pages_never_answer_json_errors_to_browsers(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.mimetype == "text/html"


def test_storage_outage_is_a_503_without_internal_details(ledger, monkeypatch):
    from tracker.store.sql import StorageError

    app = make_app(ledger)
    client = app.test_client()

    def down(*args, **kwargs):
        raise StorageError("database sqlite:////secret/path/ledger.db is unavailable: disk I/O error")

    monkeypatch.setattr(type(ledger), "checkpoint", down)
    response = client.get("/api/v1/checkpoint")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "storage_unavailable" and "secret" not in error["message"]
