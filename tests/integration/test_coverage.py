"""Coverage of the above-scale roster by filed CQOs (art. 4) at the registry, on SQLite
and PostgreSQL, with appointments made by real filings from a county: per county, per
category and city-wide; why an enterprise is not covered; a term crossing its end date;
the lapsed-term policy; an enterprise that moved; scope; CSV and XLSX exports checked
against the database; `cqo report coverage`."""
import csv
import io
from collections import Counter, defaultdict
from datetime import date

import pytest
import requests
import yaml
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from services.registry import active_cqo
from services.registry.roster import coverage, importing
from services.registry.models import Appointment, RosterEntry
from cqo.cli import app
from tests.support.factories import uscc_for
from tests.integration.registry_support import token
from tests.integration.test_roster_import import csv_bytes, row

pytestmark = pytest.mark.integration
TODAY = date(2026, 11, 25)


def get(base, path, role="city_officer", **params):
    kw = {k: params.pop(k) for k in ("county", "uscc") if k in params and role != "city_officer"}
    return requests.get(base + path, params=params, timeout=30,
                        headers={"Authorization": token(role, **kw)})


@pytest.fixture
def world(registry):
    """Roster 2026: 130921 (industrial) A1..A5, 130922 (service) B1, B2 and M, which filed
    from 130921 and moved. A1 covered; A2's term ended 2026-01-05; A3 ended 2026-03-01;
    A4 never filed; A5 changed its CQO on 2026-02-01; B1 covered; M covered."""
    county, base, db = registry

    def file(county_code, n, **kw):
        filing = county.filing(county_code, n=n, **kw)
        county.publish(filing)
        decision = county.decision_of(filing, county=county_code)
        assert decision["outcome"] == "accepted", decision
        return filing

    file("130921", 1)
    file("130921", 2, appointed_on=date(2023, 1, 5), submitted=date(2023, 1, 20))
    file("130921", 3)
    file("130921", 3, kind="end", effective_on=date(2026, 3, 1), submitted=date(2026, 3, 10), person=300)
    file("130921", 5)
    file("130921", 5, kind="change", appointed_on=date(2026, 2, 1), effective_on=date(2026, 2, 1),
         submitted=date(2026, 2, 10), person=500)
    file("130922", 1)
    file("130921", 9)                                   # M, filed from its old county
    file("130921", 50)                                  # filed but not on the roster
    rows = [row("130921", n) for n in (1, 2, 3, 4, 5)]
    rows += [row("130922", n, category="规模以上服务业") for n in (1, 2)]
    moved = row("130922", 0, category="规模以上服务业")
    moved[0] = uscc_for("130921", 9)                    # the 2026 roster has M in 130922
    rows.append(moved)
    rows.append(row("130921", 1, year=2025))            # another year's roster
    report = importing.import_roster(db, io.BytesIO(csv_bytes(rows)), source="roster.csv", actor="test")
    assert report.accepted == 9
    return base, db


def by_county(body) -> dict:
    return {c["county"]: c for c in body["counties"]}


def test_coverage_per_county_category_and_city(world):
    base, _ = world
    body = get(base, "/api/v1/coverage", year=2026, as_of=TODAY.isoformat()).json()
    counties = by_county(body)
    a, b = counties["130921"], counties["130922"]
    assert (a["roster_size"], a["covered"], a["never_filed"], a["lapsed"], a["ended"], a["rate"]) == (5, 2, 1, 1, 1, 0.4)
    assert (b["roster_size"], b["covered"], b["never_filed"], b["rate"]) == (3, 2, 1, 0.6667)
    assert counties["130903"]["roster_size"] == 0 and counties["130903"]["rate"] is None
    assert a["by_category"]["industrial_above_scale"]["covered"] == 2
    assert a["by_category"]["service_above_scale"]["roster_size"] == 0
    assert (body["total"]["roster_size"], body["total"]["covered"], body["total"]["rate"]) == (8, 4, 0.5)
    assert {c["category"]: c["covered"] for c in body["by_category"]} == {
        "industrial_above_scale": 2, "service_above_scale": 2}
    assert body["lapsed_counts_as_coverage"] is False

    uncovered = {i["uscc"]: i for i in body["uncovered"]["items"]}
    assert body["uncovered"]["total"] == 4
    assert uncovered[uscc_for("130921", 2)]["reason_name"] == "任期届满未续任"
    assert uncovered[uscc_for("130921", 2)]["last_term_end"] == "2026-01-05"
    assert (uncovered[uscc_for("130921", 3)]["reason"], uncovered[uscc_for("130921", 3)]["ended_on"]) == \
        ("ended", "2026-03-01")
    assert uncovered[uscc_for("130921", 4)]["reason_name"] == "从未备案"
    assert uncovered[uscc_for("130921", 4)]["last_cqo_name"] is None
    only = get(base, "/api/v1/coverage", year=2026, as_of=TODAY.isoformat(), reason="never_filed").json()
    assert [i["uscc"] for i in only["uncovered"]["items"]] == [uscc_for("130921", 4), uscc_for("130922", 2)]
    paged = get(base, "/api/v1/coverage", year=2026, as_of=TODAY.isoformat(), page_size=3, page=2).json()
    assert len(paged["uncovered"]["items"]) == 1 and paged["uncovered"]["total"] == 4


