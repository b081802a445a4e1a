"""Access (issue): every staff, customs and admin route refuses anonymous users (redirect to sign-in, or 401
for JSON and non-GET requests) and users of the wrong role (403); the public routes stay public; public pages
show no private fields; every page carries the security headers (CSP without inline script, frame-ancestors,
nosniff).

The table is discovered from ``app.url_map``: every rule whose endpoint starts with ``staff.``, ``customs.`` or
``admin.`` (plus the signed-in-only ``auth.`` pages), each of its methods, against anonymous users and a user of
every role. Which roles a route admits is read from its ``requires(...)`` guard, so a new route is covered the
day it lands — and a route without a guard fails the test.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import AnyConverter, IntegerConverter, PathConverter, Rule

from tests.reliability.harness import GTIN, PG_URL, Installation, PgSchemas, device_key, now
from tests.reliability.hostile import (HostileWorld, assert_api_error, assert_escaped, assert_no_server_error,
                                       body_text, build_world, page_path)

ROLES = ("staff", "customs", "admin")
GUARDED = ("staff.", "customs.", "admin.")
SIGNED_IN_ONLY = ("auth.",)
OPEN_AUTH = {"auth.login", "auth.logout"}
# Routes that must stay public (a subset: new public routes are found from the url map and checked too).
PUBLIC = {"consumer.home", "consumer.search", "consumer.item", "consumer.qualified_link", "consumer.scan", "static",
          "api.get_item", "api.get_event", "api.get_parties", "api.get_party", "api.get_checkpoint",
          "api.get_inclusion_proof", "api.get_consistency_proof", "api.get_verifier_key", "api.get_openapi",
          "api.post_event", "api.post_batch", "auth.login"}
PARTY_OF_ROLE = {"staff": "acme", "customs": "de-customs", "admin": "admin"}
PASSWORD = "correct horse battery staple 42"
REQUIRED_CSP = ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'")


@dataclass
class AccessWorld:
    world: HostileWorld
    usernames: dict[str, str]
    private: list[str]  # strings that must never appear on a public page

    @property
    def app(self) -> Flask:
        return self.world.app


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def access(request, tmp_path_factory) -> Iterator[AccessWorld]:
    schemas = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("WAYBILL_TEST_POSTGRES_URL is not set")
        schemas = PgSchemas(PG_URL)
    inst = Installation(home=tmp_path_factory.mktemp("access") / "home",
                        database_url=schemas.new() if schemas else None).init()
    world = build_world(inst)
    usernames: dict[str, str] = {}
    private = [PASSWORD, "hostile-test", inst.config.database_url, str(inst.home)]
    private += [k.seed.hex() for k in (device_key("acme"), world.inst.admin_key())]
    private += [__import__("base64").b64encode(k.seed).decode() for k in (device_key("acme"), world.inst.admin_key())]
    try:
        from web import accounts
    except ImportError:
        accounts = None
    if accounts is not None:
        ledger = world.app.extensions["waybill"]
        for role in ROLES:
            name = f"rl-{role}-user"
            accounts.create_user(ledger, username=name, password=PASSWORD, party_id=PARTY_OF_ROLE[role], role=role,
                                 now=now())
            usernames[role] = name
        private += list(usernames.values())
    yield AccessWorld(world=world, usernames=usernames, private=private)
    world.app.extensions["waybill"].store.close()
    if schemas:
        schemas.close()


# --- clients ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"|'
                    r'name="csrf-token"\s+content="([^"]+)"')


def csrf_token(client: FlaskClient) -> str | None:
    for path in ("/login", "/"):
        html = client.get(path).get_data(as_text=True)
        m = _TOKEN.search(html)
        if m:
            return next(g for g in m.groups() if g)
    return None


class Visitor:
    """A browser: anonymous, or signed in with one role. Sends the CSRF token it was given, as a page would,
    so what answers is the access guard, not the CSRF check."""

    def __init__(self, app: Flask, role: str | None, username: str | None = None) -> None:
        self.role = role
        self.client = app.test_client()
        self.token = csrf_token(self.client)
        if role is not None:
            assert username, role
            response = self.client.post("/login", data={"username": username, "password": PASSWORD,
                                                        "csrf_token": self.token or "", "next": ""})
            assert response.status_code in (302, 303), (role, response.status_code, body_text(response)[:300])
            self.token = csrf_token(self.client)  # a fresh session after sign-in

    def request(self, method: str, url: str, *, json_accept: bool = False) -> Any:
        headers = {"X-CSRFToken": self.token} if self.token else {}
        if json_accept:
            headers["Accept"] = "application/json"
        kwargs: dict[str, Any] = {}
        if method not in ("GET", "HEAD"):
            kwargs["json"] = {}
        return self.client.open(url, method=method, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def visitors(access) -> dict[str | None, Visitor]:
    out: dict[str | None, Visitor] = {None: Visitor(access.app, None)}
    for role, name in access.usernames.items():
        out[role] = Visitor(access.app, role, name)
    return out


# --- the route table -------------------------------------------------------------------------------------

def sample_url(app: Flask, rule: Rule) -> str:
    values: dict[str, Any] = {}
    for arg in rule.arguments:
        conv = rule._converters[arg]
        if isinstance(conv, IntegerConverter):
            values[arg] = 999999
        elif isinstance(conv, AnyConverter):
            values[arg] = sorted(conv.items)[0] if hasattr(conv, "items") else re.findall(r"\w+", conv.regex)[0]
        elif isinstance(conv, PathConverter):
            values[arg] = f"01/{GTIN}/21/NOPE" if "01" not in rule.rule else "NOPE"
        elif arg == "party_id":
            values[arg] = "acme"
        elif arg == "keyid":
            values[arg] = device_key("acme").keyid
        elif arg == "gtin":
            values[arg] = GTIN
        else:
            values[arg] = "x"
    return app.url_map.bind("localhost").build(rule.endpoint, values, method=sorted(rule.methods - {"HEAD", "OPTIONS"})[0],
                                               append_unknown=False)


def declared_roles(app: Flask, endpoint: str) -> tuple[str, ...] | None:
    """The roles a view's ``requires(...)`` guard admits (all roles for ``requires()``); None if unguarded."""
    fn: Any = app.view_functions[endpoint]
    seen: set[int] = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        roles = getattr(fn, "required_roles", None)
        if roles is not None:
            return tuple(roles) or ROLES
        try:
            nonlocals = inspect.getclosurevars(fn).nonlocals
        except TypeError:
            nonlocals = {}
        if isinstance(nonlocals.get("roles"), tuple) and "view" in nonlocals:
            return nonlocals["roles"] or ROLES
        fn = getattr(fn, "__wrapped__", None)
    return None


