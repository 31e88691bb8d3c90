"""messaging tables: outbox, inbox, dead letters

Revision ID: s0001_messaging
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "s0001_messaging"
down_revision = None
branch_labels = ("shared",)
depends_on = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("seq", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("exchange", sa.String(100), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_pending", "outbox_messages", ["sent_at", "next_attempt_at", "seq"])
    op.create_table(
        "inbox_messages",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(128)),
        sa.Column("exchange", sa.String(100)),
        sa.Column("routing_key", sa.String(255)),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error_reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("inbox_messages")
    op.drop_index("ix_outbox_pending", table_name="outbox_messages")
    op.drop_table("outbox_messages")
