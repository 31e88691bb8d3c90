"""what a filing's trace needs at the city: per ledger row the message it came in, the
shovel that carried it and when (forward headers), and the message of its decision

Revision ID: r0012_filing_trace
Revises: r0011_certificate_issue_order
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "r0012_filing_trace"
down_revision = "r0011_certificate_issue_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: rows received before this revision have no trace beyond their own times
    with op.batch_alter_table("filing_ledger") as batch:
        batch.add_column(sa.Column("message_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("shovelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("shovel", sa.String(200), nullable=True))
        batch.add_column(sa.Column("decision_message_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("filing_ledger") as batch:
        for column in ("decision_message_id", "shovel", "shovelled_at", "message_id"):
            batch.drop_column(column)
