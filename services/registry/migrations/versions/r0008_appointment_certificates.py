"""the current appointments that hold a training certificate, found when it is revoked

Revision ID: r0008_appointment_certificates
Revises: r0007_certificates
Create Date: 2026-12-03
"""
from alembic import op

revision = "r0008_appointment_certificates"
down_revision = "r0007_certificates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_appointments_training_certificate", "appointments", ["training_certificate"])


def downgrade() -> None:
    op.drop_index("ix_appointments_training_certificate", "appointments")
