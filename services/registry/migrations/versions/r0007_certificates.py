"""the read model of training certificates and the filings waiting for theirs (art. 6)

Revision ID: r0007_certificates
Revises: r0006_lookup_indexes
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "r0007_certificates"
down_revision = "r0006_lookup_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_certificates",
        sa.Column("certificate_no", sa.String(64), primary_key=True),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("course_kind", sa.String(32)),
        sa.Column("passed", sa.Boolean),
        sa.Column("issued_on", sa.Date),
        sa.Column("revoked_on", sa.Date),
        sa.Column("revoked_reason", sa.Text),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_certificates_event_at", "training_certificates", ["event_at"])
    op.create_table(
        "certificate_rechecks",
        sa.Column("filing_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("certificate_no", sa.String(64), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unknown_added", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_certificate_rechecks_certificate_no", "certificate_rechecks",
                    ["certificate_no"])
    op.create_index("ix_certificate_rechecks_due_at", "certificate_rechecks", ["due_at"])


def downgrade() -> None:
    op.drop_table("certificate_rechecks")
    op.drop_table("training_certificates")
