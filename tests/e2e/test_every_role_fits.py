"""Every role on a phone and on a desk, in a real browser (Debian Chromium via Playwright): every page of every
role loads at 390x844 and at 1280x900 without the document being wider than the viewport, and axe-core finds no
serious or critical accessibility violation; then each role's main job at phone size -- a consumer checks a code
in German, the first admin browser is approved with the admin key file, staff receive from the inbound list,
customs seize with a reason.

axe-core comes with the axe-playwright-python package (its bundled axe.min.js); screenshots go to artifacts/e2e/."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import fixed_key
from tests.e2e.conftest import HLD, PASSWORD, TRN, shot
from tracker import customs, provenance
from tracker.keys import write_key_file
from web import accounts

pytestmark = pytest.mark.e2e

TIMEOUT = 15_000
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
PAL = "01/09506000134352/21/PALE"
GAP = "01/09506000134352/21/GAPE"


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install -e '.[test]')")
    return Axe()


def new_page(browser, viewport, locale: str = "en-GB"):
    context = browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1,
                                  is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 or (
        r.status == 404 and "favicon" in r.url) else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page, site, username: str) -> None:
    page.goto(site.url("/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()


def enrol(page, site, label: str) -> str:
    page.goto(site.url("/account"))
    page.wait_for_selector('#device-state[data-state="none"]')
    box = page.locator("#device-label").bounding_box()
    assert box and box["width"] >= 150, f"the device-name box is {box and box['width']} px wide"
    page.fill("#device-label", label)
    page.click("#device-create")
    page.wait_for_selector('#device-state[data-state="pending"]')
    page.wait_for_selector('#my-devices tr[data-status="pending"]')  # the list refreshed: no "None yet"
    assert page.is_visible("#device-fingerprint")
    return page.inner_text("#device-keyid").strip()


def device_of(site, keyid: str) -> accounts.Device:
    return next(d for d in accounts.list_devices(site.ledger) if d.keyid == keyid)


def fits(page, what: str) -> None:
    """Nothing scrolls sideways: the document is no wider than the viewport."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth, "
                           "Array.from(document.querySelectorAll('body *')).filter(e => "
                           "e.getBoundingClientRect().right > window.innerWidth + 1 && getComputedStyle(e).position "
                           "!== 'fixed').slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)]")
    assert widths[0] <= widths[1], f"{what}: document {widths[0]} px wide in a {widths[1]} px viewport: {widths[2]}"


def accessible(page, axe, what: str) -> None:
    results = axe.run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{what}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} -- {[n['target'] for n in v['nodes'][:3]]}" for v in bad)


def pallet_of(site) -> str:
    answer = provenance.lookup(site.ledger, PAL)
    for row in answer.path:
        if row["type"] == "aggregate":
            _, st = site.ledger.get_event(row["event_id"])
            if st.container:
                return st.container
    raise AssertionError("the pallet scenario has no pallet")


