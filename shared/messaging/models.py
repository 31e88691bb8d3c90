"""Tables every service has: the outbox, the inbox and the dead-letter record.

They live in each service's own database (one transaction with the business rows);
the schema is created by the `shared` Alembic branch that every service applies.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigIntPk = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class MessagingBase(DeclarativeBase):
    pass


class OutboxMessage(MessagingBase):
    __tablename__ = "outbox_messages"

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    # the AMQP limit: an answer's id embeds the id of the message it answers
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    exchange: Mapped[str] = mapped_column(String(100))
    routing_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)  # JSON text
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON text
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_outbox_pending", "sent_at", "next_attempt_at", "seq"),)


class InboxMessage(MessagingBase):
    __tablename__ = "inbox_messages"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeadLetter(MessagingBase):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    exchange: Mapped[str | None] = mapped_column(String(100), nullable=True)
    routing_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_code: Mapped[str] = mapped_column(String(64))
    error_reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
