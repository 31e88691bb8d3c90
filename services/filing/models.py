"""Tables of one county's filing service (schema: migrations/versions/f0001_filing.py).

The clear ID number exists only as `filing_versions.id_encrypted` (Fernet, the
county's key); everything that leaves the county carries `id_hmac`, `id_sealed`
and `id_masked`.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index,
                        Integer, String, Text, UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.filing.domain import OPEN_STATUSES

BigIntPk = BigInteger().with_variant(Integer(), "sqlite")
OPEN_PREDICATE = "status IN (%s)" % ", ".join(f"'{s}'" for s in OPEN_STATUSES)


class FilingBase(DeclarativeBase):
    pass


class Filing(FilingBase):
    """A filing (its identity across versions) with its current state."""

    __tablename__ = "filings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    county: Mapped[str] = mapped_column(String(6))
    uscc: Mapped[str] = mapped_column(String(18))
    enterprise_name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    campaign_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    submitted_to_county_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    cqo_name: Mapped[str] = mapped_column(String(100))
    cqo_id_masked: Mapped[str] = mapped_column(String(40))
    approved_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    forwarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # the city's latest decision on the current version (history: filing_decisions)
    decision_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    late: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    days_late: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        # one open filing per enterprise, enforced by the database as well: two
        # concurrent submissions cannot both get through
        Index("uq_filings_open_uscc", "uscc", unique=True,
              postgresql_where=text(OPEN_PREDICATE), sqlite_where=text(OPEN_PREDICATE)),
        Index("ix_filings_uscc", "uscc", "status"),
        Index("ix_filings_status", "status", "channel", "campaign_year"),
        Index("ix_filings_submitted", "submitted_to_county_on"),
        Index("ix_filings_batch", "batch_id"),
    )


class FilingVersion(FilingBase):
    """What the enterprise submitted, one row per (corrected) submission."""

    __tablename__ = "filing_versions"

    filing_id: Mapped[str] = mapped_column(String(36), ForeignKey("filings.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str] = mapped_column(String(200))
    # the intake form as JSON, without the ID number
    data: Mapped[dict] = mapped_column(JSON)
    id_type: Mapped[str] = mapped_column(String(32))
    id_encrypted: Mapped[str] = mapped_column(Text)
    id_hmac: Mapped[str] = mapped_column(String(64))
    id_sealed: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(String(40))
    findings: Mapped[list] = mapped_column(JSON)
    # the FilingMessageSchema body, fixed when the county approves this version
    wire: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # the outbox message that carried this version to the city (a filing's own, or its
    # batch chunk's): its written and published times are the version's trace
    forward_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("ix_filing_versions_hmac", "id_hmac"),)


class Review(FilingBase):
    __tablename__ = "filing_reviews"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    filing_id: Mapped[str] = mapped_column(String(36), ForeignKey("filings.id"))
    version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_filing_reviews_filing", "filing_id"),)


class Decision(FilingBase):
    """Every decision the city sent, applied or not (no foreign key on purpose: a
    decision about a filing this county does not know is kept, not lost)."""

    __tablename__ = "filing_decisions"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    filing_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list] = mapped_column(JSON)
    findings: Mapped[list] = mapped_column(JSON)
    late: Mapped[bool] = mapped_column(Boolean)
    days_late: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    applied: Mapped[bool] = mapped_column(Boolean)
    # the shovel that brought the decision from the city, and when (forward headers)
    shovelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shovel: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        UniqueConstraint("filing_id", "version", "outcome", name="uq_filing_decisions"),
    )


class Batch(FilingBase):
    """A batch submission (集中报送) by the county."""

    __tablename__ = "filing_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    county: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    campaign_years: Mapped[list] = mapped_column(JSON)


class Campaign(FilingBase):
    """The city's annual campaign (art. 13), as announced on filing.<county>.notices."""

    __tablename__ = "campaigns"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    notice_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title: Mapped[str | None] = mapped_column(String(300), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- campaign progress (art. 13): the snapshot last published to the city -----------------
# (schema: migrations/versions/f0002_progress.py; written by services/filing/progress.py)

class ProgressSnapshot(FilingBase):
    """The counts of this county's filings of one campaign year, as last published on
    filing.<county>.progress; `seq` numbers the snapshots (message id progress:<county>:<year>:<seq>)."""

    __tablename__ = "campaign_progress"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# -- notices inbox (issue 4): what the city announced to this county -----------------------
# (schema: migrations/versions/f0003_notices.py; kept by inbound.py, shown by views.py)

class Notice(FilingBase):
    """Every notice the city sent on filing.<county>.notices — campaigns, replacement
    recommendations, term reminders and lapses, and types this county does not know yet
    — kept as received. `audience`: all (officers and every enterprise), enterprise
    (officers and the enterprise `uscc`), officers (county officers only)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16))
    uscc: Mapped[str | None] = mapped_column(String(18), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_notices_message_id", "message_id", unique=True),
        Index("ix_notices_uscc", "uscc", "received_at"),
        Index("ix_notices_type", "type", "received_at"),
        Index("ix_notices_received", "received_at"),
    )
