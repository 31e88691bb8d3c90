"""county filing service: filings, versions, reviews, decisions, batches, campaigns

Revision ID: f0001_filing
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "f0001_filing"
down_revision = None
branch_labels = ("filing",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
# kept literal: a migration must not change when the domain module does
OPEN_PREDICATE = "status IN ('submitted', 'returned', 'approved', 'forwarded', 'waiting')"


def upgrade() -> None:
    op.create_table(
        "filings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("county", sa.String(6), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("enterprise_name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("campaign_year", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("submitted_to_county_on", sa.Date, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("cqo_name", sa.String(100), nullable=False),
        sa.Column("cqo_id_masked", sa.String(40), nullable=False),
        sa.Column("approved_on", sa.Date),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("forwarded_at", TS),
        sa.Column("batch_id", sa.String(36)),
        sa.Column("decision_outcome", sa.String(16)),
        sa.Column("decided_at", TS),
        sa.Column("late", sa.Boolean),
        sa.Column("days_late", sa.Integer),
    )
    op.create_index("uq_filings_open_uscc", "filings", ["uscc"], unique=True,
                    postgresql_where=sa.text(OPEN_PREDICATE),
                    sqlite_where=sa.text(OPEN_PREDICATE))
    op.create_index("ix_filings_uscc", "filings", ["uscc", "status"])
    op.create_index("ix_filings_status", "filings", ["status", "channel", "campaign_year"])
    op.create_index("ix_filings_submitted", "filings", ["submitted_to_county_on"])
    op.create_index("ix_filings_batch", "filings", ["batch_id"])

    op.create_table(
        "filing_versions",
        sa.Column("filing_id", sa.String(36), sa.ForeignKey("filings.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("id_encrypted", sa.Text, nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("id_sealed", sa.Text, nullable=False),
        sa.Column("id_masked", sa.String(40), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("wire", sa.JSON),
    )
    op.create_index("ix_filing_versions_hmac", "filing_versions", ["id_hmac"])

    op.create_table(
        "filing_reviews",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("filing_id", sa.String(36), sa.ForeignKey("filings.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("reviewed_at", TS, nullable=False),
    )
    op.create_index("ix_filing_reviews_filing", "filing_reviews", ["filing_id"])

    op.create_table(
        "filing_decisions",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("filing_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("days_late", sa.Integer, nullable=False),
        sa.Column("deadline", sa.Date),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("message_id", sa.String(128)),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.UniqueConstraint("filing_id", "version", "outcome", name="uq_filing_decisions"),
    )

    op.create_table(
        "filing_batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("county", sa.String(6), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("campaign_years", sa.JSON, nullable=False),
    )

    op.create_table(
        "campaigns",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("notice_number", sa.String(100)),
        sa.Column("title", sa.String(300)),
        sa.Column("text", sa.Text),
        sa.Column("opens_on", sa.Date, nullable=False),
        sa.Column("closes_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
    op.drop_table("filing_batches")
    op.drop_table("filing_decisions")
    op.drop_index("ix_filing_reviews_filing", table_name="filing_reviews")
    op.drop_table("filing_reviews")
    op.drop_index("ix_filing_versions_hmac", table_name="filing_versions")
    op.drop_table("filing_versions")
    for name in ("ix_filings_batch", "ix_filings_submitted", "ix_filings_status",
                 "ix_filings_uscc", "uq_filings_open_uscc"):
        op.drop_index(name, table_name="filings")
    op.drop_table("filings")