def test_a_term_crossing_its_end_date_flips_coverage(world):
    base, db = world
    on_last_day = by_county(get(base, "/api/v1/coverage", year=2026, as_of="2029-01-05").json())
    day_after = by_county(get(base, "/api/v1/coverage", year=2026, as_of="2029-01-06").json())
    assert (on_last_day["130921"]["covered"], on_last_day["130922"]["covered"]) == (2, 2)
    # A1, B1 and M were appointed on 2026-01-05 for three years; A5's new CQO on 2026-02-01
    assert (day_after["130921"]["covered"], day_after["130921"]["lapsed"]) == (1, 2)
    assert (day_after["130922"]["covered"], day_after["130922"]["lapsed"]) == (0, 2)
    # before A3's CQO left it was covered, and A2's term had already ended
    before_end = coverage.per_county(db, 2026, date(2026, 2, 15), county="130921")[0]
    assert (before_end["covered"], before_end["lapsed"], before_end["ended"]) == (3, 1, 0)
    # before anyone was appointed, only A2 had a CQO (whose term was running)
    early = coverage.per_county(db, 2026, date(2025, 6, 1), county="130921")[0]
    assert (early["covered"], early["never_filed"]) == (1, 4)


def test_lapsed_terms_count_only_under_the_policy(world):
    _, db = world
    with db.unit_of_work() as uow:  # as the assessment report calls it
        strict = {r["county"]: r for r in coverage.per_county(uow, 2026, TODAY)}
    lenient = {r["county"]: r for r in coverage.per_county(db, 2026, TODAY, lapsed_counts=True)}
    assert (strict["130921"]["covered"], lenient["130921"]["covered"]) == (2, 3)
    assert lenient["130921"]["lapsed"] == 1 and lenient["130921"]["uncovered"] == 2
    active_cqo.set_policy(True)
    try:
        assert coverage.summary(db, 2026, TODAY)["total"]["covered"] == 5
        assert coverage.uncovered(db, 2026, TODAY, reason="lapsed")["total"] == 0
    finally:
        active_cqo.set_policy(False)


def test_county_officers_see_their_county_only(world):
    base, _ = world
    own = get(base, "/api/v1/coverage", "county_officer", county="130922", year=2026, as_of=TODAY.isoformat())
    body = own.json()
    assert [c["county"] for c in body["counties"]] == ["130922"] and body["total"]["roster_size"] == 3
    assert {i["county"] for i in body["uncovered"]["items"]} == {"130922"}
    other = requests.get(base + "/api/v1/coverage", params={"year": 2026, "county": "130921"}, timeout=10,
                         headers={"Authorization": token("county_officer", county="130922")})
    assert other.status_code == 403 and other.json()["code"] == "AUTH_FORBIDDEN"
    denied = requests.get(base + "/api/v1/coverage", params={"year": 2026}, timeout=10,
                          headers={"Authorization": token("enterprise", uscc=uscc_for("130921", 1))})
    assert denied.status_code == 403
    export = requests.get(base + "/api/v1/coverage/export", params={"year": 2026, "format": "csv"}, timeout=10,
                          headers={"Authorization": token("county_officer", county="130922")})
    assert export.status_code == 200 and "130921" not in export.content.decode("utf-8-sig")
    bad = get(base, "/api/v1/coverage", year=2026, as_of="2026-13-01")
    assert bad.status_code == 422 and "as_of" in bad.json()["errors"]
    assert get(base, "/api/v1/coverage").status_code == 422


def expected_from_database(db, year: int, as_of: date) -> tuple[dict, dict]:
    """Coverage recomputed in plain Python from the rows: ({county: Counter}, {uscc: reason})."""
    with db.unit_of_work() as uow:
        entries = [(e.uscc, e.county) for e in uow.session.scalars(
            select(RosterEntry).where(RosterEntry.year == year))]
        appointments = defaultdict(list)
        for a in uow.session.scalars(select(Appointment)):
            appointments[a.uscc].append((a.appointed_on, a.ended_on, a.term_end))
    counts: dict[str, Counter] = defaultdict(Counter)
    reasons = {}
    for uscc, county in entries:
        past = [a for a in appointments[uscc] if a[0] <= as_of]
        in_post = [a for a in past if a[1] is None or a[1] > as_of]
        if any(a[2] >= as_of for a in in_post):
            reason = "covered"
        else:
            reason = "lapsed" if in_post else "ended" if past else "never_filed"
            reasons[uscc] = reason
        counts[county]["roster"] += 1
        counts[county][reason] += 1
    return counts, reasons


