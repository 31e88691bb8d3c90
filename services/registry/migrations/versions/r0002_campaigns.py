"""campaigns

Revision ID: r0002_campaigns
Revises: r0001_register
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "r0002_campaigns"
down_revision = "r0001_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("notice_number", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("notice_text", sa.Text, nullable=False),
        sa.Column("opens_on", sa.Date, nullable=False),
        sa.Column("closes_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