def _path(key: str) -> str:
    return f"/{key}"


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_every_page_of_every_role_fits_and_passes_axe(site, browser, artifacts, viewport):
    axe = _axe()
    size = "phone" if viewport is PHONE else "desk"
    public = [("home", "/"), ("genuine", _path(str(HLD)).replace("HLDE", "GENE")), ("held", _path(str(HLD))),
              ("counterfeit", _path(GAP)), ("in-transit", _path(str(TRN))), ("pallet", _path(pallet_of(site))),
              ("german", _path(str(HLD)) + "?lang=de"), ("chinese", _path(str(HLD)) + "?lang=zh"),
              ("bad-code", "/search?code=0950600013435+HLDE"), ("login", "/login")]
    page = new_page(browser, viewport)
    for name, path in public:
        page.goto(site.url(path))
        fits(page, f"{size} {name}")
        accessible(page, axe, f"{size} {name}")
        shot(page, artifacts, f"fit-{size}-{name}")
    page.context.close()
    for username, pages in (("hh-staff", ["/staff/", "/account"]),
                            ("customs-de", ["/customs/", f"/customs/item/{HLD}", f"/customs/item/{pallet_of(site)}",
                                            "/account"]),
                            ("admin", ["/admin/", "/account"])):
        page = new_page(browser, viewport)
        sign_in(page, site, username)
        if username == "customs-de":
            dash = customs.dashboard(site.ledger, "DE")
            pages = pages + [f"/customs/shipment/{next(a for a in dash.assessments if a.key == str(TRN)).consignment.ship_event}"]
        if username == "admin":
            pending = [d for d in accounts.list_devices(site.ledger) if d.status == "pending"]
            if not pending:  # a request to review: the approval page is one of the admin's pages
                someone = next(u for u in accounts.list_users(site.ledger) if u.username == "hh-staff")
                pending = [accounts.request_device(site.ledger, someone, public_key=fixed_key("fit:phone").public_key_b64,
                                                   label="Spare scanner", now=datetime.now(timezone.utc))]
            pages = pages + [f"/admin/devices/{d.id}" for d in pending[:1]]
        for path in pages:
            page.goto(site.url(path))
            page.wait_for_load_state("networkidle")
            fits(page, f"{size} {username} {path}")
            accessible(page, axe, f"{size} {username} {path}")
            shot(page, artifacts, f"fit-{size}-{username}-{path.strip('/').replace('/', '-') or 'home'}")
        assert not page.errors, page.errors  # type: ignore[attr-defined]
        page.context.close()


