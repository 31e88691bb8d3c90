"""when a recommendation's lapse of its response period unanswered was announced

Revision ID: r0010_recommendation_unanswered
Revises: r0009_campaign_closing
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "r0010_recommendation_unanswered"
down_revision = "r0009_campaign_closing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recommendations", sa.Column("unanswered_announced_at", sa.DateTime(timezone=True),
                                               nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_column("unanswered_announced_at")
