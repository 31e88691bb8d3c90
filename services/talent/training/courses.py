"""Use cases of courses: create one, list a page, read one (art. 6, art. 15 教育培训).

Who may do what is the domain's (`may_manage`, `may_read`): the city manages every
course; a county officer creates only their own county's county-level courses and sees
those and the city's.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import case, false, func, or_, select

from shared import clock
from shared.auth import Principal
from shared.contracts import county_name, jurisdiction
from shared.db import UnitOfWork
from shared.errors import Forbidden, NotFound
from services.talent.domain.training import COURSE_KINDS, LEVELS, check_course, may_manage, may_read
from services.talent.training.models import Attendance, Course


def _forbidden(message: str) -> Forbidden:
    return Forbidden(message, code="AUTH_FORBIDDEN")


def course_out(course: Course, attendees: int = 0, passed: int = 0) -> dict:
    return {"id": course.id, "title": course.title, "kind": course.kind,
            "kind_name": COURSE_KINDS[course.kind], "level": course.level,
            "level_name": LEVELS[course.level], "county": course.county,
            "county_name": county_name(course.county) if course.county else None,
            "starts_on": course.starts_on, "ends_on": course.ends_on, "hours": course.hours,
            "capacity": course.capacity, "attendees": attendees, "passed": passed,
            "created_by": course.created_by, "created_at": clock.aware(course.created_at)}


def create(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    county = data.get("county")
    if county:
        county = jurisdiction().validate(county, field="county").code
    check_course(data["level"], county, data["starts_on"], data["ends_on"])
    if not may_manage(principal, data["level"], county):
        raise _forbidden("县级监管人员只能为本县（市、区）创建县级培训")
    course = Course(title=data["title"], kind=data["kind"], level=data["level"], county=county,
                    starts_on=data["starts_on"], ends_on=data["ends_on"], hours=data["hours"],
                    capacity=data["capacity"], created_by=(principal.subject or principal.role)[:200],
                    created_at=clock.now_utc())
    uow.session.add(course)
    uow.commit()
    return course_out(course)


def load(uow: UnitOfWork, course_id: int, *, for_update: bool = False) -> Course:
    query = select(Course).where(Course.id == course_id)
    course = uow.session.scalars(query.with_for_update() if for_update else query).first()
    if course is None:
        raise NotFound(f"培训课程 {course_id} 不存在", code="TRAINING_COURSE_NOT_FOUND")
    return course


def managed(uow: UnitOfWork, principal: Principal, course_id: int, *, lock: bool = True) -> Course:
    """The course when the principal manages it; `lock`: locked for writing its
    attendance (one writer per course: the capacity and re-imports stay exact)."""
    course = load(uow, course_id, for_update=lock)
    if not may_manage(principal, course.level, course.county):
        raise _forbidden("县级监管人员只能管理本县（市、区）的县级培训")
    return course


def year_of_start(year: int) -> list:
    """Courses that start in `year` (a range, so the index on starts_on serves)."""
    return [Course.starts_on >= date(year, 1, 1), Course.starts_on < date(year + 1, 1, 1)]


def _counts():
    a = Attendance.__table__
    return (select(a.c.course_id, func.count().label("attendees"),
                   func.sum(case((a.c.passed, 1), else_=0)).label("passed"))
            .group_by(a.c.course_id).subquery())


def get(uow: UnitOfWork, principal: Principal, course_id: int) -> dict:
    course = load(uow, course_id)
    if not may_read(principal, course.level, course.county):
        raise _forbidden("无权查看其他县（市、区）的培训")
    counts = _counts()
    found = uow.session.execute(select(counts.c.attendees, counts.c.passed)
                                .where(counts.c.course_id == course_id)).first()
    return course_out(course, *(int(v or 0) for v in (found or (0, 0))))


def list_page(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    conditions = []
    if not principal.city_wide:  # a county officer: the city's courses and their own county's
        conditions.append(or_(Course.level == "city", Course.county == principal.county)
                          if principal.role == "county_officer" else false())
    for name in ("kind", "level", "county"):
        if filters.get(name):
            conditions.append(getattr(Course, name) == filters[name])
    if filters.get("year"):
        conditions += year_of_start(filters["year"])
    total = uow.session.execute(select(func.count()).select_from(Course).where(*conditions)).scalar_one()
    page, size = filters["page"], filters["page_size"]
    counts = _counts()
    rows = uow.session.execute(
        select(Course, counts.c.attendees, counts.c.passed)
        .outerjoin(counts, counts.c.course_id == Course.id).where(*conditions)
        .order_by(Course.starts_on.desc(), Course.id.desc())
        .offset((page - 1) * size).limit(size)).all()
    return {"total": total, "page": page, "page_size": size,
            "items": [course_out(c, int(n or 0), int(p or 0)) for c, n, p in rows]}
