"""typical experiences (with attachments and their history) and benchmark CQOs (art. 17)

Revision ID: t0201_experiences
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "t0201_experiences"
down_revision = None
branch_labels = ("talent_experiences",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiences",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("county", sa.String(6), nullable=False, index=True),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("enterprise_name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("consented", sa.Boolean, nullable=False),
        sa.Column("consent_document_ref", sa.String(200)),
        sa.Column("consented_on", sa.Date),
        sa.Column("consent_recorded_by", sa.String(200)),
        sa.Column("consent_recorded_at", TS),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("review_comment", sa.Text),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("reviewed_at", TS),
        sa.Column("published_on", sa.Date, index=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "experience_attachments",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("experience_id", sa.BigInteger, sa.ForeignKey("experiences.id"), nullable=False,
                  index=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
    )
    op.create_table(
        "experience_events",
        sa.Column("seq", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("experience_id", sa.BigInteger, sa.ForeignKey("experiences.id"), nullable=False,
                  index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "benchmarks",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer, nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("enterprise_name", sa.String(200), nullable=False),
        sa.Column("county", sa.String(6), nullable=False),
        sa.Column("citation", sa.Text, nullable=False),
        sa.Column("designated_by", sa.String(200), nullable=False),
        sa.Column("designated_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS),
        sa.Column("withdrawn_by", sa.String(200)),
        sa.Column("withdrawal_reason", sa.Text),
    )


def downgrade() -> None:
    for table in ("benchmarks", "experience_events", "experience_attachments", "experiences"):
        op.drop_table(table)
