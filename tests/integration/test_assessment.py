"""The annual assessment report (art. 16) on the real broker, SQLite and PostgreSQL: the
register is filled the way counties fill it (filings over cqo.filings, a county's progress
snapshot), the roster is imported, recommendations are issued; then the JSON, the XLSX
(opened with openpyxl) and `cqo report assessment` are checked against the database."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

import openpyxl
import pytest
from typer.testing import CliRunner

from services.registry.reporting import columns, workbook
from services.registry.oversight import recommendations
from services.registry.models import RosterEntry
from shared.auth import Principal
from cqo.cli import app
from tests.integration import filing_support as fs
from tests.integration.reporting_support import site

pytestmark = pytest.mark.integration

A, B = "130921", "130922"
Y = date.today().year - 1          # a closed year: every date of the scenario is past
AS_OF = date(Y, 12, 31)
CITY = Principal(subject="city_officer:test", role="city_officer")


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, broker, run_id, tmp_path):
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with site(broker, run_id, request.param, tmp_path, pg, counties=(A, B), tag="assess",
              filing_services=False) as (city, _, side, _uri):
        yield build_world(city, side), city, request.param, tmp_path


class World:
    def __init__(self, usccs: dict[str, str], late_filing: str):
        self.usccs, self.late_filing = usccs, late_filing


def _decided(side, county, *messages):
    for message in messages:
        side.publish(message)
        decision = side.decision_of(message, county)
        assert decision["outcome"] in ("accepted", "rejected"), decision
    return decision


def build_world(city, side) -> World:
    """Roster of year Y: A has e1..e4, B has f1, f2 and m (m moved from A to B in Y)."""
    u = {name: fs.new_uscc(county) for name, county in (
        ("e1", A), ("e2", A), ("e3", A), ("e4", A), ("f1", B), ("f2", B), ("m", A))}
    with city.db.unit_of_work() as uow:  # the roster rows as an import leaves them
        uow.session.add_all(RosterEntry(
            year=Y, uscc=u[n], name=f"沧州考核测试企业{n}有限公司",
            county=A if n.startswith("e") else B, category="industrial_above_scale")
            for n in ("e1", "e2", "e3", "e4", "f1", "f2", "m"))
        uow.commit()

    campaign = {"year": Y, "notice_number": f"沧市监〔{Y}〕3号", "title": f"{Y}年度首席质量官集中备案",
                "notice_text": "……", "opens_on": f"{Y}-03-01", "closes_on": f"{Y}-04-30"}
    assert city.post("/api/v1/campaigns", campaign).status_code == 201

    def filing(county, name, person, **kw):
        message = side.filing(county=county, uscc=u[name], person=person, **kw)
        if message["channel"] == "campaign":
            message["campaign_year"] = Y
        return message

    in_campaign = dict(channel="campaign", appointed_on=date(Y, 3, 1), submitted=date(Y, 3, 10))
    _decided(side, A, filing(A, "e1", 101, **in_campaign))
    late = filing(A, "e2", 202, kind="change", effective_on=date(Y, 2, 1), submitted=date(Y, 4, 10),
                  appointed_on=date(Y, 2, 1))
    _decided(side, A, filing(A, "e2", 201, appointed_on=date(Y, 1, 5), submitted=date(Y, 1, 20)), late)
    # appointed three years before: the term ran out on 1 June of Y
    _decided(side, A, filing(A, "e4", 401, appointed_on=date(Y - 3, 6, 1), submitted=date(Y - 3, 6, 10)))
    _decided(side, B, filing(B, "f1", 501, **in_campaign))
    refused = _decided(side, B, filing(B, "f2", 601, cqo_overrides={"years_quality_work": 1},
                                       **in_campaign))
    assert refused["outcome"] == "rejected"
    _decided(side, A, filing(A, "m", 701, appointed_on=date(Y, 1, 5), submitted=date(Y, 1, 20)))
    _decided(side, B, filing(B, "m", 701, kind="update", submitted=date(Y, 5, 1),
                             appointed_on=date(Y, 1, 5)))
    assert city.scalar("SELECT county FROM enterprises WHERE uscc = :u", u=u["m"]) == B

    # county A's own counts of the campaign (only it knows what waits for its pre-review)
    side.publish({"type": "campaign.progress", "county": A, "year": Y,
                  "as_of": datetime(Y, 12, 30, 8, 0, tzinfo=timezone.utc).isoformat(),
                  "counts": {"submitted": 2, "returned": 1, "approved": 1, "forwarded": 0,
                             "accepted": 1, "rejected": 0}},
                 routing_key=f"filing.{A}.progress", message_id=f"progress:{A}:{Y}:1")
    fs.wait_for(lambda: city.scalar("SELECT count(*) FROM county_campaign_progress") == 1,
                message="snapshot kept")

    with city.db.unit_of_work() as uow:  # issued during Y: one unanswered by the year's end
        recommendations.issue(uow, CITY, {"uscc": u["e1"], "incident": "产品质量抽检不合格",
                                          "reason": "未履行质量安全一票否决职责"}, today=date(Y, 6, 1))
    with city.db.unit_of_work() as uow:
        recommendations.issue(uow, CITY, {"uscc": u["f1"], "incident": "质量投诉",
                                          "reason": "质量管理体系运行不力"}, today=date(Y, 12, 20))
    return World(u, late["filing_id"])


# completion is measured at the campaign's close (30 April of Y): e4's term still ran then
EXPECTED = {
    A: {"roster_size": 4, "covered": 2, "coverage_rate": 0.5, "active_cqo": 2, "filed": 1,
        "completed": 3, "completed_in_campaign": 1, "completed_already": 2, "completion_rate": 0.75,
        "filed_off_roster": 0, "pending": 3, "returned": 1, "rejected": 0, "late_changes": 1,
        "recommendations_open": 1, "recommendations_unanswered": 1, "lapsed_terms": 1},
    B: {"roster_size": 3, "covered": 2, "coverage_rate": 0.6667, "active_cqo": 2, "filed": 1,
        "completed": 2, "completed_in_campaign": 1, "completed_already": 1, "completion_rate": 0.6667,
        "filed_off_roster": 0, "pending": 0, "returned": 0, "rejected": 1, "late_changes": 0,
        "recommendations_open": 1, "recommendations_unanswered": 0, "lapsed_terms": 0},
}
TOTAL = {"roster_size": 7, "covered": 4, "coverage_rate": 0.5714, "filed": 2, "completed": 5,
         "completed_in_campaign": 2, "completed_already": 3, "completion_rate": 0.7143,
         "filed_off_roster": 0, "pending": 3, "returned": 1, "rejected": 1, "late_changes": 1,
         "recommendations_open": 2, "recommendations_unanswered": 1, "lapsed_terms": 1}


def from_database(city) -> dict[str, dict]:
    """The same figures, counted straight from the registry's tables."""
    out = {A: {}, B: {}}
    for county, n in city.rows("SELECT county, count(*) FROM roster_entries WHERE year = :y "
                               "GROUP BY county", y=Y):
        out[county]["roster_size"] = n
    for county, n in city.rows("SELECT county, count(DISTINCT uscc) FROM filing_ledger WHERE "
                               "campaign_year = :y AND outcome = 'accepted' GROUP BY county", y=Y):
        out[county]["filed"] = n
    for county, n in city.rows("SELECT county, count(DISTINCT filing_id) FROM filing_ledger "
                               "WHERE late = :t GROUP BY county", t=True):
        out[county]["late_changes"] = n
    for county, n in city.rows("SELECT e.county, count(*) FROM recommendations r JOIN enterprises e "
                               "ON e.uscc = r.uscc GROUP BY e.county"):
        out[county]["recommendations_open"] = n
    return out


