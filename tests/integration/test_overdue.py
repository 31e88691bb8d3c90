"""The overdue list per county (arts. 5, 10, 14) on the real broker, SQLite and PostgreSQL."""
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from services.registry.oversight import overdue
from shared import clock
from shared.contracts import jurisdiction
from tests.integration.oversight_support import establish, get, post

pytestmark = pytest.mark.integration

AS_OF = date(2029, 2, 1)


def _setup(county_side, base):
    """130921: a late change (3 days), an unanswered recommendation, the changed-to CQO's
    term lapsing on 2029-01-05; 130922: one lapsed term, one renewed in time."""
    late_firm = establish(county_side, n=1)
    change = county_side.filing("130921", n=1, kind="change", person=100, effective_on=date(2026, 1, 31),
                                submitted=date(2026, 3, 3))
    county_side.publish(change)
    decision = county_side.decision_of(change)
    assert decision["late"] and decision["days_late"] == 3
    advised = establish(county_side, n=2, appointed_on=date(2026, 6, 1))  # term to 2029-06-01
    rec = post(base, "/api/v1/recommendations", {
        "uscc": advised["enterprise"]["uscc"], "incident": "产品抽检不合格", "reason": "质量管理失职"},
        role="county_officer", county="130921").json()
    lapsed = establish(county_side, "130922", n=3)
    renewed = establish(county_side, "130922", n=4)
    renewal = county_side.filing("130922", n=4, kind="renewal", person=4, appointed_on=date(2028, 12, 1),
                                 submitted=date(2028, 12, 1))
    county_side.publish(renewal)
    assert county_side.decision_of(renewal, county="130922")["outcome"] == "accepted"
    return late_firm, change, advised, rec, lapsed, renewed


def test_overdue_counts_and_items_per_county(registry):
    county_side, base, db = registry
    late_firm, change, advised, rec, lapsed, _ = _setup(county_side, base)
    as_of = max(AS_OF, date.fromisoformat(rec["respond_by"]) + timedelta(days=1))

    body = get(base, "/api/v1/overdue", params={"as_of": as_of.isoformat()}).json()
    counties = {c["county"]: c for c in body["counties"]}
    assert set(counties) == {d.code for d in jurisdiction()}  # every county, zeros included
    assert {k: counties["130921"][k] for k in ("late_changes", "recommendations_open",
                                               "recommendations_unanswered", "lapsed_terms", "total")} == {
        "late_changes": 1, "recommendations_open": 1, "recommendations_unanswered": 1,
        "lapsed_terms": 1, "total": 3}
    assert counties["130921"]["county_name"] == "沧县"
    assert {k: counties["130922"][k] for k in ("late_changes", "recommendations_open", "lapsed_terms")} == {
        "late_changes": 0, "recommendations_open": 0, "lapsed_terms": 1}
    assert counties["130981"]["total"] == 0

    items = {(i["county"], i["kind"]): i for i in body["items"]}
    assert body["total"] == len(body["items"]) == 4
    late = items[("130921", "late_change")]
    assert (late["uscc"], late["filing_id"], late["days_overdue"], late["since"], late["kind_name"]) == (
        late_firm["enterprise"]["uscc"], change["filing_id"], 3, "2026-02-28", "变更逾期报送")
    assert "逾期3天" in late["detail"]
    unanswered = items[("130921", "recommendation_unanswered")]
    assert (unanswered["recommendation_id"], unanswered["uscc"], unanswered["kind_name"]) == (
        rec["id"], advised["enterprise"]["uscc"], "撤换建议未响应")
    assert unanswered["days_overdue"] == (as_of - date.fromisoformat(rec["respond_by"])).days
    term = items[("130921", "lapsed_term")]
    assert (term["cqo_name"], term["since"], term["days_overdue"]) == ("质量官100", "2029-01-05",
                                                                      (as_of - date(2029, 1, 5)).days)
    assert items[("130922", "lapsed_term")]["uscc"] == lapsed["enterprise"]["uscc"]

    # a county officer: its own county only
    own = get(base, "/api/v1/overdue", "county_officer", county="130922",
              params={"as_of": as_of.isoformat()}).json()
    assert [c["county"] for c in own["counties"]] == ["130922"]
    assert [(i["county"], i["kind"]) for i in own["items"]] == [("130922", "lapsed_term")]
    denied = get(base, "/api/v1/overdue", "county_officer", county="130922", params={"county": "130921"})
    assert denied.status_code == 403 and denied.json()["code"] == "AUTH_FORBIDDEN"
    assert get(base, "/api/v1/overdue", "enterprise", uscc=lapsed["enterprise"]["uscc"]).status_code == 403
    only = get(base, "/api/v1/overdue", params={"as_of": as_of.isoformat(), "kind": "lapsed_term",
                                                "county": "130921"}).json()
    assert [i["kind"] for i in only["items"]] == ["lapsed_term"]
    paged = get(base, "/api/v1/overdue", params={"as_of": as_of.isoformat(), "page_size": 1, "page": 2}).json()
    assert paged["total"] == 4 and len(paged["items"]) == 1
    assert get(base, "/api/v1/overdue", params={"as_of": "2029-02-30"}).status_code == 422


def test_per_county_is_computed_as_of_the_day(registry):
    county_side, base, db = registry
    _, _, advised, rec, _, _ = _setup(county_side, base)
    today = clock.today()
    respond_by = date.fromisoformat(rec["respond_by"])
    assert respond_by == today + relativedelta(months=1)

    def counts(day, **kw):
        with db.unit_of_work() as uow:
            return {r["county"]: r for r in overdue.per_county(uow, day, **kw)}

    before = counts(date(2026, 3, 2))  # the day before the late change reached the county
    assert (before["130921"]["late_changes"], before["130921"]["lapsed_terms"]) == (0, 0)
    assert counts(date(2026, 3, 3))["130921"]["late_changes"] == 1
    assert counts(AS_OF, since=date(2027, 1, 1))["130921"]["late_changes"] == 0  # a later year's report
    assert counts(today - timedelta(days=1))["130921"]["recommendations_open"] == 0  # not yet issued
    assert counts(respond_by)["130921"]["recommendations_unanswered"] == 0
    assert counts(respond_by + timedelta(days=1))["130921"]["recommendations_unanswered"] == 1
    # lapses: in force up to and including term_end; a renewal in time never lapses
    assert counts(date(2029, 1, 5))["130922"]["lapsed_terms"] == 0
    assert counts(date(2029, 1, 6))["130922"]["lapsed_terms"] == 1

    # withdrawn today: no longer open from today's end on
    post(base, f"/api/v1/recommendations/{rec['id']}/withdraw", {"comment": "误发"},
         role="county_officer", county="130921")
    assert counts(today)["130921"]["recommendations_open"] == 0
    assert counts(respond_by + timedelta(days=1))["130921"]["recommendations_unanswered"] == 0

    with db.unit_of_work() as uow:
        rows = overdue.per_county(uow, AS_OF, counties=["130921"])
    assert [r["county"] for r in rows] == ["130921"]
    assert set(rows[0]) == {"county", "county_name", "late_changes", "recommendations_open",
                            "recommendations_unanswered", "lapsed_terms", "total"}
