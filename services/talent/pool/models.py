"""The talent pool (人才库), city-level experts (市级质量专家), their declared conflicts,
and the history a draw is verified against."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.talent.models import BigIntPk, TalentBase


class PoolMember(TalentBase):
    """A CQO in the pool: joined from an accepted appointment (register events), or
    nominated by their county. Never deleted: leaving sets `left_on` and the status."""

    __tablename__ = "pool_members"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id_hmac: Mapped[str] = mapped_column(String(64), index=True)
    id_masked: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    county: Mapped[str] = mapped_column(String(6), index=True)
    appointment_id: Mapped[int | None] = mapped_column(BigIntPk, nullable=True, unique=True)
    source: Mapped[str] = mapped_column(String(16))          # appointment | nomination
    status: Mapped[str] = mapped_column(String(16))          # active | ended | lapsed
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    nominated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    nomination_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Expert(TalentBase):
    """A city-level quality expert. `suspensions` (JSON list of {code, ref, since}) holds
    every standing reason; the expert is suspended while it is not empty. Contact details
    are personal data: stored encrypted, shown masked."""

    __tablename__ = "experts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4, the draw's key
    member_id: Mapped[int | None] = mapped_column(ForeignKey("pool_members.id"), nullable=True)
    id_hmac: Mapped[str] = mapped_column(String(64), index=True)
    id_masked: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    county: Mapped[str] = mapped_column(String(6), index=True)
    employer_uscc: Mapped[str] = mapped_column(String(18), index=True)
    employer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    expertise: Mapped[str] = mapped_column(Text)  # JSON list of GB/T 4754 codes
    term_start: Mapped[date] = mapped_column(Date)
    term_end: Mapped[date] = mapped_column(Date)
    phone_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    email_masked: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_to_contact: Mapped[bool] = mapped_column(Boolean)
    consent_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # active | suspended | ended
    suspensions: Mapped[str] = mapped_column(Text, default="[]")
    designated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    designated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExpertConflict(TalentBase):
    """A conflict of interest an expert declared (art. 10 回避): with which enterprise,
    since when; recorded by an officer. Withdrawn, never deleted."""

    __tablename__ = "expert_conflicts"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"), index=True)
    uscc: Mapped[str] = mapped_column(String(18))
    since: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(200))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExpertState(TalentBase):
    """Append-only: what a draw needs to know of an expert (county, employer, expertise,
    suspended, conflicts, term, consent), written at every change. A draw is verified by rebuilding
    the pool as of its time from these rows (`history.pool_as_of`)."""

    __tablename__ = "expert_states"

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text)  # JSON, see history.state_of

    __table_args__ = (Index("ix_expert_states_expert_at", "expert_id", "at", "seq"),)


class PoolRecommendation(TalentBase):
    """The register's replacement recommendations (art. 10) as told by its events: an
    expert designated while one is open is suspended at once, and a recommendation
    whose "closed" arrived before its "issued" stays closed."""

    __tablename__ = "pool_recommendations"

    recommendation_id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=False)
    uscc: Mapped[str] = mapped_column(String(18))
    id_hmac: Mapped[str] = mapped_column(String(64))
    appointment_id: Mapped[int] = mapped_column(BigIntPk)
    status: Mapped[str] = mapped_column(String(16))  # open | withdrawn | closed | replaced
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_pool_recommendations_person", "uscc", "id_hmac"),)


class PoolBackfill(TalentBase):
    """The initial fill from the register's existing appointments: where it got to and
    when it finished (it runs once; docs/events.md)."""

    __tablename__ = "pool_backfill"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    after_id: Mapped[int] = mapped_column(BigIntPk, default=0)
    received: Mapped[int] = mapped_column(BigIntPk, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExpertAction(TalentBase):
    """Append-only: every suspension, reinstatement, consent and conflict of an expert,
    with its reason, who (an officer, or the register's event) and when."""

    __tablename__ = "expert_actions"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))  # designated, suspended, reinstated, ...
    code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
