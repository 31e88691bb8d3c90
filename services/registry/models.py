"""The city register: enterprises, CQO appointments (history never overwritten), the
filing ledger and the audit trail."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


class RegistryBase(DeclarativeBase):
    pass


class Enterprise(RegistryBase):
    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    county: Mapped[str] = mapped_column(String(6), index=True)
    category: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Appointment(RegistryBase):
    """One CQO's tenure at one enterprise. Ended by setting ended_on/end_reason once;
    a change, renewal or end creates or closes rows, never rewrites them."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    filing_id: Mapped[str] = mapped_column(String(36))
    filing_version: Mapped[int] = mapped_column(Integer)
    cqo_name: Mapped[str] = mapped_column(String(100))
    id_type: Mapped[str] = mapped_column(String(32))
    id_hmac: Mapped[str] = mapped_column(String(64), index=True)
    id_encrypted: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    position: Mapped[str] = mapped_column(String(100))
    is_decision_level: Mapped[bool] = mapped_column(Boolean)
    education_level: Mapped[str | None] = mapped_column(String(32), nullable=True)
    title_level: Mapped[str | None] = mapped_column(String(32), nullable=True)
    years_quality_work: Mapped[float] = mapped_column(Float)
    training_certificate: Mapped[str | None] = mapped_column(String(100), nullable=True)
    appointed_by: Mapped[str] = mapped_column(String(100))
    appointed_by_top_manager: Mapped[bool] = mapped_column(Boolean)
    appointed_on: Mapped[date] = mapped_column(Date)
    letter_number: Mapped[str] = mapped_column(String(100))
    letter_date: Mapped[date] = mapped_column(Date)
    letter_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    term_end: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ended_by_filing_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_appointments_current", "uscc", "ended_on"),)


class LedgerEntry(RegistryBase):
    """Every filing version the city received, with its decision (备案台账)."""

    __tablename__ = "filing_ledger"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    filing_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    campaign_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    county: Mapped[str] = mapped_column(String(6))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    submitted_to_county_on: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    findings: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    days_late: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    appointment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # kept while waiting
    # set to a new Appointment before it has an id: the flush inserts the appointment
    # first and fills appointment_id, all in batches (no foreign key in the table)
    appointment: Mapped[Appointment | None] = relationship(
        primaryjoin="foreign(LedgerEntry.appointment_id) == Appointment.id", lazy="noload")

    __table_args__ = (
        UniqueConstraint("filing_id", "version", name="uq_ledger_filing_version"),
        Index("ix_ledger_county_received", "county", "received_at"),
        Index("ix_ledger_outcome", "outcome"),
    )


class AuditEntry(RegistryBase):
    """Who changed the register, when and why."""

    __tablename__ = "register_audit"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    uscc: Mapped[str | None] = mapped_column(String(18), nullable=True, index=True)
    appointment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filing_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    appointment: Mapped[Appointment | None] = relationship(
        primaryjoin="foreign(AuditEntry.appointment_id) == Appointment.id", lazy="noload")


class Campaign(RegistryBase):
    """The yearly filing campaign announced by the city's notice (art. 13)."""

    __tablename__ = "campaigns"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_number: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    notice_text: Mapped[str] = mapped_column(Text)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # open / closed
    opened_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