def test_report_as_json_matches_the_register(world):
    w, city, _, _ = world
    resp = city.get(f"/api/v1/reports/assessment?year={Y}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["as_of"] == AS_OF.isoformat() and body["campaign"]["year"] == Y
    assert body["completion_on"] == f"{Y}-04-30"
    assert body["title"] == f"{Y}年度企业首席质量官制度推进情况考核表"
    rows = {r["county"]: r for r in body["counties"]}
    assert len(rows) == 19
    for county, expected in EXPECTED.items():
        assert {k: rows[county][k] for k in expected} == expected, county
        # no talent service in this test: the training columns say so, never zeros
        assert rows[county]["training"] == "人才服务暂无应答，培训数据暂缺"
        assert [rows[county][k] for k in ("training_courses", "training_attendees",
                                          "training_passed")] == [None, None, None]
    assert {k: body["total"][k] for k in TOTAL} == TOTAL
    assert body["total"]["county_name"] == "全市合计"
    assert any("人才服务" in note for note in body["notes"])
    database = from_database(city)
    for county in (A, B):
        for key, value in database[county].items():
            assert rows[county][key] == value, (county, key)
    [late] = rows[A]["late_change_filings"]
    assert (late["filing_id"], late["uscc"], late["days_late"], late["kind_name"]) == (
        w.late_filing, w.usccs["e2"], 40, "变更")
    assert rows[A]["reported_at"].startswith(f"{Y}-12-30") and rows[B]["reported_at"] is None

    own = city.get(f"/api/v1/reports/assessment?year={Y}", "county_officer", county=B).json()
    assert [r["county"] for r in own["counties"]] == [B]
    assert own["total"]["roster_size"] == 3 and own["total"]["county_name"] == "合计"
    assert city.get(f"/api/v1/reports/assessment?year={Y}", "enterprise",
                    uscc=w.usccs["e1"]).status_code == 403
    future = city.get(f"/api/v1/reports/assessment?year={date.today().year + 1}")
    assert future.status_code == 422 and future.json()["code"] == "ASSESSMENT_YEAR_FUTURE"
    missing = city.get("/api/v1/reports/assessment")
    assert missing.status_code == 422 and "year" in missing.json()["errors"]


def _summary_rows(sheet) -> dict[str, dict]:
    header = [c.value for c in sheet[workbook.HEADER_ROW]]
    assert header == [h for _, h, _ in columns.COLUMNS]
    keys = [k for k, _, _ in columns.COLUMNS]
    rows = {}
    for row in sheet.iter_rows(min_row=workbook.HEADER_ROW + 1, values_only=True):
        if row[1] is None:
            break
        rows[row[0] or "total"] = dict(zip(keys, row))
    return rows


def _rate(value):
    return None if value == "—" else round(value, 4)


def check_workbook(content: bytes, city) -> None:
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames[0] == "汇总" and len(book.sheetnames) == 1 + 19
    rows = _summary_rows(book["汇总"])
    assert len(rows) == 20 and rows["total"]["county_name"] == "全市合计"
    for county, expected in {**EXPECTED, "total": TOTAL}.items():
        got = {k: (_rate(rows[county][k]) if k.endswith("_rate") else rows[county][k])
               for k in expected if k != "active_cqo"}
        assert got == {k: v for k, v in expected.items() if k != "active_cqo"}, county
    database = from_database(city)
    for county in (A, B):
        for key, value in database[county].items():
            assert rows[county][key] == value, (county, key)
    # every county's sheet: the indicators, then the late changes behind the number
    sheet = book[f"{A} 沧县"]
    labels = {sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=2).value
              for r in range(workbook.INDICATOR_FIRST_ROW,
                             workbook.INDICATOR_FIRST_ROW + len(columns.COUNTY_INDICATORS))}
    assert labels["规上企业名录数"] == 4 and labels["逾期变更备案"] == 1
    assert labels["县局待预审"] == 2 and labels["预审通过待报送"] == 1
    assert labels["撤换建议未响应"] == 1 and labels["任期届满未续任"] == 1
    assert round(labels["覆盖率"], 4) == 0.5 and labels["集中备案完成率"] == 0.75
    assert labels["培训数据"] == "人才服务暂无应答，培训数据暂缺"
    assert labels["参训人次"] == "—" and labels["培训合格人次"] == "—"  # never a zero it cannot know
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    late_id = city.scalar("SELECT filing_id FROM filing_ledger WHERE late = :t", t=True)
    assert late_id in values and 40 in values
    assert any("人才服务" in str(v) for v in values)
    assert book[f"{B} 青县"].cell(row=workbook.INDICATOR_FIRST_ROW, column=2).value == 3


