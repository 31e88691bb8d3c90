"""when the campaign's closing reminder (7 days before `closes_on`) was announced

Revision ID: r0009_campaign_closing
Revises: r0008_appointment_certificates
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "r0009_campaign_closing"
down_revision = "r0008_appointment_certificates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("closing_announced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("closing_announced_at")
