"""The staff side in a real browser (Debian Chromium via Playwright): sign in, enrol this browser's WebCrypto
key, have it approved by an admin who signs in their own browser, release goods at customs, receive them by
scanning the label with the (fake) camera, ship them on, and watch the consumer page change.

Screenshots of every page are saved under artifacts/e2e/."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from tests.conftest import fixed_key
from tests.e2e.conftest import HLD, PASSWORD, TRN, shot
from tracker import provenance
from web import accounts
from tracker.dsse import pae
from tracker.keys import key_id, verify_signature
from tracker.statements import statement_bytes

pytestmark = pytest.mark.e2e

TIMEOUT = 15_000


def sign_in(context, site, username: str, artifacts=None):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors, failed loads (a missing favicon included) and server errors all count.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.on("dialog", lambda dialog: dialog.accept())
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(site.url("/login"))
    if artifacts is not None:
        shot(page, artifacts, "01-login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()
    return page


def enrol(page, site, label: str) -> str:
    """Create this browser's key on the device page; returns its key id once the server lists it pending."""
    page.goto(site.url("/account"))
    page.wait_for_selector('#device-state[data-state="none"]')
    page.fill("#device-label", label)
    page.click("#device-create")
    page.wait_for_selector('#device-state[data-state="pending"]')
    return page.inner_text("#device-keyid").strip()


def device_of(site, keyid: str) -> accounts.Device:
    return next(d for d in accounts.list_devices(site.ledger) if d.keyid == keyid)


def test_browser_signatures_match_the_server_rules(site, browser):
    """The page's canonical JSON, PAE, key id and Ed25519 signature are exactly what the ledger checks."""
    context = browser.new_context()
    page = sign_in(context, site, "hh-staff")
    doc = {"v": 1, "type": "ship", "actor": "hh-warehouse", "time": "2026-03-02T08:00:00Z",
           "location": {"name": "Hamburg Lögistics \"Dock\" \\ 3", "country": "DE"},
           "items": ["01/09506000134352/21/A%2FB"], "to": "berlin-shop", "prev": {}}
    result = page.evaluate("""async (doc) => {
        const W = window.Waybill;
        const kp = await crypto.subtle.generateKey({name: "Ed25519"}, false, ["sign", "verify"]);
        const raw = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
        const dev = {keyPair: kp, keyid: await W.keyidOf(raw), publicKey: W.bytesToB64(raw)};
        const env = await W.signStatement(doc, dev);
        let extractable = true;
        try { await crypto.subtle.exportKey("pkcs8", kp.privateKey); } catch (e) { extractable = false; }
        return {canonical: W.canonicalJson(doc), envelope: env, publicKey: dev.publicKey, keyid: dev.keyid,
                extractable: extractable, time: W.nowRfc3339()};
    }""", doc)
    assert result["canonical"].encode() == statement_bytes(doc)
    public = base64.b64decode(result["publicKey"])
    assert result["keyid"] == key_id(public) and not result["extractable"]
    env = result["envelope"]
    payload = base64.b64decode(env["payload"])
    assert payload == statement_bytes(doc) and env["payloadType"] == "application/vnd.waybill.event+json"
    verify_signature(public, pae(env["payloadType"], payload), base64.b64decode(env["signatures"][0]["sig"]))
    assert result["time"].endswith("Z") and len(result["time"]) == 20
    assert not page.errors  # type: ignore[attr-defined]
    context.close()


