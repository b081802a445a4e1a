"""A hostile client against sign-in, sessions and the public routes: one test (or more) per finding of the
attack run recorded in docs/reliability.md ("Hostile client"), each written as the attacker, beside the honest
case that must keep working."""
from __future__ import annotations

import hashlib
import io
import re
import threading
from datetime import timedelta

import pytest
from PIL import Image

from tests.web.conftest import make_app, sign
from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import PASSWORD, csrf, logged_in, login, now
from tracker.notes import commit_note
from web import accounts
from web.accounts import passwords


def _photo_form(client, data: bytes, name: str = "photo.png") -> dict:
    return {"csrf_token": csrf(client, "/"), "photo": (io.BytesIO(data), name)}


def _blank_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (side, side), 1).save(out, "PNG", optimize=True)
    return out.getvalue()


# --- 1. photo uploads: bounded before decoding, their own rate limit ----------------------------------------

def test_a_6300px_blank_png_is_refused_from_its_header(client):
    data = _blank_png(6300)
    assert len(data) < 100_000  # the attack: tiny on the wire, 40 megapixels decoded
    response = client.post("/scan", data=_photo_form(client, data), content_type="multipart/form-data",
                           headers={"Accept": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "image_too_large"


def test_pillow_decompression_bomb_guard_stays_on_and_a_lying_header_is_refused(client):
    assert Image.MAX_IMAGE_PIXELS is not None
    # A PNG header that claims 100000 x 100000 pixels, with no pixel data behind it.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + body)))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    response = client.post("/scan", data=_photo_form(client, bomb), content_type="multipart/form-data",
                           headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "image_too_large"


def test_upload_bytes_are_capped_before_decoding(ledger):
    client = make_app(ledger, WAYBILL_SCAN_MAX_BYTES=10_000).test_client()
    response = client.post("/scan", data=_photo_form(client, b"\xff\xd8" + b"\0" * 20_000, "x.jpg"),
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "image_too_large"


def test_a_qr_photo_still_reads(client):
    from tests.web.test_home import qr_png  # the honest case: a real code is still found

    data = qr_png("https://id.example.com/01/09506000134352/21/GENW")
    response = client.post("/scan", data=_photo_form(client, data), content_type="multipart/form-data")
    assert response.status_code == 303 and response.headers["Location"].endswith("/21/GENW")


def test_photo_uploads_have_their_own_stricter_rate_limit(ledger, world):
    client = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_SCAN_LIMIT="2 per minute").test_client()
    small = _blank_png(50)
    for _ in range(2):
        assert client.post("/scan", data=_photo_form(client, small), content_type="multipart/form-data").status_code == 422
    third = client.post("/scan", data=_photo_form(client, small), content_type="multipart/form-data",
                        headers={"Accept": "application/json"})
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
    _, gtin, _, serial = world.items["genuine-cross-border"].split("/", 3)
    assert client.get(f"/api/v1/items/{gtin}/{serial}").status_code == 200  # lookups keep their own budget


def test_only_one_photo_is_decoded_at_a_time_per_process(ledger):
    app = make_app(ledger, WAYBILL_SCAN_SECONDS=0.2)
    client = app.test_client()
    form = _photo_form(client, _blank_png(50))
    from web.consumer.views import _decode_gate

    gate = _decode_gate(app)
    assert gate.acquire()  # someone else's photo is being decoded
    try:
        busy = client.post("/scan", data=form, content_type="multipart/form-data",
                           headers={"Accept": "application/json"})
    finally:
        gate.release()
    assert busy.status_code == 503 and busy.get_json()["error"]["code"] == "busy" and busy.headers["Retry-After"]
    again = client.post("/scan", data=_photo_form(client, _blank_png(50)), content_type="multipart/form-data")
    assert again.status_code == 422


# --- 2. lockout against parallel guesses; per-client and per-name limits -----------------------------------

def test_25_parallel_wrong_guesses_lock_the_account(staff_app, staff_ledger):
    clients = [staff_app.test_client() for _ in range(25)]
    tokens = [csrf(c) for c in clients]
    start = threading.Barrier(len(clients))
    codes: list[int] = []

    def guess(c, token) -> None:
        start.wait()
        codes.append(c.post("/login", data={"csrf_token": token, "username": "hh-staff",
                                            "password": "wrong guess"}).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(codes)) <= [401, 429] and 429 in codes, codes
    from web.db import web_db

    row = web_db(staff_ledger.store).user_by_name("hh-staff")
    assert row.locked_until is not None and row.failed_logins >= accounts.MAX_FAILED_LOGINS
    honest = staff_app.test_client()
    assert login(honest, "hh-staff").status_code == 429  # the right password waits out the lock
    assert honest.get("/staff/").status_code == 302


def test_login_is_rate_limited_per_client(staff_ledger):
    client = make_app(staff_ledger, RATELIMIT_ENABLED=True, WAYBILL_LOGIN_LIMIT="3 per minute").test_client()
    for _ in range(3):
        assert login(client, "nobody-at-all", "guess").status_code == 401
    assert login(client, "hh-staff").status_code == 429
    other = make_app(staff_ledger).test_client()
    assert login(other, "hh-staff").status_code == 303


def test_unknown_and_known_names_lock_out_alike(staff_ledger):
    client = make_app(staff_ledger, RATELIMIT_ENABLED=True, WAYBILL_LOGIN_LIMIT="100 per minute").test_client()
    answers = {}
    for name in ("hh-staff", "no-such-user"):
        for _ in range(accounts.MAX_FAILED_LOGINS - 1):
            assert login(client, name, "guess").status_code == 401
        answers[name] = login(client, name, "guess")
    known, unknown = answers["hh-staff"], answers["no-such-user"]
    assert known.status_code == unknown.status_code == 429
    text = lambda r: re.search(r'id="login-error"[^>]*>([^<]*)', r.get_data(as_text=True)).group(1)  # noqa: E731
    assert text(known) == text(unknown) and "locked" in text(known)


# --- 3, 4. `next`: only paths on this site, and no header can fail --------------------------------------------

EVIL_NEXT = ["/%09/evil.example", "/\t/evil.example", "/%2F/evil.example", "/%252F%252Fevil.example",
             "//evil.example", "/\\evil.example", "https://evil.example/", "/%5Cevil.example", "/%0A/x",
             "/%0D/x", "/\r\n/x", "/ /evil.example", "/%20/evil", "/\u2028x", "javascript:alert(1)", "/\x00x"]


@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_next_never_leaves_the_site_nor_breaks_a_header(client, evil):
    logged_in(client, "hh-staff")
    response = client.get("/login", query_string={"next": evil})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/", (evil, response.status_code)
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    posted = login(client, "hh-staff", next_url=evil)
    assert posted.status_code == 303 and posted.headers["Location"] == "/staff/", evil


def test_raw_query_strings_with_encoded_controls_are_safe(client):
    logged_in(client, "hh-staff")
    for raw in ("next=/%09/evil.example", "next=/%0A/x", "next=/%0D%0ASet-Cookie:x=1"):
        response = client.get("/login?" + raw)
        assert response.status_code == 302 and response.headers["Location"] == "/staff/", raw


def test_an_honest_next_path_is_kept(client):
    assert login(client, "hh-staff", next_url="/account?tab=devices").headers["Location"] == "/account?tab=devices"


# --- 5. sessions end on sign-out, password change, disable and re-enable ------------------------------------

def _saved_cookie(client) -> str:
    return client.get_cookie("session").value


def test_a_saved_cookie_is_dead_after_logout(staff_app):
    victim = staff_app.test_client()
    logged_in(victim, "hh-staff")
    saved = _saved_cookie(victim)
    assert victim.post("/logout", data={"csrf_token": csrf(victim, "/account")}).status_code == 303
    thief = staff_app.test_client()
    thief.set_cookie("session", saved)
    assert thief.get("/staff/").status_code == 302


def test_disable_then_enable_does_not_revive_old_cookies(staff_app, staff_ledger):
    victim = staff_app.test_client()
    logged_in(victim, "hh-staff")
    saved = _saved_cookie(victim)
    user = next(u for u in accounts.list_users(staff_ledger) if u.username == "hh-staff")
    accounts.set_disabled(staff_ledger, user.id, True)
    accounts.set_disabled(staff_ledger, user.id, False)
    thief = staff_app.test_client()
    thief.set_cookie("session", saved)
    assert thief.get("/staff/").status_code == 302
    assert login(staff_app.test_client(), "hh-staff").status_code == 303  # the account itself works again


def test_signing_out_one_browser_leaves_the_other_signed_in(staff_app):
    phone, laptop = staff_app.test_client(), staff_app.test_client()
    logged_in(phone, "hh-staff")
    logged_in(laptop, "hh-staff")
    phone.post("/logout", data={"csrf_token": csrf(phone, "/account")})
    assert phone.get("/staff/").status_code == 302 and laptop.get("/staff/").status_code == 200


def test_old_password_hashes_still_sign_in_and_are_rehashed(staff_ledger, client):
    """Accounts created before the move to werkzeug hashes (scrypt$N$r$p$salt$hash) keep working."""
    import base64

    from web.db import USERS, web_db

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2 ** 14, r=8, p=1, maxmem=2 ** 26, dklen=32)
    legacy = f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    db = web_db(staff_ledger.store)
    with db._txn(write=True) as conn:
        conn.execute(USERS.update().where(USERS.c.username == "hh-staff").values(password_hash=legacy))
    assert login(client, "hh-staff").status_code == 303
    assert db.user_by_name("hh-staff").password_hash.startswith("scrypt:32768:8:1$")


# --- 6. the same work for every kind of name ------------------------------------------------------------------

def test_every_failed_sign_in_costs_one_password_hash(staff_ledger, monkeypatch):
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    user = next(u for u in accounts.list_users(staff_ledger) if u.username == "hh-new")
    accounts.set_disabled(staff_ledger, user.id, True)
    for _ in range(accounts.MAX_FAILED_LOGINS):  # lock hh-staff
        with pytest.raises((accounts.AuthenticationError, accounts.AccountLocked)):
            accounts.authenticate(staff_ledger, username="hh-staff", password="guess", now=now())
    work = {}
    for label, name in (("unknown", "nobody-here"), ("wrong", "berlin-staff"), ("locked", "hh-staff"),
                        ("disabled", "hh-new"), ("malformed", "NO SUCH !!")):
        calls.clear()
        with pytest.raises((accounts.AuthenticationError, accounts.AccountLocked)):
            accounts.authenticate(staff_ledger, username=name, password="guess", now=now())
        work[label] = len(calls)
    assert set(work.values()) == {1}, work
    assert passwords.DUMMY_HASH.startswith(passwords.METHOD + "$")  # the decoy costs what a real check does


# --- 7. private notes stay off the public ledger -----------------------------------------------------------

def _legacy_inspect(staff_ledger, world) -> str:
    """An inspect statement with a plaintext note, as ledgers from before hold them (imported: admission now
    refuses such a statement)."""
    key = world.items["held-by-customs"]
    env = sign("inspect", "de-customs", items=[key], decision="held", note="bribe offered by the driver",
               prev={key: staff_ledger.get_event(_head(staff_ledger, key))[0].event_id})
    (result,) = staff_ledger.import_envelopes([env], now=now())
    return result.event_id


def _head(ledger, key: str) -> str:
    from tracker.provenance import head

    return head(ledger, key)


def test_a_new_plaintext_note_is_refused_at_admission(client, world, staff_ledger):
    key = world.items["held-by-customs"]
    env = sign("inspect", "de-customs", items=[key], decision="released", note="papers ok",
               prev={key: _head(staff_ledger, key)})
    response = client.post("/api/v1/events", json=env.to_json())
    body = response.get_json()
    assert response.status_code == 400 and body["error"]["code"] == "invalid_statement"
    assert "note" in body["error"]["message"]


def test_a_legacy_note_is_not_shown_to_the_public(client, world, staff_ledger):
    event_id = _legacy_inspect(staff_ledger, world)
    response = client.get(f"/api/v1/events/{event_id}")
    doc = response.get_json()
    assert response.status_code == 200 and "note" not in doc["statement"] and doc["note_redacted"] is True
    assert "bribe" not in response.get_data(as_text=True).replace(doc["envelope"]["payload"], "")
    assert "private_note" not in doc


def test_commitment_note_upload_and_who_may_read_it(staff_app, world, staff_ledger):
    key = world.items["held-by-customs"]
    commitment, salt = commit_note("seal number does not match")
    env = sign("inspect", "de-customs", items=[key], decision="released", note_commitment=commitment,
               prev={key: _head(staff_ledger, key)})
    anonymous = staff_app.test_client()
    posted = anonymous.post("/api/v1/events", json=env.to_json())
    assert posted.status_code == 201, posted.get_data(as_text=True)
    event_id = posted.get_json()["event_id"]
    wrong = anonymous.post("/api/v1/notes", json={"event_id": event_id, "salt": salt, "note": "seal ok"})
    assert wrong.status_code == 422 and wrong.get_json()["error"]["code"] == "commitment_mismatch"
    stored = anonymous.post("/api/v1/notes", json={"event_id": event_id, "salt": salt,
                                                   "note": "seal number does not match"})
    assert stored.status_code == 201 and stored.get_json() == {"event_id": event_id, "stored": True}
    assert "seal number" not in anonymous.get(f"/api/v1/events/{event_id}").get_data(as_text=True)
    readers = {}
    for name in ("customs-de", "admin", "hh-staff"):
        c = staff_app.test_client()
        logged_in(c, name)
        readers[name] = c.get(f"/api/v1/events/{event_id}").get_json().get("private_note")
    assert readers == {"customs-de": "seal number does not match", "admin": "seal number does not match",
                       "hh-staff": None}
    c = staff_app.test_client()
    logged_in(c, "customs-de")
    assert "seal number does not match" in c.get(f"/customs/item/{key}").get_data(as_text=True)


def test_the_customs_dashboard_records_a_decision_with_a_private_note(staff_app, world, staff_ledger):
    from tests.web.staffside import device_key, json_post

    key = world.items["held-by-customs"]
    commitment, salt = commit_note("container resealed")
    doc = {"v": 1, "type": "inspect", "actor": "de-customs", "time": (now() - timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "location": {"name": "Hamburg", "country": "DE"}, "items": [key],
        "decision": "released", "note_commitment": commitment, "prev": {key: _head(staff_ledger, key)}}
    from tracker.signing import sign_statement

    env = sign_statement(doc, device_key("customs-de"))
    c = staff_app.test_client()
    logged_in(c, "customs-de")
    bad = json_post(c, "/customs/inspect", {"envelope": env.to_json(), "note": "other text", "salt": salt})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "commitment_mismatch"
    assert _head(staff_ledger, key) == doc["prev"][key]  # nothing was appended
    ok = json_post(c, "/customs/inspect", {"envelope": env.to_json(), "note": "container resealed", "salt": salt})
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert "container resealed" in c.get(f"/customs/item/{key}").get_data(as_text=True)
    public = staff_app.test_client().get(f"/api/v1/events/{ok.get_json()['event_id']}").get_data(as_text=True)
    assert "container resealed" not in public


# --- 8. every public route is rate limited -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/checkpoint", "/api/v1/parties", "/api/v1/log/verifier-key",
                                  "/api/v1/proof/consistency?first=1&second=2"])
