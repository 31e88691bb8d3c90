"""campaign progress snapshots of the counties

Revision ID: r0005_progress
Revises: r0004_oversight
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "r0005_progress"
down_revision = "r0004_oversight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "county_campaign_progress",
        sa.Column("county", sa.String(6), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(128)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("county_campaign_progress")
