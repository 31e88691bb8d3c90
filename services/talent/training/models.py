"""Courses and attendance (art. 6, art. 15 教育培训)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.talent.models import BigIntPk, TalentBase


class Course(TalentBase):
    """A course: its kind (任职培训 / 基础培训 / 提升培训), who organised it (the city, or a
    county, then `county` is set), its dates, hours and capacity."""

    __tablename__ = "training_courses"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))             # city | county
    county: Mapped[str | None] = mapped_column(String(6), nullable=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    hours: Mapped[float] = mapped_column(Float)
    capacity: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Attendance(TalentBase):
    """One person on one course. The ID number is kept encrypted (`id_encrypted`), matched
    by `id_hmac` and shown as `id_masked`. `revision` counts the changes of the row: the
    certificate event of each revision has its own id (a replay is one event, a
    correction a new one)."""

    __tablename__ = "training_attendance"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id"))
    person_name: Mapped[str] = mapped_column(String(100))
    id_type: Mapped[str] = mapped_column(String(32))
    # looked up within a course only (uq_training_attendance_person); on PostgreSQL this
    # and certificate_no compare byte-wise (COLLATE "C", migration t0103): equality only
    id_hmac: Mapped[str] = mapped_column(String(64))
    id_encrypted: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(String(32))
    uscc: Mapped[str | None] = mapped_column(String(18), nullable=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    certificate_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("course_id", "id_hmac", name="uq_training_attendance_person"),
        UniqueConstraint("certificate_no", name="uq_training_attendance_certificate"),
    )


class Revocation(TalentBase):
    """A certificate withdrawn (art. 6): by an officer, or because its attendance was
    corrected from passed to failed (`cause`). Final: one per certificate number, never
    undone, and the number is never announced as issued again."""

    __tablename__ = "training_certificate_revocations"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    certificate_no: Mapped[str] = mapped_column(String(64))
    attendance_id: Mapped[int] = mapped_column(ForeignKey("training_attendance.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id"))
    id_hmac: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(String(32))      # officer | result_changed
    reason: Mapped[str] = mapped_column(String(500))
    revoked_on: Mapped[date] = mapped_column(Date)
    revoked_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("certificate_no", name="uq_training_certificate_revocations_no"),)
