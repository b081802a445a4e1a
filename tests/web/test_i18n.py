"""The consumer page in the reader's language: every string translated into each catalogue, the compiled
catalogues current, every reason of every scenario rendered from its code and facts (never the core's English
sentence) in German and Chinese, Accept-Language and the switcher, dates and country names in the reader's
locale, and the API left in English with stable codes."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import T0, fixed_key
from tests.web.conftest import item_path, make_app
from tracker.ledger import Ledger
from tracker.scenarios import Network, load_scenarios
from tracker.store import open_store
from web.i18n import LANGUAGES

WEB = Path(__file__).resolve().parents[2] / "web"
TRANSLATIONS = WEB / "translations"
PLACEHOLDER = re.compile(r"%\(([a-z_]+)\)[sd]")


def _ids(catalog) -> set:
    return {m.id for m in catalog if m.id}


def _source_ids() -> set:
    """What the templates and web/consumer ask to translate, extracted as pybabel would (web/babel.cfg)."""
    found = set()
    method_map = [("**.py", "python"), ("**.html", "jinja2")]
    options = {"**.html": {"extensions": "jinja2.ext.do"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    for sub in ("consumer", "templates/consumer", "templates/errors"):
        for _, _, msg, _, _ in extract_from_dir(WEB / sub, method_map, options_map=options, keywords=keywords):
            found.add(msg if isinstance(msg, str) else tuple(msg))
    for _, _, msg, _, _ in extract_from_dir(WEB / "templates", [("base.html", "jinja2")], options_map=options,
                                            keywords=keywords):
        found.add(msg if isinstance(msg, str) else tuple(msg))
    return found


def test_the_template_catalogue_holds_every_string_the_pages_ask_for():
    pot = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    missing = _source_ids() - _ids(pot)
    assert not missing, f"run pybabel extract/update (see web/babel.cfg): not in messages.pot: {sorted(map(str, missing))}"


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_every_string_is_translated_with_the_same_placeholders(lang):
    pot = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    po = read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb"), locale=lang)
    mo = read_mo((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").open("rb"))
    assert _ids(pot) <= _ids(po), f"{lang}: untranslated {sorted(map(str, _ids(pot) - _ids(po)))}"
    for message in po:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings), f"{lang}: empty translation of {message.id!r}"
        wanted = set(PLACEHOLDER.findall(ids[-1])) - {"num"}
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) - {"num"} == wanted, f"{lang}: placeholders of {message.id!r}"
        compiled = mo.get(message.id)
        as_tuple = (lambda v: (v,) if isinstance(v, str) else tuple(v))
        assert compiled is not None and as_tuple(compiled.string) == as_tuple(message.string), \
            f"{lang}: messages.mo is older than messages.po (recompile: pybabel compile -d web/translations)"


# --- every reason of every scenario, in German and Chinese ---------------------------------------------------

SCENARIOS = {s.name: s for s in load_scenarios()}


@pytest.fixture(scope="module")
def scenario_pages(tmp_path_factory):
    """Each scenario on its own ledger (some revoke keys others would use), rendered in three languages."""
    pages = {}
    for name, scenario in SCENARIOS.items():
        db = tmp_path_factory.mktemp("i18n") / "ledger.db"
        store = open_store(f"sqlite:///{db}")
        ledger = Ledger.create(store, origin="waybill.test/ledger", ledger_key=fixed_key("ledger"),
                               admin_key=fixed_key("admin"), now=T0)
        net = Network(ledger, admin_key=fixed_key("admin"), start=T0 + timedelta(minutes=1))
        key = scenario.play(net, n="I")
        client = make_app(ledger, WAYBILL_SCAN_RETENTION_DAYS=36500).test_client()  # scans dated near T0 count
        path = f"/01/{'/21/'.join(item_path(key))}" if key.startswith("01/") else f"/{key}"
        answer = client.get(path, headers={"Accept": "application/json"}).get_json()
        pages[name] = (answer, {lang: client.get(path, headers={"Accept-Language": lang}).get_data(as_text=True)
                                for lang in ("en", "de", "zh")})
        store.close()
    return pages


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_every_reason_is_rendered_from_its_code_in_each_language(scenario_pages):
    seen = set()
    for name, (answer, html) in scenario_pages.items():
        steps = {row["event_id"]: n for n, row in enumerate(answer["path"], start=1)}
        for lang, page in html.items():
            assert f'<html lang="{lang}">' in page, name
            assert "%(" not in page and "Traceback" not in page, (name, lang)
            text = _text(page)
            for reason in answer["reasons"]:
                seen.add(reason["code"])
                assert f'data-code="{reason["code"]}"' in page, (name, reason["code"])
                if lang != "en":  # the core's English sentence is the API's, not the page's
                    assert reason["message"] not in text, (name, lang, reason["code"])
                n = steps.get(reason["event_id"])
                if n is not None:
                    assert f'href="#step-{n}"' in page and f'id="step-{n}"' in page, (name, reason["code"])
                    step = re.search(rf'<li class="step [^"]*" id="step-{n}"', page)
                    assert step and ("step-flagged" in step.group(0)) == (reason["severity"] != "info") or \
                        "step-flagged" in step.group(0), (name, reason["code"])
    from tracker.provenance import SEVERITY
    assert seen >= set(SEVERITY) - {"ledger_integrity_failure", "path_truncated"}, sorted(set(SEVERITY) - seen)


def test_german_page_speaks_german_with_facts_dates_and_countries(scenario_pages):
    _, html = scenario_pages["held-by-customs"]
    text = _text(html["de"])
    assert "Verdächtig" in text and "Vom Zoll zurückgehalten" in text
    assert "German Customs Hamburg hält es zur Prüfung zurück." in text
    assert "Deutschland" in text and "China" in text and "Versandt an Hamburg Logistics" in text
    assert re.search(r"\d{1,2}\. [A-Z][a-zä]+\.? \d{4}, \d{2}:\d{2} UTC", text), "a German date"
    zh = _text(html["zh"])
    assert "可疑" in zh and "德国" in zh and "年" in zh


def test_sold_reason_names_the_date_and_the_shop(scenario_pages):
    answer, html = scenario_pages["genuine-sold"]
    sold = next(r for r in answer["reasons"] if r["code"] == "sold")
    step = next(row for row in answer["path"] if row["event_id"] == sold["event_id"])
    text = _text(html["en"])
    assert f"by {step['actor_name']}; an item sold before is not new." in text
    assert re.search(r"Sold on [A-Z][a-z]{2} \d{1,2}, \d{4} by ", text)


def test_label_copied_counts_networks(scenario_pages):
    answer, html = scenario_pages["label-copied-after-sale"]
    assert any(r["code"] == "label_copied" for r in answer["reasons"])
    assert re.search(r"checked from \d+ different networks: copies of its label", _text(html["en"]))


def test_long_journeys_fold_the_middle_but_never_a_flagged_step(scenario_pages):
    answer, html = scenario_pages["deep-nesting"]
    page = html["en"]
    if len(answer["path"]) < 7:
        pytest.skip("the scenario's journey is short")
    assert "<details>" in page and re.search(r"Show \d+ more steps?", page)
    folded = page.split('<li class="step-more">', 1)[1].split("</details>", 1)[0]
    for reason in answer["reasons"]:
        if reason["event_id"]:
            n = [row["event_id"] for row in answer["path"]].index(reason["event_id"]) + 1
            assert f'id="step-{n}"' not in folded, "a step a reason points at is folded away"
    assert 'id="step-1"' in page.split('<li class="step-more">', 1)[0], "the origin is shown"


def test_language_from_accept_language_then_switcher_cookie(app, client, world):
    gtin, serial = item_path(world.items["held-by-customs"])
    path = f"/01/{gtin}/21/{serial}"
    first = client.get(path, headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"})
    assert '<html lang="fr">' in first.get_data(as_text=True) and "Accept-Language" in first.headers["Vary"]
    switched = client.get(path + "?lang=vi", headers={"Accept-Language": "fr"})
    assert '<html lang="vi">' in switched.get_data(as_text=True) and "lang=vi" in switched.headers["Set-Cookie"]
    kept = client.get(path, headers={"Accept-Language": "fr"})
    assert '<html lang="vi">' in kept.get_data(as_text=True)  # the reader's choice beats the browser's header
    assert 'href="?lang=de"' in kept.get_data(as_text=True)
    fresh = app.test_client()
    assert '<html lang="en">' in fresh.get(path + "?lang=xx", headers={"Accept-Language": "xx"}).get_data(as_text=True)
    assert '<html lang="zh">' in fresh.get(path, headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)


def test_api_stays_english_with_stable_codes(client, world):
    gtin, serial = item_path(world.items["held-by-customs"])
    english = client.get(f"/api/v1/items/{gtin}/{serial}").get_json()
    german = client.get(f"/api/v1/items/{gtin}/{serial}?lang=de", headers={"Accept-Language": "de"}).get_json()
    assert english == german
    assert {r["code"] for r in german["reasons"]} == {"held_by_customs", "in_transit"}
    assert any("pending inspection" in r["message"] for r in german["reasons"])


def test_staff_pages_stay_english(client):
    html = client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "Sign in" in html
