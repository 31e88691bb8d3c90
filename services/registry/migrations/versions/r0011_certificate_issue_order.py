"""the newest issue heard of per certificate, so that an issue taken after a newer
revocation still sets the result (services/registry/domain/certificates.py)

Revision ID: r0011_certificate_issue_order
Revises: r0010_recommendation_unanswered
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "r0011_certificate_issue_order"
down_revision = "r0010_recommendation_unanswered"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_certificates") as batch:
        batch.add_column(sa.Column("issue_event_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("issue_event_id", sa.String(200), nullable=True))
    # a certificate whose newest event is its issue: that issue is the newest one heard of
    op.execute("UPDATE training_certificates SET issue_event_at = event_at, issue_event_id = last_event_id "
               "WHERE revoked_on IS NULL AND course_kind IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("training_certificates") as batch:
        batch.drop_column("issue_event_id")
        batch.drop_column("issue_event_at")