def test_enrol_approve_release_receive_ship(site, browser, artifacts):
    hld, trn = str(HLD), str(TRN)
    public = browser.new_context()
    consumer = public.new_page()
    consumer.goto(site.url(f"/01/{HLD.gtin}/21/{HLD.serial}"))
    assert consumer.get_attribute("#verdict", "data-verdict") == "suspicious"
    shot(consumer, artifacts, "02-consumer-before")

    # 1. An admin signs in and enrols this browser; the first admin key is approved with the admin key file.
    admin_ctx = browser.new_context()
    admin = sign_in(admin_ctx, site, "admin", artifacts)
    assert admin.url.endswith("/admin/")
    admin_keyid = enrol(admin, site, "Registry laptop")
    shot(admin, artifacts, "03-admin-device-pending")
    accounts.approve_device_with_key(site.ledger, device_of(site, admin_keyid).id, admin_key=fixed_key("admin"),
                                     now=datetime.now(timezone.utc))  # what `tracker user approve` does
    admin.reload()
    admin.wait_for_selector('#device-state[data-state="approved"]')

    # 2. Warehouse staff and a customs officer enrol their browsers.
    staff_ctx = browser.new_context()
    staff = sign_in(staff_ctx, site, "hh-staff")
    assert staff.url.endswith("/staff/")
    shot(staff, artifacts, "04-staff-no-device")
    assert "no signing key" in staff.inner_text("#device-warning")
    staff_keyid = enrol(staff, site, "Dock 3 phone")
    shot(staff, artifacts, "05-staff-device-pending")
    customs_ctx = browser.new_context()
    officer = sign_in(customs_ctx, site, "customs-de")
    customs_keyid = enrol(officer, site, "Customs desk")

    # 3. The admin approves both in the browser: a party statement signed with the admin's own device key.
    admin.goto(site.url("/admin/"))
    shot(admin, artifacts, "06-admin-pending-requests")
    for keyid in (staff_keyid, customs_keyid):
        admin.goto(site.url(f"/admin/devices/{device_of(site, keyid).id}"))
        assert keyid.upper()[:4] in admin.inner_text("#fingerprint")
        admin.wait_for_function("document.getElementById('statement').textContent.length > 0")
        admin.click("#approve")
        admin.wait_for_selector('#device-facts[data-status="approved"]')
    assert {device_of(site, k).status for k in (staff_keyid, customs_keyid)} == {"approved"}
    registry = {k.keyid for k in site.ledger.party("hh-warehouse").keys}
    assert staff_keyid in registry
    shot(admin, artifacts, "07-admin-approved")
    assert not admin.errors  # type: ignore[attr-defined]

    # 4. Customs sees the queue and releases the held item with one click.
    officer.goto(site.url("/customs/"))
    officer.wait_for_selector("#queue")
    assert officer.locator("#queue tbody tr").evaluate_all("rs => rs.map(r => r.dataset.key)") == [trn]
    assert officer.locator("#held tbody tr").evaluate_all("rs => rs.map(r => r.dataset.key)") == [hld]
    assert officer.locator("#charts svg").count() >= 3
    assert officer.is_hidden("#device-warning")
    shot(officer, artifacts, "08-customs-dashboard")
    officer.locator(f'#held tr[data-key="{hld}"] button[data-decision="released"]').click()
    officer.wait_for_selector(f'#released tr[data-key="{hld}"][data-status="released"]')
    assert officer.inner_text("#n-held") == "0" and officer.inner_text("#n-released") == "1"
    shot(officer, artifacts, "09-customs-released")
    officer.goto(site.url(f"/customs/item/{hld}"))
    officer.wait_for_selector("#path")
    assert officer.locator("#path li.step").count() == 6
    shot(officer, artifacts, "10-customs-item-detail")
    with officer.expect_download() as download:
        officer.goto(site.url("/customs/"))
        officer.click("#csv-export")
    csv_text = open(download.value.path(), encoding="utf-8").read()
    assert csv_text.startswith("key,kind,status,verdict") and hld in csv_text
    assert not officer.errors  # type: ignore[attr-defined]

    consumer.reload()
    assert consumer.get_attribute("#verdict", "data-verdict") == "genuine"
    shot(consumer, artifacts, "11-consumer-after-release")

    # 5. The warehouse receives it by scanning the label with the camera (a fake camera showing the label).
    staff.goto(site.url("/staff/"))
    assert staff.is_hidden("#device-warning")
    staff.check('input[name="mode"][value="receive"]')
    staff.click("#camera-toggle")
    item = staff.locator(f'#items li[data-key="{hld}"]')
    try:
        item.wait_for(timeout=30_000)
    except Exception as exc:  # say what the page said about its camera, not only "timeout"
        raise AssertionError(f"the camera did not deliver the label: camera state "
                             f"{staff.inner_text('#camera-state')!r}, decoder "
                             f"{staff.get_attribute('#camera-state', 'data-decoder')!r}, page errors "
                             f"{getattr(staff, 'errors', None)!r}") from exc
    staff.wait_for_selector(f'#items li[data-key="{hld}"][data-state="ok"]')
    assert "Pearl River Export" in item.inner_text()
    assert staff.get_attribute("#camera-state", "data-decoder") in ("zxing", "native")
    staff.click("#camera-toggle")  # stop the camera: the label stays in view
    shot(staff, artifacts, "12-staff-receive-scanned")
    staff.click("#submit")
    staff.wait_for_selector("#submit-result:not([hidden])")
    assert "Received 1 unit from Pearl River Export" in staff.inner_text("#submit-result")
    assert staff.locator("#items li").count() == 0  # what was recorded leaves the list
    shot(staff, artifacts, "13-staff-received")
    assert provenance.lookup(site.ledger, hld).holder == "hh-warehouse"

    # 6. Ship it on to Berlin: codes injected through the same function the camera calls. An unknown code and
    #    an item held by someone else show their problem next to them.
    staff.click("#clear")
    staff.check('input[name="mode"][value="ship"]')
    staff.select_option("#ship-to", "berlin-shop")
    for code in (f"{site.base}/01/{HLD.gtin}/21/{HLD.serial}", "(01)09506000134352(21)NEVERMADE", trn):
        staff.evaluate("code => window.Waybill.onScannedCode(code)", code)
    staff.wait_for_selector(f'#items li[data-key="{hld}"][data-state="ok"]')
    unknown = staff.locator('#items li[data-key="01/09506000134352/21/NEVERMADE"][data-state="error"]')
    unknown.wait_for()
    assert "no record" in unknown.inner_text()
    held_elsewhere = staff.locator(f'#items li[data-key="{trn}"][data-state="error"]')
    held_elsewhere.wait_for()
    assert "on its way to you" in held_elsewhere.inner_text()
    staff.click("#submit")
    assert "marked in red" in staff.inner_text("#submit-error")
    shot(staff, artifacts, "14-staff-ship-errors")
    unknown.locator("button.item-remove").click()
    held_elsewhere.locator("button.item-remove").click()
    staff.click("#submit")
    staff.wait_for_selector("#submit-result:not([hidden])")
    assert "Shipped 1 unit to Berlin Retail" in staff.inner_text("#submit-result")
    shot(staff, artifacts, "15-staff-shipped")
    assert not staff.errors  # type: ignore[attr-defined]

    # 7. The consumer page shows the new steps.
    consumer.reload()
    assert consumer.get_attribute("#verdict", "data-verdict") == "genuine"
    timeline = consumer.inner_text("ol.timeline")
    assert "Received from Pearl River Export" in timeline and "Sent to Berlin Retail" in timeline
    shot(consumer, artifacts, "16-consumer-after-handoffs")
    answer = provenance.lookup(site.ledger, hld)
    assert [row["type"] for row in answer.path][-3:] == ["inspect", "receive", "ship"]
    assert answer.path[-1]["to"] == "berlin-shop"
    for ctx in (public, admin_ctx, staff_ctx, customs_ctx):
        ctx.close()


def test_wrong_role_pages_are_refused_in_the_browser(site, browser, artifacts):
    context = browser.new_context()
    page = sign_in(context, site, "hh-staff")
    response = page.goto(site.url("/customs/"))
    assert response.status == 403
    assert page.get_attribute("#error", "data-code") == "forbidden"
    shot(page, artifacts, "17-forbidden")
    context.close()
    anonymous = browser.new_context().new_page()
    anonymous.goto(site.url("/admin/"))
    assert "/login?next=" in anonymous.url
    anonymous.context.close()