def routes(app: Flask, prefixes: tuple[str, ...]) -> list[tuple[Rule, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefixes) and rule.endpoint not in OPEN_AUTH:
            out.extend((rule, m) for m in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return sorted(out, key=lambda rm: (rm[0].rule, rm[1]))


def assert_security_headers(response: Any, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    directives = [d.strip() for d in csp.split(";")]
    for required in REQUIRED_CSP:
        assert required in directives, f"{what}: CSP lacks {required!r}: {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{what}: {csp}"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("X-Frame-Options") == "DENY", what


def assert_refused_anonymous(response: Any, what: str, *, json_expected: bool) -> None:
    assert_no_server_error(response, what)
    if response.status_code in (302, 303):
        assert not json_expected, f"{what}: a JSON client was redirected"
        assert urlsplit(response.headers["Location"]).path.rstrip("/").endswith("/login"), \
            f"{what}: redirected to {response.headers['Location']}"
    else:
        assert response.status_code == 401, f"{what}: {response.status_code} {body_text(response)[:200]}"
        if json_expected:
            assert_api_error(response, what, 401)


def check_route(app: Flask, visitors: dict[str | None, Visitor], rule: Rule, method: str) -> int:
    """Anonymous and every role against one route and method; returns the number of role checks made."""
    url = sample_url(app, rule)
    what = f"{method} {rule.rule} ({rule.endpoint})"
    roles = declared_roles(app, rule.endpoint)
    assert roles is not None, f"{what} has no requires(...) guard: anyone may use it"
    assert set(roles) <= set(ROLES), f"{what}: unknown roles {roles}"
    blueprint = rule.endpoint.split(".", 1)[0]
    if blueprint in ROLES:
        assert blueprint in roles, f"{what} does not admit its own blueprint's role {blueprint}: {roles}"
    # Anonymous: as a browser (HTML) and as a script (JSON).
    for json_accept in (False, True):
        response = visitors[None].request(method, url, json_accept=json_accept)
        assert_refused_anonymous(response, f"anonymous {what}", json_expected=json_accept)
        assert_security_headers(response, f"anonymous {what}")
    # Anonymous without the CSRF token either: still refused, never a 2xx.
    if method != "GET":
        bare = app.test_client().open(url, method=method, json={})
        assert_no_server_error(bare, f"anonymous bare {what}")
        assert bare.status_code in (400, 401, 403), f"anonymous bare {what}: {bare.status_code}"
    checks = 0
    for role in ROLES:
        response = visitors[role].request(method, url, json_accept=method != "GET")
        body = assert_no_server_error(response, f"{role} {what}")
        assert_security_headers(response, f"{role} {what}")
        if role in roles:
            assert response.status_code not in (401, 403), f"{role} refused on {what}: {body[:200]}"
            if method == "GET" and response.mimetype == "text/html":
                assert_escaped(body, f"{role} {what}")
        else:
            assert response.status_code == 403, f"{role} let into {what}: {response.status_code} {body[:200]}"
            if method != "GET":
                assert_api_error(response, f"{role} {what}", 403)
        checks += 1
    return checks


def test_every_staff_customs_and_admin_route_refuses_anonymous_and_wrong_roles(access, visitors, figures):
    app = access.app
    if not access.usernames:
        pytest.skip("no staff accounts in this build (web.accounts missing)")
    table = routes(app, GUARDED + SIGNED_IN_ONLY)
    checked = sum(check_route(app, visitors, rule, method) for rule, method in table)
    blueprints = {rule.endpoint.split(".", 1)[0] for rule, _ in table}
    figures.update(backend=access.world.inst.backend, routes=len({r.rule for r, _ in table}), route_methods=len(table),
                   role_checks=checked,
                   anonymous_checks=2 * len(table) + sum(1 for _, m in table if m != "GET"), blueprints=sorted(blueprints))


def test_the_table_catches_an_unguarded_or_misguarded_route(access):
    """The check is not vacuous: a route that forgot its guard, or guards the wrong role, fails it."""
    if not access.usernames:
        pytest.skip("no staff accounts in this build")
    from web import create_app
    from web.auth import requires

    app = create_app({"WAYBILL_CONFIG": access.world.inst.config, "RATELIMIT_ENABLED": False,
                      "SECRET_KEY": "hostile-test"})
    app.add_url_rule("/staff/forgot-the-guard", endpoint="staff.forgot", view_func=lambda: "the books")
    app.add_url_rule("/customs/wrong-guard", endpoint="customs.wrong", view_func=requires("staff")(lambda: "x"))
    try:
        visitors = {None: Visitor(app, None), **{r: Visitor(app, r, n) for r, n in access.usernames.items()}}
        rules = {r.endpoint: r for r in app.url_map.iter_rules()}
        with pytest.raises(AssertionError, match="no requires"):
            check_route(app, visitors, rules["staff.forgot"], "GET")
        with pytest.raises(AssertionError, match="own blueprint"):
            check_route(app, visitors, rules["customs.wrong"], "GET")
    finally:
        app.extensions["waybill"].store.close()


def test_the_public_routes_stay_public(access, visitors):
    app = access.app
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = PUBLIC - endpoints
    assert not missing, f"public routes disappeared: {sorted(missing)}"
    anonymous = visitors[None]
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(GUARDED + SIGNED_IN_ONLY) and rule.endpoint not in OPEN_AUTH:
            continue
        if "GET" not in rule.methods:
            continue
        url = sample_url(app, rule) if rule.endpoint != "static" else "/static/waybill.css"
        response = anonymous.request("GET", url)
        what = f"GET {rule.rule} ({rule.endpoint})"
        assert_no_server_error(response, what)
        assert response.status_code not in (401, 403), f"{what} is not public: {response.status_code}"
        if response.status_code in (301, 302, 303, 307, 308):
            assert "/login" not in response.headers["Location"], f"{what} sends anonymous users to sign in"
        assert_security_headers(response, what)
    # The write API is public too: authenticated by the signatures it carries, not by a session.
    response = app.test_client().post("/api/v1/events", json={})
    assert_api_error(response, "anonymous POST /api/v1/events", 400)


def public_pages(access: AccessWorld) -> list[str]:
    w = access.world
    return ["/", page_path(w.items["html"]), page_path(w.items["path"]), page_path(f"01/{GTIN}/21/NEVER"),
            "/search?code=x", "/login", "/api/v1/parties", "/api/v1/parties/acme", "/api/v1/parties/admin",
            "/api/v1/parties/de-customs", f"/api/v1/events/{w.events['c1']}",
            "/api/v1/items/" + page_path(w.items["html"]).split("/01/", 1)[1].replace("/21/", "/", 1),
            "/api/v1/checkpoint", "/api/v1/log/verifier-key", "/api/v1/openapi.json", "/no/such/page"]


def test_public_pages_show_no_private_fields(access, visitors):
    anonymous = visitors[None]
    for path in public_pages(access):
        response = anonymous.request("GET", path)
        body = assert_no_server_error(response, path)
        assert_security_headers(response, path)
        for secret in access.private:
            assert secret not in body, f"{path} shows a private value ({secret[:12]}...)"
        for field in ("password_hash", "private_key", "encrypted_private_key", "seed", "session_token", "ingested_at"):
            assert f'"{field}"' not in body and f"{field}=" not in body, f"{path} shows the field {field}"
        if response.mimetype == "application/json":
            assert '"password"' not in body and '"username"' not in body, f"{path} shows account data"
    item = anonymous.request("GET", page_path(access.world.items["html"])).get_data(as_text=True)
    assert "private customs note" not in item


def test_signed_in_pages_do_not_leak_other_users_secrets(access, visitors):
    """Even staff pages never show a password (or its hash) or a session token."""
    if not access.usernames:
        pytest.skip("no staff accounts in this build")
    app = access.app
    for role in ROLES:
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith(GUARDED + SIGNED_IN_ONLY) or "GET" not in rule.methods:
                continue
            if rule.endpoint in OPEN_AUTH:
                continue
            response = visitors[role].request("GET", sample_url(app, rule))
            body = assert_no_server_error(response, f"{role} {rule.rule}")
            assert PASSWORD not in body and "scrypt" not in body.lower(), f"{role} {rule.rule}"
            assert '"password_hash"' not in body and '"session_token"' not in body, f"{role} {rule.rule}"