def test_xlsx_export_matches_the_database(world):
    base, db = world
    response = get(base, "/api/v1/coverage/export", year=2026, format="xlsx", as_of=TODAY.isoformat())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["覆盖率汇总", "未覆盖企业"]
    summary = list(book["覆盖率汇总"].iter_rows(values_only=True))
    assert "2026年度" in summary[0][0] and TODAY.isoformat() in summary[1][0]
    header = list(summary[2])
    assert header[:6] == ["县级区划代码", "县（市、区）", "规上企业名录数", "已设立首席质量官", "未设立首席质量官", "覆盖率"]
    rows = {r[0]: dict(zip(header, r)) for r in summary[3:-1]}
    total = dict(zip(header, summary[-1]))
    counts, reasons = expected_from_database(db, 2026, TODAY)
    assert {c for c, r in rows.items() if r["规上企业名录数"]} == set(counts)
    for code, expected in counts.items():
        got = rows[code]
        assert got["规上企业名录数"] == expected["roster"]
        assert got["已设立首席质量官"] == expected["covered"]
        assert got["其中：从未备案"] == expected["never_filed"]
        assert got["其中：任期届满未续任"] == expected["lapsed"]
        assert got["其中：已撤销/离任"] == expected["ended"]
        assert got["覆盖率"] == pytest.approx(expected["covered"] / expected["roster"], abs=1e-4)
    assert total["县（市、区）"] == "全市合计"
    assert total["规上企业名录数"] == sum(c["roster"] for c in counts.values())
    assert total["已设立首席质量官"] == sum(c["covered"] for c in counts.values())
    sheet = list(book["未覆盖企业"].iter_rows(values_only=True))
    names = {"never_filed": "从未备案", "lapsed": "任期届满未续任", "ended": "已撤销/离任"}
    assert sheet[0][0] == "统一社会信用代码"
    assert {r[0]: r[5] for r in sheet[1:]} == {u: names[r] for u, r in reasons.items()}


def test_csv_exports_and_the_cli_report(world, db_config, amqp_uri, tmp_path):
    base, db = world
    summary = get(base, "/api/v1/coverage/export", year=2026, format="csv", as_of=TODAY.isoformat())
    assert summary.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(summary.content.decode("utf-8-sig"))))
    assert lines[0][0] == "县级区划代码" and lines[-1][1] == "全市合计" and lines[-1][5] == "50.00%"
    listed = get(base, "/api/v1/coverage/export", year=2026, format="csv", table="uncovered",
                 as_of=TODAY.isoformat())
    uncovered = list(csv.reader(io.StringIO(listed.content.decode("utf-8-sig"))))
    assert len(uncovered) == 5 and {r[5] for r in uncovered[1:]} == {"从未备案", "任期届满未续任", "已撤销/离任"}

    config = tmp_path / "registry.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, **db_config}), encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200"})
    shown = runner.invoke(app, ["report", "coverage", "--year", "2026", "--as-of", TODAY.isoformat(),
                                "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "全市合计" in shown.output and "50.00%" in shown.output and "沧县" in shown.output
    assert "新华区" not in shown.output  # counties without a roster are not listed
    out = tmp_path / "coverage.xlsx"
    written = runner.invoke(app, ["report", "coverage", "--year", "2026", "--as-of", TODAY.isoformat(),
                                  "--out", str(out), "--config", str(config)])
    assert written.exit_code == 0, written.output
    book = load_workbook(out)
    total = list(book["覆盖率汇总"].iter_rows(values_only=True))[-1]
    assert (total[1], total[2], total[3]) == ("全市合计", 8, 4)
    county_csv = tmp_path / "130921.csv"
    result = runner.invoke(app, ["report", "coverage", "--year", "2026", "--as-of", TODAY.isoformat(),
                                 "--county", "130921", "--table", "uncovered", "--out", str(county_csv),
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(county_csv.read_text(encoding="utf-8-sig"))))
    assert sorted(r[0] for r in rows[1:]) == sorted(uscc_for("130921", n) for n in (2, 3, 4))
    assert runner.invoke(app, ["report", "coverage", "--year", "2026", "--out", str(tmp_path / "x.pdf"),
                               "--config", str(config)]).exit_code == 2
