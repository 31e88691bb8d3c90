"""notify: notices, deliveries, inbox, office and enterprise contacts, consumed events

Revision ID: n0001_notify
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "n0001_notify"
down_revision = None
branch_labels = ("notify",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("recipient_name", sa.String(200)),
        sa.Column("county", sa.String(6), index=True),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("sms_params", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", "recipient", name="uq_notice_event_recipient"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("notice_id", sa.BigInteger, sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address_encrypted", sa.Text),
        sa.Column("address_masked", sa.String(200)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS),
        sa.Column("last_attempt_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", TS),
        sa.Column("provider_answer", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("notice_id", "channel", name="uq_delivery_notice_channel"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "inbox_entries",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("notice_id", sa.BigInteger, sa.ForeignKey("notices.id"), nullable=False, unique=True),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS),
    )
    op.create_index("ix_inbox_recipient", "inbox_entries", ["recipient", "read_at"])
    op.create_table(
        "office_contacts",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("county", sa.String(6), index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.Column("email", sa.String(200)),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "enterprise_contacts",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("enterprise_name", sa.String(200)),
        sa.Column("county", sa.String(6)),
        sa.Column("contact_name", sa.String(100)),
        sa.Column("phone_encrypted", sa.Text),
        sa.Column("email_encrypted", sa.Text),
        sa.Column("as_of", TS, nullable=False),
    )
    op.create_table(
        "notify_consumed_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("notify_consumed_events", "enterprise_contacts", "office_contacts",
                  "inbox_entries", "deliveries", "notices"):
        op.drop_table(table)
