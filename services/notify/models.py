"""The notify service's tables: what each party was told (notices), how and whether it
reached them (deliveries), the in-app inbox, the offices' contacts, the enterprises'
contacts learned from their filings, the experts' contacts (with consent), and the
events already turned into notices."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


class NotifyBase(DeclarativeBase):
    pass


class Notice(NotifyBase):
    """One event told to one recipient, rendered once: the same words go to every
    channel (e-mail subject and bodies, SMS template parameters, inbox text).
    `recipient` is `enterprise:<uscc>`, `county:<code>`, `city` or `expert:<id>`."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    recipient_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    county: Mapped[str | None] = mapped_column(String(6), nullable=True, index=True)  # whose county
    template: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    sms_params: Mapped[str] = mapped_column(Text)  # JSON object
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("event_id", "recipient", name="uq_notice_event_recipient"),)


class Delivery(NotifyBase):
    """A notice on one channel (inbox | email | sms). One row per (notice, channel), so
    at most one success per (event, recipient, channel). The address is kept encrypted
    and shown masked. `status`: pending | sending | sent | failed | unknown | skipped."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))
    channel: Mapped[str] = mapped_column(String(8))
    address_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    address_masked: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("notice_id", "channel", name="uq_delivery_notice_channel"),
                      Index("ix_deliveries_due", "status", "next_attempt_at"))


class InboxEntry(NotifyBase):
    """A notice in a recipient's in-app inbox (enterprises, experts)."""

    __tablename__ = "inbox_entries"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), unique=True)
    recipient: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_inbox_recipient", "recipient", "read_at"),)


class OfficeContact(NotifyBase):
    """Who to tell at an office: the city bureau (`level` city, no county) or a county's
    market-supervision department. Kept by admins and officers over HTTP; a county
    officer keeps only its own county's. Office addresses are not personal data, but are
    still shown masked in listings of deliveries."""

    __tablename__ = "office_contacts"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(8))  # city | county
    county: Mapped[str | None] = mapped_column(String(6), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    person: Mapped[str | None] = mapped_column(String(50), nullable=True)  # 联系人
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnterpriseContact(NotifyBase):
    """An enterprise's contact as its newest filing gave it (learned from
    `register.filing.decided`), for the events that do not carry one. Phone and e-mail
    are encrypted; `as_of` is the event's instant (an older event never overwrites)."""

    __tablename__ = "enterprise_contacts"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    county: Mapped[str | None] = mapped_column(String(6), nullable=True)
    contact_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phone_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    email_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExpertContact(NotifyBase):
    """A city-level expert as the talent service last announced them
    (`talent.expert.designated|updated`): name, and phone and e-mail only while they
    consent to be contacted; a withdrawn consent erases both. Encrypted; `revision`
    (the talent service's order of the expert's changes) keeps an older announcement
    arriving late from overwriting a newer one."""

    __tablename__ = "expert_contacts"

    expert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    county: Mapped[str | None] = mapped_column(String(6), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    consent_to_contact: Mapped[bool] = mapped_column(Boolean)
    phone_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    email_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsumedEvent(NotifyBase):
    """Events already turned into notices, by event id (not by message id: the same
    event may come again alone or inside another batch). Event ids run to 200
    characters (the contract's limit), past the shared inbox's 128."""

    __tablename__ = "notify_consumed_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
