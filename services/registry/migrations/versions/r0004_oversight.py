"""oversight: term lapses and reminders (art. 5), replacement recommendations (art. 10)

Revision ID: r0004_oversight
Revises: r0003_roster
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "r0004_oversight"
down_revision = "r0003_roster"
branch_labels = None
depends_on = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # a nullable column without default: a plain ADD COLUMN on SQLite too
    op.add_column("appointments", sa.Column("lapsed_on", sa.Date))
    op.create_index("ix_appointments_term_end", "appointments", ["term_end"])

    op.create_table(
        "term_reminders",
        sa.Column("appointment_id", sa.BigInteger, sa.ForeignKey("appointments.id"),
                  primary_key=True, autoincrement=False),
        sa.Column("days", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("term_end", sa.Date, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_term_reminders_uscc", "term_reminders", ["uscc"])

    op.create_table(
        "recommendations",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("uscc", sa.String(18), sa.ForeignKey("enterprises.uscc"), nullable=False),
        sa.Column("county", sa.String(6), nullable=False),
        sa.Column("appointment_id", sa.BigInteger, sa.ForeignKey("appointments.id"), nullable=False),
        sa.Column("cqo_name", sa.String(100), nullable=False),
        sa.Column("incident", sa.Text, nullable=False),
        sa.Column("incident_on", sa.Date),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("issuer_role", sa.String(32), nullable=False),
        sa.Column("issuer_county", sa.String(6)),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("respond_by", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("answered_at", TS),
        sa.Column("answered_by", sa.String(200)),
        sa.Column("concluded_at", TS),
        sa.Column("concluded_by", sa.String(200)),
        sa.Column("conclusion", sa.Text),
        sa.Column("closed_by_filing_id", sa.String(36)),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_recommendations_uscc_status", "recommendations", ["uscc", "status"])
    op.create_index("ix_recommendations_status_respond_by", "recommendations",
                    ["status", "respond_by"])
    op.create_index("ix_recommendations_county", "recommendations", ["county"])

    op.create_table(
        "recommendation_events",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("recommendation_id", sa.BigInteger, sa.ForeignKey("recommendations.id"),
                  nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("filing_id", sa.String(36)),
    )
    op.create_index("ix_recommendation_events_recommendation_id", "recommendation_events",
                    ["recommendation_id"])


def downgrade() -> None:
    op.drop_table("recommendation_events")
    op.drop_table("recommendations")
    op.drop_table("term_reminders")
    op.drop_index("ix_appointments_term_end", table_name="appointments")
    with op.batch_alter_table("appointments") as batch:  # SQLite: DROP COLUMN via copy
        batch.drop_column("lapsed_on")
