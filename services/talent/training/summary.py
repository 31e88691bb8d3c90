"""Training per county for the assessment report (art. 16): courses that start in a
year, their attendees and how many passed. A county-level course counts for its
county, a city-level one under "city"."""
from __future__ import annotations

from sqlalchemy import case, func, select

from shared.db import Database
from shared.errors import ValidationFailed
from services.talent.domain.training import CITY_KEY
from services.talent.training.courses import year_of_start
from services.talent.training.models import Attendance, Course

MIN_YEAR, MAX_YEAR = 2000, 2100


def training_summary(db: Database, year) -> dict[str, dict[str, int]]:
    """{county or "city": {"courses": n, "attendees": n, "passed": n}}; counties without
    a course that year are absent."""
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed(f"年度应为{MIN_YEAR}到{MAX_YEAR}之间的整数", field="year",
                               code="TRAINING_YEAR")
    a = Attendance.__table__
    query = (select(Course.level, Course.county, func.count(func.distinct(Course.id)),
                    func.count(a.c.id), func.coalesce(func.sum(case((a.c.passed, 1), else_=0)), 0))
             .select_from(Course).outerjoin(a, a.c.course_id == Course.id)
             .where(*year_of_start(year)).group_by(Course.level, Course.county))
    summary: dict[str, dict[str, int]] = {}
    for level, county, courses, attendees, passed in db.read(lambda conn: conn.execute(query).all()):
        key = county if level == "county" else CITY_KEY
        entry = summary.setdefault(key, {"courses": 0, "attendees": 0, "passed": 0})
        entry["courses"] += int(courses)
        entry["attendees"] += int(attendees)
        entry["passed"] += int(passed)
    return summary
