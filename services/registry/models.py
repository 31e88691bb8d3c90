"""The city register: enterprises, CQO appointments (history never overwritten), the
filing ledger and the audit trail."""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
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
    # art. 5: the first day without a term in force, set once by the term check
    # (terms.py) when term_end passed without renewal; the row stays as it was
    lapsed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_appointments_current", "uscc", "ended_on"),
                      Index("ix_appointments_history", "uscc", "appointed_on", "id"),
                      # a revoked certificate finds the appointments that hold it
                      Index("ix_appointments_training_certificate", "training_certificate"))


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
    uscc: Mapped[str] = mapped_column(String(18))
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
    # the filing's trace (shared/tracing.py): the message it came in (the county's id),
    # the shovel that carried it and when (forward headers), the message of its decision
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    shovelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shovel: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (
        UniqueConstraint("filing_id", "version", name="uq_ledger_filing_version"),
        Index("ix_ledger_county_received", "county", "received_at"),
        Index("ix_ledger_uscc_received", "uscc", "received_at", "id"),
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
    # the "closing in 7 days" reminder, once (r0009_campaign_closing)
    closing_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# -- campaign progress and the annual assessment (issue 4: progress.py, assessment.py) ----
# (schema: migrations/versions/r0005_progress.py)

class CountyProgress(RegistryBase):
    """The latest campaign-progress snapshot a county published (art. 13): its counts of
    the year's campaign filings by status, which only the county knows (待预审, 退回...)."""

    __tablename__ = "county_campaign_progress"

    county: Mapped[str] = mapped_column(String(6), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[str] = mapped_column(Text)  # JSON {status: number}
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- roster of above-scale enterprises and coverage (art. 4) --------------------------


class RosterEntry(RegistryBase):
    """One enterprise on the year's roster of above-scale enterprises (规上企业名录).

    The roster of a year says in which county an enterprise is counted that year: an
    enterprise that moved is on the new county's roster. Keyed by (year, uscc), the only
    index: the import (1,000,000 rows, bench/roster.py) pays for every index, and the
    coverage aggregate reads a whole year anyway. On PostgreSQL the table is partitioned
    by year (migration r0003_roster)."""

    __tablename__ = "roster_entries"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    county: Mapped[str] = mapped_column(String(6))
    category: Mapped[str] = mapped_column(String(32))
    contact_person: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RosterImport(RegistryBase):
    """Who imported which roster file, when, and what it changed (audit trail)."""

    __tablename__ = "roster_imports"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(16), nullable=True)
    years: Mapped[str] = mapped_column(String(200))
    total_rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    rejected_sample: Mapped[str] = mapped_column(Text, default="[]")  # JSON, first rows


# -- oversight (issue 4, arts. 5 and 10): term tracking, replacement recommendations ------
# (schema: migrations/versions/r0004_oversight.py; use cases: terms.py, recommendations.py,
#  overdue.py; Appointment.lapsed_on above belongs here too)

# the term check's lookup of terms ending soon (declared here, not in Appointment's
# __table_args__, so that this area's schema stays in one place)
Index("ix_appointments_term_end", Appointment.term_end)


class TermReminder(RegistryBase):
    """A term-expiry reminder raised for one appointment and threshold (90 / 30 days
    before `term_end`): the primary key makes it at most once."""

    __tablename__ = "term_reminders"

    appointment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("appointments.id"),
                                                primary_key=True, autoincrement=False)
    days: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    term_end: Mapped[date] = mapped_column(Date)
    as_of: Mapped[date] = mapped_column(Date)  # the day the check raised it for
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str] = mapped_column(String(64))


class Recommendation(RegistryBase):
    """A recommendation to replace an enterprise's CQO (建议撤换, art. 10): advice, not an
    order. `status` is stored (pending/answered/withdrawn/closed/replaced); 未响应 is a
    pending one past `respond_by`, computed as of a day."""

    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    county: Mapped[str] = mapped_column(String(6))  # the enterprise's county when issued
    appointment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("appointments.id"))
    cqo_name: Mapped[str] = mapped_column(String(100))
    incident: Mapped[str] = mapped_column(Text)
    incident_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    issuer_role: Mapped[str] = mapped_column(String(32))
    issuer_county: Mapped[str | None] = mapped_column(String(6), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    respond_by: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the latest answer
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    concluded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    concluded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    conclusion: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_by_filing_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # `register.recommendation.unanswered`, once (r0010_recommendation_unanswered)
    unanswered_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_recommendations_uscc_status", "uscc", "status"),
        Index("ix_recommendations_status_respond_by", "status", "respond_by"),
        Index("ix_recommendations_county", "county"),
    )


class RecommendationEvent(RegistryBase):
    """The history of one recommendation: issued, every answer, withdrawal or closing."""

    __tablename__ = "recommendation_events"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    recommendation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recommendations.id"),
                                                   index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    filing_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


# -- training certificates (art. 6), read from talent's events (issue 10) -------------
# (schema: migrations/versions/r0007_certificates.py)

class TrainingCertificate(RegistryBase):
    """The registry's read model of talent's certificates (`talent.certificate.*` on
    `registry.events`): what the art. 6 check reads inside a decision, instead of calling
    the talent service (docs/architecture.md, "The rules as the code reads them")."""

    __tablename__ = "training_certificates"

    certificate_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_hmac: Mapped[str] = mapped_column(String(64))
    course_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    revoked_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # newest event
    last_event_id: Mapped[str] = mapped_column(String(200))
    # the newest issue event applied: an older issue arriving after a revocation still
    # sets the result when it is newer than this (domain/certificates.py)
    issue_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    issue_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CertificateRecheck(RegistryBase):
    """An accepted filing whose certificate the read model did not know when it was
    decided (未核验): checked again when the certificate arrives, and said unknown after
    the grace period once talent has been heard from since. The result is added to the
    ledger row's findings; the county gets no new decision."""

    __tablename__ = "certificate_rechecks"

    filing_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    certificate_no: Mapped[str] = mapped_column(String(64), index=True)
    id_hmac: Mapped[str] = mapped_column(String(64))
    uscc: Mapped[str] = mapped_column(String(18))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    unknown_added: Mapped[bool] = mapped_column(Boolean, default=False)


def parsed(row, column: str) -> list[dict]:
    """A ledger row's `reasons` or `findings` as a list: as deciding made them (kept
    beside the text as `<column>_parsed`: not parsed back), or parsed from the text of a
    row read back. Not to be changed in place."""
    made = getattr(row, f"{column}_parsed", None)
    return made if made is not None else json.loads(getattr(row, column) or "[]")
