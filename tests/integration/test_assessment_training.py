"""The assessment report's training columns (art. 16, art. 15 教育培训) with the talent
service answering, on the real broker and both databases: the figures are the talent
service's, the city total adds the city-level courses; with talent stopped the columns
say they are unavailable (the other case is in test_assessment.py)."""
from __future__ import annotations

import pytest

from tests.integration.oversight_support import get
from tests.integration.test_training import csv_bytes, new_course, person, upload

pytestmark = pytest.mark.integration


def test_the_report_shows_the_talent_services_training_figures(registry, talent):
    _, city_base, _ = registry
    talent_base, _, _ = talent
    city_course = new_course(talent_base).json()["id"]
    county_course = new_course(talent_base, kind="basic", level="county", of="130921").json()["id"]
    upload(talent_base, city_course, csv_bytes([person(1), person(2, passed="不合格", certificate="",
                                                                 issued="")]))
    upload(talent_base, county_course, csv_bytes([person(3, kind="基础培训")]))

    report = get(city_base, "/api/v1/reports/assessment", params={"year": 2026})
    assert report.status_code == 200, report.text
    body = report.json()
    rows = {r["county"]: r for r in body["counties"]}
    assert (rows["130921"]["training_courses"], rows["130921"]["training_attendees"],
            rows["130921"]["training_passed"]) == (1, 1, 1)
    assert (rows["130922"]["training_courses"], rows["130922"]["training_passed"]) == (0, 0)
    assert rows["130921"]["training"] == "已纳入"
    total = body["total"]
    assert (total["training_courses"], total["training_attendees"], total["training_passed"]) == (2, 3, 2)

    own = get(city_base, "/api/v1/reports/assessment", "county_officer", params={"year": 2026},
              county="130921").json()
    assert own["total"]["training_courses"] == 1  # a county's total leaves the city's courses out