def test_each_role_does_its_main_job_on_a_phone(site, browser, artifacts, tmp_path):
    # 1. A consumer types the code printed under the QR code, in German, and follows a reason to its step.
    consumer = new_page(browser, PHONE, locale="de-DE")
    consumer.goto(site.url("/"))
    assert consumer.get_attribute("html", "lang") == "de"
    consumer.fill("#code", f"{HLD.gtin} {HLD.serial}")
    consumer.click("form.search button[type=submit]")
    consumer.wait_for_selector("#verdict")
    assert consumer.get_attribute("#verdict", "data-verdict") == "suspicious"
    assert "Verdächtig" in consumer.inner_text("#verdict")
    reason = consumer.locator('li.reason[data-code="held_by_customs"]')
    assert "hält es zur Prüfung zurück" in reason.inner_text()
    reason.locator("a.step-link").click()
    target = consumer.evaluate("location.hash")
    assert target.startswith("#step-") and "step-flagged" in consumer.get_attribute(target, "class")
    assert "Deutschland" in consumer.inner_text("#journey")
    shot(consumer, artifacts, "job-consumer-de")
    assert not consumer.errors  # type: ignore[attr-defined]
    consumer.context.close()

    # 2. The admin enrols this phone and approves it with the admin key file: no command line needed.
    admin = new_page(browser, PHONE)
    sign_in(admin, site, "admin")
    admin_keyid = enrol(admin, site, "Registry phone")
    admin.goto(site.url("/admin/"))
    admin.click("#admin-bootstrap a")
    assert admin.inner_text("#fingerprint").replace(" ", "") == admin_keyid.upper()
    key_file = tmp_path / "admin.key"
    write_key_file(key_file, fixed_key("admin"))
    admin.set_input_files("#admin-key-file", str(key_file))
    admin.click("#bootstrap-submit")
    admin.wait_for_selector(".flash")
    assert "approved" in admin.inner_text(".flash")
    assert admin_keyid in [k.keyid for k in site.ledger.party("admin").keys]
    shot(admin, artifacts, "job-admin-bootstrapped")

    # 3. Staff and customs enrol; the admin approves each on its approval page, comparing fingerprints.
    staff = new_page(browser, PHONE)
    sign_in(staff, site, "hh-staff")
    staff_keyid = enrol(staff, site, "Dock 3 phone")
    officer = new_page(browser, PHONE)
    sign_in(officer, site, "customs-de")
    officer_keyid = enrol(officer, site, "Customs phone")
    for keyid in (staff_keyid, officer_keyid):
        admin.goto(site.url(f"/admin/devices/{device_of(site, keyid).id}"))
        assert admin.inner_text("#fingerprint").replace(" ", "") == keyid.upper()
        assert device_of(site, keyid).label in admin.inner_text("#device-facts")
        admin.wait_for_function("document.getElementById('statement').textContent.length > 0")
        admin.click("#approve")
        admin.wait_for_selector('#device-facts[data-status="approved"]')
    shot(admin, artifacts, "job-admin-approved")
    assert not admin.errors  # type: ignore[attr-defined]

    # 4. Customs seizes the held item, with a reason: asked first, then the row moves and the counters follow.
    officer.goto(site.url("/customs/"))
    fits(officer, "customs dashboard on a phone")
    held_before = int(officer.inner_text("#n-held"))
    row = officer.locator(f'#held tr[data-key="{HLD}"]')
    assert row.locator('button[data-decision="held"]').count() == 0  # no Hold on a held unit
    row.locator('button[data-decision="seized"]').click()
    officer.wait_for_selector("#decide-dialog[open]")
    shot(officer, artifacts, "job-customs-confirm")
    officer.click("#decide-ok")  # no reason yet: refused in place
    assert officer.is_visible("#decide-error")
    officer.fill("#decide-reason", "Label printed over another serial")
    officer.click("#decide-ok")
    officer.wait_for_selector(f'#seized tr[data-key="{HLD}"][data-status="seized"]')
    assert int(officer.inner_text("#n-held")) == held_before - 1 and officer.inner_text("#n-seized") == "1"
    assert officer.locator(f'#seized tr[data-key="{HLD}"] button.act').count() == 0
    assert provenance.lookup(site.ledger, str(HLD)).verdict == "likely_counterfeit"
    officer.goto(site.url(f"/customs/item/{HLD}"))
    assert "Label printed over another serial" in officer.inner_text("#path")
    shot(officer, artifacts, "job-customs-seized")
    assert not officer.errors  # type: ignore[attr-defined]

    # 5. Staff receive what is on its way from the inbound list with one press.
    staff.goto(site.url("/staff/"))
    fits(staff, "staff home on a phone")
    shipment = staff.locator(f'#inbound li.shipment[data-units~="{TRN}"]')
    assert "Pearl River Export" in shipment.inner_text()
    shipment.locator("button.receive-one").click()
    staff.wait_for_selector("#submit-result:not([hidden])")
    assert "Received 1 unit from Pearl River Export" in staff.inner_text("#submit-result")
    assert staff.locator("#items li").count() == 0
    staff.wait_for_selector(f'#custody li[data-key="{TRN}"]')  # the lists refreshed in place
    assert staff.locator(f'#inbound li.shipment[data-units~="{TRN}"]').count() == 0
    assert provenance.lookup(site.ledger, str(TRN)).holder == "hh-warehouse"
    shot(staff, artifacts, "job-staff-received")
    assert not staff.errors  # type: ignore[attr-defined]

    # 6. The dock phone is lost: the admin revokes its key, asked first in a dialog that names the key, the
    #    device and the party (Cancel changes nothing).
    admin.goto(site.url("/admin/"))
    row = admin.locator(f'#party-keys tr[data-keyid="{staff_keyid}"]')
    row.locator("button.revoke").click()
    admin.wait_for_selector("#revoke-dialog[open]")
    assert admin.inner_text("#revoke-keyid") == staff_keyid and admin.inner_text("#revoke-device") == "Dock 3 phone"
    fits(admin, "revoke dialog on a phone")
    shot(admin, artifacts, "job-admin-revoke-confirm")
    admin.click("#revoke-cancel")
    assert not admin.is_visible("#revoke-dialog")
    assert row.get_attribute("data-revoked") == "no" and _key_of(site, "hh-warehouse", staff_keyid).revoked_at is None
    row.locator("button.revoke").click()
    admin.click("#revoke-ok")
    admin.wait_for_selector(f'#party-keys tr[data-keyid="{staff_keyid}"][data-revoked="yes"]')
    assert _key_of(site, "hh-warehouse", staff_keyid).revoked_at is not None
    assert not admin.errors  # type: ignore[attr-defined]
    for page in (admin, staff, officer):
        page.context.close()


def _key_of(site, party: str, keyid: str):
    return next(k for k in site.ledger.party(party).keys if k.keyid == keyid)