def test_report_as_xlsx_over_http(world):
    _, city, _, _ = world
    resp = city.get(f"/api/v1/reports/assessment.xlsx?year={Y}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment" in resp.headers["Content-Disposition"]
    check_workbook(resp.content, city)
    own = city.get(f"/api/v1/reports/assessment.xlsx?year={Y}", "county_officer", county=A)
    assert openpyxl.load_workbook(io.BytesIO(own.content)).sheetnames == ["汇总", f"{A} 沧县"]


def test_report_from_the_command_line(world, tmp_path):
    _, city, backend, _ = world
    env = {"DATABASE_URL": city.config["DATABASE_URL"],
           "DATABASE_SCHEMA": city.config.get("DATABASE_SCHEMA") or ""}
    runner = CliRunner()
    out = tmp_path / "考核表.xlsx"
    result = runner.invoke(app, ["report", "assessment", "--year", str(Y), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "全市合计" in result.output
    check_workbook(out.read_bytes(), city)
    as_json = tmp_path / "report.json"
    result = runner.invoke(app, ["report", "assessment", "--year", str(Y), "--out", str(as_json)], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(as_json.read_text(encoding="utf-8"))
    rows = {r["county"]: r for r in body["counties"]}
    assert {k: rows[A][k] for k in EXPECTED[A]} == EXPECTED[A]
    bad = runner.invoke(app, ["report", "assessment", "--year", str(Y), "--out", str(tmp_path / "x.csv")],
                        env=env)
    assert bad.exit_code == 2 and ".xlsx" in bad.output
    future = runner.invoke(app, ["report", "assessment", "--year", str(date.today().year + 1),
                                 "--out", str(tmp_path / "future.xlsx")], env=env)
    assert future.exit_code == 1 and "尚未开始" in future.output
