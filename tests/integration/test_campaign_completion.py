"""Campaign completion (art. 13) counts the county's roster only, on the real broker,
SQLite and PostgreSQL: campaign filings of enterprises not on the roster are shown apart
and never push the rate above 1; a county with an empty roster has no rate (null in JSON,
"—" in the XLSX and the CLI); the same figures in GET /campaigns/{year}/progress, the
assessment report (JSON, XLSX) and `cqo report assessment`."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import openpyxl
import pytest
from typer.testing import CliRunner

from shared.clock import today
from services.registry.reporting import workbook
from services.registry.models import RosterEntry
from cqo.cli import app
from tests.integration import filing_support as fs
from tests.integration.reporting_support import CAMPAIGN_YEAR, campaign_body, site

pytestmark = pytest.mark.integration

A, B = "130921", "130922"
Y = CAMPAIGN_YEAR


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, broker, run_id, tmp_path):
    """County A's roster: r1 files in the campaign, r2 was covered before it, r3 files but
    is refused, r4's term lapsed; x1..x4 (not on the roster) file in A's campaign. County
    B has no roster and one campaign filing (y1)."""
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with site(broker, run_id, request.param, tmp_path, pg, counties=(A, B), tag="compl",
              filing_services=False) as (city, _, side, _uri):
        u = {name: fs.new_uscc(A if name[0] in "rx" else B)
             for name in ("r1", "r2", "r3", "r4", "x1", "x2", "x3", "x4", "y1")}
        with city.db.unit_of_work() as uow:
            uow.session.add_all(RosterEntry(year=Y, uscc=u[n], name=f"沧州完成率测试企业{n}有限公司",
                                            county=A, category="industrial_above_scale")
                                for n in ("r1", "r2", "r3", "r4"))
            uow.commit()
        assert city.post("/api/v1/campaigns", campaign_body()).status_code == 201
        now = today()

        def decided(county, name, person, **kw):
            message = side.filing(county=county, uscc=u[name], person=person, **kw)
            if message["channel"] == "campaign":
                message["campaign_year"] = Y
            side.publish(message)
            return side.decision_of(message, county)["outcome"]

        in_campaign = dict(channel="campaign", appointed_on=now - timedelta(days=2), submitted=now)
        assert decided(A, "r1", 1, **in_campaign) == "accepted"
        assert decided(A, "r2", 2, appointed_on=now - timedelta(days=60),
                       submitted=now - timedelta(days=50)) == "accepted"
        assert decided(A, "r3", 3, cqo_overrides={"years_quality_work": 1}, **in_campaign) == "rejected"
        four_years_ago = now - timedelta(days=4 * 365)                    # its term has lapsed
        assert decided(A, "r4", 4, appointed_on=four_years_ago,
                       submitted=four_years_ago + timedelta(days=5)) == "accepted"
        for number, name in enumerate(("x1", "x2", "x3", "x4"), start=11):
            assert decided(A, name, number, **in_campaign) == "accepted"
        assert decided(B, "y1", 21, **in_campaign) == "accepted"
        yield city, tmp_path


EXPECTED_A = {"roster_size": 4, "filed": 5, "completed": 2, "completed_in_campaign": 1,
              "completed_already": 1, "completion_rate": 0.5, "filed_off_roster": 4, "rejected": 1}
EXPECTED_B = {"roster_size": 0, "filed": 1, "completed": 0, "completed_in_campaign": 0,
              "completed_already": 0, "completion_rate": None, "filed_off_roster": 1}
EXPECTED_TOTAL = {"roster_size": 4, "filed": 6, "completed": 2, "completed_in_campaign": 1,
                  "completed_already": 1, "completion_rate": 0.5, "filed_off_roster": 5}


def check_rows(body: dict) -> None:
    rows = {r["county"]: r for r in body["counties"]}
    assert all(r["completion_rate"] is None or 0 <= r["completion_rate"] <= 1
               for r in [*body["counties"], body["total"]]), rows[A]
    assert {k: rows[A].get(k) for k in EXPECTED_A} == EXPECTED_A
    assert {k: rows[B].get(k) for k in EXPECTED_B} == EXPECTED_B
    assert {k: body["total"].get(k) for k in EXPECTED_TOTAL} == EXPECTED_TOTAL
    # every county without a roster has no rate rather than 0
    assert all(r["completion_rate"] is None for r in body["counties"] if r["roster_size"] == 0)
    assert body["completion_on"] == today().isoformat()  # the campaign still runs


def test_completion_in_campaign_progress(world):
    city, _ = world
    resp = city.get(f"/api/v1/campaigns/{Y}/progress")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    check_rows(body)
    assert body["columns"]["filed_off_roster"] == "名录外企业集中备案数（不计入完成率）"
    own = city.get(f"/api/v1/campaigns/{Y}/progress", "county_officer", county=B).json()
    assert own["counties"][0]["completion_rate"] is None and own["total"]["completion_rate"] is None
    # closed today: measured on the day it closed
    assert city.post(f"/api/v1/campaigns/{Y}/close").status_code == 200
    check_rows(city.get(f"/api/v1/campaigns/{Y}/progress").json())


def test_completion_in_the_assessment_report(world):
    city, tmp_path = world
    resp = city.get(f"/api/v1/reports/assessment?year={Y}")
    assert resp.status_code == 200, resp.text
    check_rows(resp.json())

    xlsx = city.get(f"/api/v1/reports/assessment.xlsx?year={Y}")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))[workbook.SUMMARY_SHEET]
    header = [c.value for c in sheet[workbook.HEADER_ROW]]
    rows = {r[0] or "total": dict(zip(header, r)) for r in
            sheet.iter_rows(min_row=workbook.HEADER_ROW + 1, max_row=workbook.HEADER_ROW + 20,
                            values_only=True)}
    assert rows[A]["集中备案完成率"] == 0.5 and rows[A]["名录外企业集中备案数"] == 4
    assert rows[A]["其中：本次集中备案"] == 1 and rows[A]["其中：此前已备案无需变更"] == 1
    assert rows[B]["集中备案完成率"] == "—" and rows[B]["名录外企业集中备案数"] == 1
    assert rows["total"]["集中备案完成率"] == 0.5

    env = {"DATABASE_URL": city.config["DATABASE_URL"],
           "DATABASE_SCHEMA": city.config.get("DATABASE_SCHEMA") or ""}
    out = tmp_path / "report.json"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["report", "assessment", "--year", str(Y), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    check_rows(json.loads(out.read_text(encoding="utf-8")))
    [line_b] = [line for line in result.output.splitlines() if "青县" in line]
    [line_a] = [line for line in result.output.splitlines() if "沧县" in line]
    assert "—" in line_b and "50.0%" in line_a and "—" not in line_a
