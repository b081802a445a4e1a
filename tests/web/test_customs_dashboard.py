"""The customs dashboard for the officer's country: the queue, flagged goods, decisions by signed `inspect`
statements, the charts and the CSV export."""
from __future__ import annotations

import csv
import io
import re

import pytest

from tests.web.staffside import client, staff_app, staff_ledger, staff_world  # noqa: F401  (fixtures)
from tests.web.staffside import device_key, json_post, logged_in, signed
from tracker import customs, provenance
from tracker.scenarios import party_key

HLD = "01/09506000134352/21/HLDW"  # held by DE customs, shipped CN -> DE
TRN = "01/09506000134352/21/TRNW"  # on its way CN -> DE, no decision yet
GEN = "01/09506000134352/21/GENW"  # released and delivered
GAP = "01/09506000134352/21/GAPW"  # custody gap: flagged


def rows(html: str, table: str) -> dict[str, str]:
    """key -> status of the rows in table ``table``."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r'<tr data-key="([^"]+)" data-status="([^"]+)"', body))


def inspect(client, key: str, decision: str, *, actor: str = "de-customs", user: str = "customs-de", head=None):
    info = client.get("/staff/resolve", query_string={"code": key}, headers={"Accept": "application/json"}).get_json()
    envelope = signed("inspect", actor, device_key(user), items=[key], decision=decision,
                      prev={key: head or info["head"]})
    return json_post(client, "/customs/inspect", {"envelope": envelope.to_json()}, page="/customs/")


def test_queue_lists_inbound_goods_awaiting_clearance(client):
    logged_in(client, "customs-de")
    html = client.get("/customs/").get_data(as_text=True)
    queue = rows(html, "queue")
    assert queue == {TRN: "awaiting"}
    assert rows(html, "held") == {HLD: "held"}  # one table per state: a held unit is not in the queue too
    assert 'data-country="DE"' in html and "German Customs Hamburg" in html
    assert html.count('data-decision="released"') >= 2
    assert re.search(r"Updated <time[^>]*>\d{2}:\d{2} UTC</time>", html) and "ledger size" not in html


def test_every_consignment_is_in_exactly_one_table_with_only_the_decisions_that_make_sense(client):
    logged_in(client, "customs-de")
    html = client.get("/customs/").get_data(as_text=True)
    tables = {t: rows(html, t) for t in ("queue", "held", "released", "seized", "arrived")}
    keys = [k for found in tables.values() for k in found]
    assert len(keys) == len(set(keys)) and {HLD, TRN, GAP, GEN} <= set(keys)
    for table, found in tables.items():
        for key, status in found.items():
            assert status == ("awaiting" if table == "queue" else table)
            row = html.split(f'<tr data-key="{key}"', 1)[1].split("</tr>", 1)[0]
            offered = set(re.findall(r'data-decision="([a-z]+)"', row))
            assert offered == set(customs.decisions_for(status)), (key, status, offered)
    held_row = html.split(f'<tr data-key="{HLD}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-decision="held"' not in held_row  # Hold is not offered on a held unit


def test_flagged_goods_are_marked_and_counted(client):
    logged_in(client, "customs-de")
    html = client.get("/customs/").get_data(as_text=True)
    assert rows(html, "arrived")[GAP] == "arrived"
    gap_row = html.split(f'<tr data-key="{GAP}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-verdict="likely_counterfeit"' in gap_row and "A step in its journey is missing" in gap_row
    flagged = int(re.search(r'<strong id="n-flagged">(\d+)</strong>', html).group(1))
    assert flagged >= 2


def test_core_consignments_track_each_units_status(staff_ledger):
    found = {c.key: c for c in customs.consignments(staff_ledger, "DE")[0]}
    assert found[GEN].status == "arrived" and found[GEN].released and found[GEN].clearance_hours == 400.0
    assert found[HLD].status == "held" and found[HLD].decided_by == "de-customs"
    assert found[TRN].status == "awaiting" and found[TRN].sender == "pearl-export"
    assert customs.consignments(staff_ledger, "US")[0] == []
    with pytest.raises(customs.InvalidInput):
        customs.consignments(staff_ledger, "Germany")


@pytest.mark.parametrize("decision,verdict", [("released", "genuine"), ("held", "suspicious"),
                                              ("seized", "likely_counterfeit")])
def test_one_click_decisions_are_signed_inspect_statements(client, staff_ledger, decision, verdict):
    logged_in(client, "customs-de")
    response = inspect(client, TRN, decision)
    assert response.status_code == 201, response.get_json()
    entry, statement = staff_ledger.get_event(response.get_json()["event_id"])
    assert statement.type == "inspect" and statement.actor == "de-customs" and statement.decision == decision
    assert provenance.lookup(staff_ledger, TRN).verdict == verdict
    html = client.get("/customs/").get_data(as_text=True)
    assert TRN not in rows(html, "queue")
    assert rows(html, decision)[TRN] == decision


def test_releasing_a_held_item_changes_the_consumer_page(client, staff_app):
    gtin, serial = HLD.split("/")[1], HLD.split("/")[3]
    public = staff_app.test_client()
    before = public.get(f"/01/{gtin}/21/{serial}").get_data(as_text=True)
    assert 'data-verdict="suspicious"' in before
    logged_in(client, "customs-de")
    assert inspect(client, HLD, "released").status_code == 201
    after = public.get(f"/01/{gtin}/21/{serial}").get_data(as_text=True)
    assert 'data-verdict="genuine"' in after and "Customs cleared it" in after


def test_inspect_for_another_customs_party_is_403(client):
    logged_in(client, "customs-de")
    response = inspect(client, TRN, "released", actor="us-customs")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "wrong_party"


def test_inspect_with_a_key_not_of_this_officers_device_is_403(client):
    logged_in(client, "customs-de")
    envelope = signed("inspect", "de-customs", party_key("de-customs"), items=[TRN], decision="released", prev={})
    response = json_post(client, "/customs/inspect", {"envelope": envelope.to_json()}, page="/customs/")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_your_device"


def test_only_inspect_statements_go_through_the_customs_endpoint(client):
    logged_in(client, "customs-de")
    envelope = signed("ship", "de-customs", device_key("customs-de"), items=[TRN], to="hh-warehouse", prev={})
    response = json_post(client, "/customs/inspect", {"envelope": envelope.to_json()}, page="/customs/")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "wrong_role"
    bad = json_post(client, "/customs/inspect", {"nope": 1}, page="/customs/")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_request"


def test_staff_cannot_use_the_customs_endpoint(client):
    logged_in(client, "hh-staff")
    envelope = signed("inspect", "hh-warehouse", device_key("hh-staff"), items=[TRN], decision="released", prev={})
    response = json_post(client, "/customs/inspect", {"envelope": envelope.to_json()}, page="/staff/")
    assert response.status_code == 403


def test_charts_render_as_inline_svg(client):
    logged_in(client, "customs-de")
    html = client.get("/customs/").get_data(as_text=True)
    for chart in ("chart-flags", "chart-origin", "chart-manufacturer", "chart-clearance"):
        figure = html.split(f'id="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in figure and "<rect" in figure, chart
        assert "<script" not in figure and "style=" not in figure
    origin = html.split('id="chart-origin"', 1)[1].split("</figure>", 1)[0]
    assert ">CN<" in origin
    maker = html.split('id="chart-manufacturer"', 1)[1].split("</figure>", 1)[0]
    assert "Acme Manufacturing" in maker
    clearance = html.split('id="chart-clearance"', 1)[1].split("</figure>", 1)[0]
    assert "median" in clearance and "&gt; 2 weeks" in clearance


def test_stats_numbers_behind_the_charts(staff_ledger):
    dash = customs.dashboard(staff_ledger, "DE")
    s = dash.stats
    assert sum(c + w for _, c, w in s.flags_per_day) >= 2
    assert sum(s.verdicts_by_origin["CN"].values()) == len({a.key for a in dash.assessments})
    assert s.verdicts_by_manufacturer["acme-cn"]["genuine"] >= 1
    assert dict(s.clearance_buckets)["> 2 weeks"] >= 1 and s.clearance_median_hours is not None


def test_csv_export(client):
    logged_in(client, "customs-de")
    response = client.get("/customs/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"] and "customs-DE-" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert set(table[0]) == set(customs.CSV_COLUMNS)
    by_key = {r["key"]: r for r in table}
    assert by_key[HLD]["status"] == "held" and by_key[HLD]["verdict"] == "suspicious"
    assert "held_by_customs" in by_key[HLD]["reasons"]
    assert by_key[GEN]["clearance_hours"] == "400.0" and by_key[GEN]["origin_country"] == "CN"
    assert by_key[TRN]["sender"] == "pearl-export" and by_key[TRN]["recipient"] == "hh-warehouse"


def test_csv_cells_that_look_like_formulas_are_neutralised():
    assert customs._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert customs._cell("+1") == "'+1" and customs._cell("@x") == "'@x" and customs._cell("ok") == "ok"


def test_item_detail_shows_the_path_and_decision_buttons(client):
    logged_in(client, "customs-de")
    response = client.get(f"/customs/item/{HLD}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="path"' in html and html.count('class="step step-') == 5
    assert 'data-verdict="suspicious"' in html and 'data-decision="seized"' in html
    assert client.get("/customs/item/not-a-key").status_code == 400


def test_dashboard_is_recomputed_when_the_ledger_grows(client):
    logged_in(client, "customs-de")
    assert rows(client.get("/customs/").get_data(as_text=True), "queue")[TRN] == "awaiting"
    assert inspect(client, TRN, "held").status_code == 201
    assert rows(client.get("/customs/").get_data(as_text=True), "held")[TRN] == "held"
