"""Staff sign-in: hashed passwords, generic failures, lockout, session expiry, CSRF, and role guards."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import PASSWORD, csrf, json_post, logged_in, login, now
from tracker.errors import InvalidInput, Rejected
from web import accounts
from web.db import web_db


def test_passwords_are_stored_as_salted_scrypt_hashes(staff_ledger):
    row = web_db(staff_ledger.store).user_by_name("hh-staff")
    assert row.password_hash.startswith("scrypt:32768:8:1$") and PASSWORD not in row.password_hash
    assert accounts.is_correct_password(row.password_hash, PASSWORD)
    assert not accounts.is_correct_password(row.password_hash, PASSWORD + "x")
    assert not accounts.is_correct_password("garbage", PASSWORD)
    assert accounts.hash_password(PASSWORD) != accounts.hash_password(PASSWORD)  # fresh salt every time


def test_login_page_has_a_csrf_protected_form(client):
    response = client.get("/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="csrf_token"' in html and 'type="password"' in html and 'autocomplete="current-password"' in html
    assert "<script" not in html


@pytest.mark.parametrize("username,home", [("hh-staff", "/staff/"), ("customs-de", "/customs/"), ("admin", "/admin/")])
def test_login_goes_to_the_role_home(client, username, home):
    response = login(client, username)
    assert response.status_code == 303 and response.headers["Location"] == home
    assert client.get(home).status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(client):
    wrong = login(client, "hh-staff", "not the password")
    unknown = login(client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        html = response.get_data(as_text=True)
        assert 'id="login-error"' in html and "wrong username or password" in html
    assert client.get("/staff/").status_code == 302


def test_repeated_failures_lock_the_account_for_a_while(staff_ledger, client):
    for _ in range(accounts.MAX_FAILED_LOGINS - 1):
        assert login(client, "hh-staff", "guess").status_code == 401
    locked = login(client, "hh-staff", "guess")
    assert locked.status_code == 429 and "locked for 5 more minutes" in locked.get_data(as_text=True)
    assert 240 <= int(locked.headers["Retry-After"]) <= 300
    assert login(client, "hh-staff").status_code == 429  # right password, but locked
    with pytest.raises(accounts.AccountLocked):
        accounts.authenticate(staff_ledger, username="hh-staff", password=PASSWORD, now=now())
    later = now() + accounts.LOCKOUT + timedelta(seconds=1)
    assert accounts.authenticate(staff_ledger, username="hh-staff", password=PASSWORD, now=later).username == "hh-staff"


def test_next_only_goes_to_this_site(client):
    assert login(client, "hh-staff", next_url="/account").headers["Location"] == "/account"
    client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = login(client, "hh-staff", next_url=evil)
        assert response.headers["Location"] == "/staff/", evil
        client.post("/logout", data={"csrf_token": csrf(client, "/account")})


def test_logout_ends_the_session(client):
    logged_in(client, "hh-staff")
    assert client.get("/staff/").status_code == 200
    assert client.get("/logout").status_code == 405  # a link cannot log anyone out
    response = client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/staff/").status_code == 302


def test_anonymous_users_are_sent_to_login_or_get_401_json(client):
    for path in ("/staff/", "/customs/", "/admin/", "/account", "/customs/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
    json_get = client.get("/staff/resolve?code=x", headers={"Accept": "application/json"})
    assert json_get.status_code == 401 and json_get.get_json()["error"]["code"] == "login_required"
    token = csrf(client)
    for path in ("/staff/events", "/customs/inspect", "/account/devices", "/admin/devices/1/approve"):
        response = client.post(path, json={}, headers={"X-CSRFToken": token, "Accept": "application/json"})
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "login_required", path


@pytest.mark.parametrize("username,forbidden", [
    ("hh-staff", ["/customs/", "/admin/", "/customs/export.csv"]),
    ("customs-de", ["/staff/", "/admin/"]),
    ("admin", ["/staff/", "/customs/"]),
])
def test_wrong_role_is_refused_with_403(client, username, forbidden):
    logged_in(client, username)
    for path in forbidden:
        response = client.get(path)
        assert response.status_code == 403, path
        assert 'data-code="forbidden"' in response.get_data(as_text=True)
        assert client.get(path, headers={"Accept": "application/json"}).get_json()["error"]["code"] == "forbidden"


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/login", data={"username": "hh-staff", "password": PASSWORD})
    assert response.status_code == 400 and 'data-code="csrf_failed"' in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_json_posts_need_the_csrf_header(client):
    logged_in(client, "hh-staff")
    for path in ("/staff/events", "/account/devices"):
        response = json_post(client, path, {"envelopes": []}, token=None)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "csrf_failed", path
        wrong = json_post(client, path, {"envelopes": []}, token="forged-token")
        assert wrong.status_code == 400 and wrong.get_json()["error"]["code"] == "csrf_failed", path


def test_csrf_token_from_another_session_is_refused(staff_app):
    mallory, alice = staff_app.test_client(), staff_app.test_client()
    logged_in(alice, "hh-staff")
    stolen = csrf(mallory)  # a valid token, but for mallory's session
    response = json_post(alice, "/staff/events", {"envelopes": []}, token=stolen)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "csrf_failed"


def test_session_cookie_is_httponly_lax_and_expires(client):
    logged_in(client, "hh-staff")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.expires is not None


def test_session_expires_after_the_absolute_lifetime(staff_ledger):
    from tests.web.conftest import make_app

    client = make_app(staff_ledger, WAYBILL_SESSION_MAX_HOURS=1.5 / 3600).test_client()  # 1.5 s
    logged_in(client, "hh-staff")
    assert client.get("/staff/").status_code == 200
    time.sleep(2.6)  # session times are kept to the second
    response = client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_session_expires_when_idle(staff_ledger):
    from tests.web.conftest import make_app

    app = make_app(staff_ledger)
    app.permanent_session_lifetime = timedelta(seconds=1)
    client = app.test_client()
    logged_in(client, "hh-staff")
    assert client.get("/staff/").status_code == 200
    time.sleep(2.1)
    assert client.get("/staff/").status_code == 302


def test_changing_the_password_ends_other_sessions(client, staff_app, staff_ledger):
    logged_in(client, "hh-staff")
    accounts.set_password(staff_ledger, "hh-staff", "a brand new password")
    assert client.get("/staff/").status_code == 302
    assert login(staff_app.test_client(), "hh-staff", "a brand new password").status_code == 303


def test_a_disabled_user_is_signed_out_and_cannot_sign_in(client, staff_app, staff_ledger):
    logged_in(client, "hh-staff")
    user = next(u for u in accounts.list_users(staff_ledger) if u.username == "hh-staff")
    accounts.set_disabled(staff_ledger, user.id, True)
    assert client.get("/staff/").status_code == 302
    assert login(staff_app.test_client(), "hh-staff").status_code == 401


def test_users_are_bound_to_parties_with_fitting_roles(staff_ledger):
    cases = [("x-staff", "de-customs", "staff"), ("x-customs", "hh-warehouse", "customs"),
             ("x-admin", "hh-warehouse", "admin"), ("x-none", "no-such-party", "staff")]
    for username, party, role in cases:
        with pytest.raises(InvalidInput):
            accounts.create_user(staff_ledger, username=username, password=PASSWORD, party_id=party, role=role,
                                 now=now())
    with pytest.raises(Rejected):
        accounts.create_user(staff_ledger, username="hh-staff", password=PASSWORD, party_id="hh-warehouse",
                             role="staff", now=now())
    with pytest.raises(InvalidInput):
        accounts.create_user(staff_ledger, username="shorty", password="short", party_id="hh-warehouse",
                             role="staff", now=now())
