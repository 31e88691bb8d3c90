"""Campaign progress per county (art. 13), end to end in-process: the city opens the
campaign, two counties take filings, pre-review, batch-submit; the city decides; each
county pushes its counts through its outbox (filing.<county>.progress) and the
registry's GET /campaigns/{year}/progress shows both sides, on SQLite and PostgreSQL."""
import time

import pytest
from sqlalchemy import text

from tests.integration import filing_support as fs
from tests.integration.reporting_support import CAMPAIGN_YEAR, campaign_body, file_and_review, site

pytestmark = pytest.mark.integration

A, B = "130921", "130922"
YEAR = CAMPAIGN_YEAR


@pytest.fixture(params=["sqlite", "postgresql"])
def city_and_counties(request, broker, run_id, tmp_path):
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with site(broker, run_id, request.param, tmp_path, pg, counties=(A, B), tag="prog") as s:
        yield s


def county_statuses(stack) -> dict:
    with stack.db.unit_of_work() as uow:
        return dict(uow.session.execute(text(
            "SELECT status, count(*) FROM filings WHERE campaign_year = :y GROUP BY status"),
            {"y": YEAR}).all())


def test_progress_per_county_from_the_city_and_the_counties(city_and_counties):
    city, counties, side, _ = city_and_counties
    assert city.get(f"/api/v1/campaigns/{YEAR}/progress").json()["code"] == "CAMPAIGN_NOT_FOUND"
    assert city.post("/api/v1/campaigns", campaign_body()).status_code == 201
    for stack in counties.values():
        fs.wait_for(lambda: stack.get("/campaign", fs.officer(stack.county)).status_code == 200,
                    message=f"campaign notice at {stack.county}")
    a, b = counties[A], counties[B]

    # an enterprise the city already has a CQO for, unknown to county A: the city refuses
    # its establishment from the campaign
    known = side.filing(county=A, n=777)
    side.publish(known)
    assert side.decision_of(known, A)["outcome"] == "accepted"
    refused = file_and_review(a, uscc=known["enterprise"]["uscc"])

    approved = [file_and_review(a) for _ in range(3)]
    returned = file_and_review(a, "return")
    waiting_review = file_and_review(a, None)
    assert {f["channel"] for f in approved + [refused, returned, waiting_review]} == {"campaign"}
    resp = a.post("/batches", None, fs.officer(A))
    assert resp.status_code == 201 and resp.json()["count"] == 4, resp.text
    file_and_review(b)              # approved at B, not yet batch-submitted
    file_and_review(b, None)        # waiting for B's pre-review

    def settled():
        """The city decided, the counties applied the decisions and reported after that."""
        body = city.get(f"/api/v1/campaigns/{YEAR}/progress").json()
        rows = {r["county"]: r for r in body["counties"]}
        ok = ((rows[A]["filed"], rows[A]["rejected"], rows[A]["forwarded"], rows[A]["approved"])
              == (3, 1, 0, 0) and (rows[B]["submitted"], rows[B]["approved"]) == (1, 1))
        return body if ok else None

    body = fs.wait_for(settled, timeout=30, message="progress settled at the city")
    rows = {r["county"]: r for r in body["counties"]}
    assert body["year"] == YEAR and body["campaign"]["notice_number"] == campaign_body()["notice_number"]
    assert body["columns"]["pending"] == "县局待办（待预审＋预审通过待报送）"
    assert {k: rows[A][k] for k in ("filed", "rejected", "waiting", "pending", "submitted",
                                    "approved", "returned", "forwarded", "county_name")} == {
        "filed": 3, "rejected": 1, "waiting": 0, "pending": 1, "submitted": 1, "approved": 0,
        "returned": 1, "forwarded": 0, "county_name": "沧县"}
    assert {k: rows[B][k] for k in ("filed", "rejected", "pending", "submitted", "approved",
                                    "returned")} == {
        "filed": 0, "rejected": 0, "pending": 2, "submitted": 1, "approved": 1, "returned": 0}
    # 3 accepted in the campaign + the enterprise registered before it
    assert rows[A]["active_cqo"] == 4 and rows[B]["active_cqo"] == 0
    # every county of the jurisdiction has a row; the silent ones have not reported
    assert len(rows) == 19 and rows["130930"]["reported_at"] is None
    total = body["total"]
    assert (total["filed"], total["pending"], total["returned"], total["rejected"]) == (3, 3, 1, 1)
    assert (total["counties"], total["counties_reported"]) == (19, 2)

    # the county-side numbers are the county's database; the city-side ones the ledger
    statuses = county_statuses(a)
    assert statuses == {"accepted": 3, "rejected": 1, "returned": 1, "submitted": 1}
    assert rows[A]["submitted"] + rows[A]["approved"] == statuses.get("submitted", 0) + statuses.get("approved", 0)
    assert county_statuses(b) == {"approved": 1, "submitted": 1}
    assert city.scalar("SELECT count(DISTINCT uscc) FROM filing_ledger WHERE campaign_year = :y "
                       "AND outcome = 'accepted' AND county = :c", y=YEAR, c=A) == rows[A]["filed"]
    kept = city.rows("SELECT county, message_id FROM county_campaign_progress WHERE year = :y "
                     "ORDER BY county", y=YEAR)
    assert [k[0] for k in kept] == [A, B]
    assert all(k[1].startswith(f"progress:{k[0]}:{YEAR}:") for k in kept)

    # county officers see their own county only; enterprises not at all
    own = city.get(f"/api/v1/campaigns/{YEAR}/progress", "county_officer", county=B).json()
    assert [r["county"] for r in own["counties"]] == [B] and own["total"]["pending"] == 2
    forbidden = city.get(f"/api/v1/campaigns/{YEAR}/progress", "enterprise",
                         uscc=known["enterprise"]["uscc"])
    assert forbidden.status_code == 403
    assert city.get("/api/v1/campaigns/1999/progress").status_code == 404


def test_a_snapshot_is_published_only_when_the_counts_change(city_and_counties):
    city, counties, _, _ = city_and_counties
    a = counties[A]
    assert city.post("/api/v1/campaigns", campaign_body()).status_code == 201
    fs.wait_for(lambda: city.scalar("SELECT count(*) FROM county_campaign_progress WHERE county = :c",
                                    c=A) == 1, timeout=20, message="first (all zero) snapshot")

    def published() -> list[str]:
        return [r[0] for r in a.db.read(lambda conn: conn.execute(text(
            "SELECT message_id FROM outbox_messages WHERE routing_key = :rk ORDER BY seq"),
            {"rk": f"filing.{A}.progress"}).all())]

    assert published() == [f"progress:{A}:{YEAR}:1"]
    time.sleep(1.0)  # several ticks with nothing new: nothing sent
    assert published() == [f"progress:{A}:{YEAR}:1"]
    file_and_review(a, None)
    fs.wait_for(lambda: len(published()) == 2, timeout=10, message="second snapshot")
    assert published()[1] == f"progress:{A}:{YEAR}:2"
    fs.wait_for(lambda: city.get(f"/api/v1/campaigns/{YEAR}/progress", "county_officer", county=A)
                .json()["counties"][0]["submitted"] == 1, timeout=20, message="snapshot at the city")
