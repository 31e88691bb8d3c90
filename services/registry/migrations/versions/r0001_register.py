"""register: enterprises, appointments, filing ledger, audit

Revision ID: r0001_register
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "r0001_register"
down_revision = None
branch_labels = ("registry",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("county", sa.String(6), nullable=False, index=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "appointments",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("uscc", sa.String(18), sa.ForeignKey("enterprises.uscc"), nullable=False, index=True),
        sa.Column("filing_id", sa.String(36), nullable=False),
        sa.Column("filing_version", sa.Integer, nullable=False),
        sa.Column("cqo_name", sa.String(100), nullable=False),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False, index=True),
        sa.Column("id_encrypted", sa.Text, nullable=False),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.Column("email", sa.String(200)),
        sa.Column("position", sa.String(100), nullable=False),
        sa.Column("is_decision_level", sa.Boolean, nullable=False),
        sa.Column("education_level", sa.String(32)),
        sa.Column("title_level", sa.String(32)),
        sa.Column("years_quality_work", sa.Float, nullable=False),
        sa.Column("training_certificate", sa.String(100)),
        sa.Column("appointed_by", sa.String(100), nullable=False),
        sa.Column("appointed_by_top_manager", sa.Boolean, nullable=False),
        sa.Column("appointed_on", sa.Date, nullable=False),
        sa.Column("letter_number", sa.String(100), nullable=False),
        sa.Column("letter_date", sa.Date, nullable=False),
        sa.Column("letter_sha256", sa.String(64)),
        sa.Column("term_end", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("end_reason", sa.String(200)),
        sa.Column("ended_by_filing_id", sa.String(36)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_appointments_current", "appointments", ["uscc", "ended_on"])
    op.create_table(
        "filing_ledger",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("filing_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("campaign_year", sa.Integer),
        sa.Column("county", sa.String(6), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("submitted_to_county_on", sa.Date, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False, server_default="[]"),
        sa.Column("findings", sa.Text, nullable=False, server_default="[]"),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("days_late", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deadline", sa.Date),
        sa.Column("appointment_id", sa.BigInteger),
        sa.Column("payload", sa.Text),
        sa.UniqueConstraint("filing_id", "version", name="uq_ledger_filing_version"),
    )
    op.create_index("ix_ledger_county_received", "filing_ledger", ["county", "received_at"])
    op.create_index("ix_ledger_outcome", "filing_ledger", ["outcome"])
    op.create_table(
        "register_audit",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("uscc", sa.String(18), index=True),
        sa.Column("appointment_id", sa.BigInteger),
        sa.Column("filing_id", sa.String(36)),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    for table in ("register_audit", "filing_ledger", "appointments", "enterprises"):
        op.drop_table(table)
