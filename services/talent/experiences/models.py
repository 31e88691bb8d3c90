"""Tables of typical experiences, their attachments and review history, and benchmark
CQOs. Nothing is deleted but an attachment the county removes before approval; a
withdrawn benchmark stays, marked."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from services.talent.models import BigIntPk, TalentBase


class Experience(TalentBase):
    """One county's typical experience of one of its enterprises."""

    __tablename__ = "experiences"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    county: Mapped[str] = mapped_column(String(6), index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)  # domain.experiences.STATUS_NAMES
    # the enterprise's consent to publication (art. 10), as the county recorded it
    consented: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_document_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consented_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    review_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExperienceAttachment(TalentBase):
    """An uploaded file, kept in the database (both backends, one backup) with the
    SHA-256 it had on arrival; the bytes are loaded only for a download."""

    __tablename__ = "experience_attachments"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    experience_id: Mapped[int] = mapped_column(ForeignKey("experiences.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExperienceEvent(TalentBase):
    """What happened to an experience: submitted, edited, consent recorded, attachment
    added or removed, each review action, with who and when."""

    __tablename__ = "experience_events"

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    experience_id: Mapped[int] = mapped_column(ForeignKey("experiences.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Benchmark(TalentBase):
    """A benchmark CQO designated by the city for a year; withdrawn, it stays, marked."""

    __tablename__ = "benchmarks"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(100))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(200))
    county: Mapped[str] = mapped_column(String(6))
    citation: Mapped[str] = mapped_column(Text)
    designated_by: Mapped[str] = mapped_column(String(200))
    designated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