def test_reads_are_rate_limited_with_retry_after_and_json(ledger, path):
    client = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_READ_LIMIT="3 per minute").test_client()
    for _ in range(3):
        assert client.get(path).status_code == 200
    response = client.get(path)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["code"] == "rate_limited"


def test_writes_are_rate_limited_per_client(ledger):
    client = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_WRITE_LIMIT="2 per minute").test_client()
    for _ in range(2):
        assert client.post("/api/v1/events", json={"payloadType": "x"}).status_code == 400
    response = client.post("/api/v1/events", json={"payloadType": "x"})
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "rate_limited"
    assert client.post("/api/v1/events/batch", json={"envelopes": []}).status_code == 429  # one write budget
    assert client.get("/api/v1/checkpoint").status_code == 200


def test_writes_are_rate_limited_per_signing_key_across_clients(ledger):
    app = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_KEY_WRITE_LIMIT="2 per minute")
    envs = [sign("commission", "acme-cn", items=[f"01/09506000134352/21/RL{i}"],
                 product={"gtin": "09506000134352", "name": "Aurora"}) for i in range(3)]
    for i, env in enumerate(envs[:2]):
        c = app.test_client()
        assert c.post("/api/v1/events", json=env.to_json(),
                      environ_base={"REMOTE_ADDR": f"198.51.100.{i + 1}"}).status_code == 201
    third = app.test_client().post("/api/v1/events", json=envs[2].to_json(), environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert third.status_code == 429 and "signing key" in third.get_json()["error"]["message"]
    assert int(third.headers["Retry-After"]) > 0


def test_the_openapi_document_lists_429_everywhere(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert "429" in op["responses"], (method, path)
    assert "/notes" in doc["paths"]


def test_unmarked_routes_fall_under_the_default_limit(ledger):
    client = make_app(ledger, RATELIMIT_ENABLED=True, WAYBILL_DEFAULT_LIMIT="2 per minute").test_client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    assert client.get("/").status_code == 429


def test_rate_limits_can_be_switched_off_for_benchmarks(ledger):
    client = make_app(ledger, RATELIMIT_ENABLED=False, WAYBILL_READ_LIMIT="1 per minute").test_client()
    assert all(client.get("/api/v1/checkpoint").status_code == 200 for _ in range(5))

