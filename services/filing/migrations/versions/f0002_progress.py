"""county filing service: campaign progress snapshots published to the city

Revision ID: f0002_progress
Revises: f0001_filing
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "f0002_progress"
down_revision = "f0001_filing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_progress",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON),
        sa.Column("as_of", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("campaign_progress")
