"""Use cases: revoke a training certificate (art. 6). An officer revokes one over HTTP;
correcting an attendance from passed to failed revokes the certificate it held
(`recording.Recorder`). Either way the revocation is final (one per number, never
undone, the number never announced as issued again) and `talent.certificate.revoked` is
queued through the outbox in the same transaction (docs/events.md).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared import clock
from shared.auth import Principal
from shared.db import Database, insert_rows
from shared.errors import NotFound, ValidationFailed
from shared.messaging.events import publish_many
from services.talent.domain.training import OFFICER, REVOCATION_CAUSES, check_revocation, revocation_event_id
from services.talent.training import courses
from services.talent.training.models import Attendance, Course, Revocation

log = logging.getLogger(__name__)
CERTIFICATE_REVOKED = "talent.certificate.revoked"
_table = Revocation.__table__


@dataclass(frozen=True)
class Revoking:
    """A certificate about to be revoked: the attendance that holds it, and why."""

    certificate_no: str
    attendance_id: int
    id_hmac: str
    id_masked: str
    cause: str
    reason: str


def revoke_many(uow, course: Course, revoking: list[Revoking], actor: str, now: datetime) -> None:
    """Record the revocations of one course's certificates and queue their events, in the
    caller's unit of work (the course locked by the caller; none of the numbers revoked
    yet: the unique number refuses a second one)."""
    if not revoking:
        return
    today = clock.today()
    insert_rows(uow.session.connection(), _table, [
        {"certificate_no": r.certificate_no, "attendance_id": r.attendance_id, "course_id": course.id,
         "id_hmac": r.id_hmac, "cause": r.cause, "reason": r.reason, "revoked_on": today,
         "revoked_by": actor[:200], "revoked_at": now} for r in revoking])
    publish_many(uow, CERTIFICATE_REVOKED, [(r.certificate_no, {
        "certificate_no": r.certificate_no, "id_hmac": r.id_hmac, "id_masked": r.id_masked,
        "revoked_on": today, "reason": r.reason, "cause": r.cause, "course_id": course.id,
        "county": course.county}, revocation_event_id(r.certificate_no)) for r in revoking],
        source="talent", occurred_at=now)


def revoked_among(conn, numbers: list[str]) -> set[str]:
    """Which of `numbers` are revoked (one query per thousand)."""
    found: set[str] = set()
    for start in range(0, len(numbers), 1000):
        found.update(conn.execute(select(_table.c.certificate_no)
                                  .where(_table.c.certificate_no.in_(numbers[start:start + 1000]))).scalars())
    return found


def revocation_out(revocation: Revocation, attendance: Attendance) -> dict:
    return {"id": revocation.id, "certificate_no": revocation.certificate_no,
            "attendance_id": revocation.attendance_id, "course_id": revocation.course_id,
            "person_name": attendance.person_name, "id_masked": attendance.id_masked,
            "cause": revocation.cause, "cause_name": REVOCATION_CAUSES[revocation.cause],
            "reason": revocation.reason, "revoked_on": revocation.revoked_on,
            "revoked_by": revocation.revoked_by, "revoked_at": clock.aware(revocation.revoked_at)}


def _holder(uow, number: str) -> Attendance:
    attendance = uow.session.scalars(select(Attendance).where(Attendance.certificate_no == number)).first()
    if attendance is None:
        raise NotFound(f"证书编号“{number}”不存在", code="TRAINING_CERTIFICATE_NOT_FOUND")
    return attendance


def _existing(uow, number: str) -> Revocation | None:
    return uow.session.scalars(select(Revocation).where(Revocation.certificate_no == number)).first()


# a field the request schema refused (missing, not text): the same codes as the domain's
_FIELD_ERRORS = {"certificate_no": ("TRAINING_CERTIFICATE_NO_INVALID", "请以文本填写要撤销的证书编号"),
                 "reason": ("TRAINING_REVOCATION_REASON_INVALID", "请以文本填写撤销原因")}


def refused(messages) -> ValidationFailed | None:
    """The coded error of a request body the schema refused; None: neither field is
    at fault (an unknown field), the generic answer stands."""
    for name, (code, message) in _FIELD_ERRORS.items():
        if isinstance(messages, dict) and name in messages:
            return ValidationFailed(message, field=name, code=code)
    return None


def revoke(db: Database, principal: Principal, data: dict) -> tuple[dict, bool]:
    """An officer revokes a certificate: (the revocation, whether it is new). A repeated
    request answers the revocation as first recorded, whatever reason it gives. The city
    revokes any certificate, a county officer those of their own county's courses."""
    number, reason = check_revocation(data.get("certificate_no"), data.get("reason"))
    actor = principal.subject or principal.role
    with db.unit_of_work() as uow:
        attendance = _holder(uow, number)
        # the course locked: one writer of its attendance, so the number stays on this row
        course = courses.managed(uow, principal, attendance.course_id)
        uow.session.refresh(attendance)
        if attendance.certificate_no != number:  # corrected meanwhile, before the lock
            attendance = _holder(uow, number)
            course = courses.managed(uow, principal, attendance.course_id)
        found = _existing(uow, number)
        if found is not None:
            return revocation_out(found, attendance), False
        try:
            revoke_many(uow, course, [Revoking(number, attendance.id, attendance.id_hmac, attendance.id_masked,
                                               OFFICER, reason)], actor, clock.now_utc())
            uow.commit()
        except IntegrityError:  # revoked by a correction of another course meanwhile (cannot
            uow.rollback()      # be this one: it is locked); answer that revocation
            found = _existing(uow, number)
            if found is None:
                raise
            return revocation_out(found, _holder(uow, number)), False
        log.info("certificate %s revoked by %s (course %s)", number, actor, course.id)
        return revocation_out(_existing(uow, number), attendance), True
