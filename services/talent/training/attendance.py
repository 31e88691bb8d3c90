"""Use cases of one course's attendance: record one person (the clear ID number arrives
here, is validated, hashed, encrypted and never answered), and list the attendance
masked."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared import clock
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, ValidationFailed
from shared.validators import ID_TYPE_NAMES
from services.talent.domain.training import check_attendance
from services.talent.training import courses
from services.talent.training.models import Attendance
from services.talent.training.recording import PersonKeys, Pending, Recorder


def attendance_out(a: Attendance) -> dict:
    return {"id": a.id, "course_id": a.course_id, "person_name": a.person_name, "id_type": a.id_type,
            "id_type_name": ID_TYPE_NAMES.get(a.id_type, a.id_type), "id_masked": a.id_masked,
            "uscc": a.uscc, "enterprise_name": a.enterprise_name, "passed": a.passed,
            "certificate_no": a.certificate_no, "issued_on": a.issued_on, "revision": a.revision,
            "recorded_at": clock.aware(a.recorded_at), "updated_at": clock.aware(a.updated_at)}


def certificate_conflict() -> Conflict:
    return Conflict("证书编号已被同时写入的另一条培训记录使用，请核对后重试",
                    code="TRAINING_CERTIFICATE_TAKEN")


def record(uow: UnitOfWork, principal: Principal, course_id: int, data: dict,
           keys: PersonKeys) -> tuple[dict, str]:
    """Record (or correct) one person's attendance; (the stored row, its outcome:
    inserted, updated or unchanged)."""
    course = courses.managed(uow, principal, course_id)
    row, problems = check_attendance(data, course_kind=course.kind, course_starts_on=course.starts_on,
                                     today=clock.today())
    if problems:
        first = next(iter(problems.values()))[0]
        raise ValidationFailed(first, code="TRAINING_ATTENDANCE_INVALID", details={"errors": problems})
    try:
        recorder = Recorder(uow, course, keys, principal.subject or principal.role)
        (written,) = recorder.write([Pending(0, row, keys.hmac(row))])
        if written.outcome is None:
            raise Conflict(written.reasons[0], code=written.code)
        stored = uow.session.get(Attendance, written.attendance_id)
        uow.commit()
    except IntegrityError:  # a certificate written by another request meanwhile
        raise certificate_conflict() from None
    return attendance_out(stored), written.outcome


def list_page(uow: UnitOfWork, principal: Principal, course_id: int, filters: dict) -> dict:
    course = courses.managed(uow, principal, course_id, lock=False)
    conditions = [Attendance.course_id == course.id]
    if filters.get("passed") is not None:
        conditions.append(Attendance.passed == filters["passed"])
    total = uow.session.execute(select(func.count()).select_from(Attendance).where(*conditions)).scalar_one()
    page, size = filters["page"], filters["page_size"]
    rows = uow.session.scalars(select(Attendance).where(*conditions).order_by(Attendance.id)
                               .offset((page - 1) * size).limit(size)).all()
    return {"total": total, "page": page, "page_size": size, "items": [attendance_out(a) for a in rows]}
