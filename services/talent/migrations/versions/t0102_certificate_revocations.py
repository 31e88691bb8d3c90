"""talent training: certificates revoked (art. 6), final, one per certificate number

Revision ID: t0102_certificate_revocations
Revises: t0101_training
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "t0102_certificate_revocations"
down_revision = "t0101_training"
branch_labels = None
depends_on = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "training_certificate_revocations",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("certificate_no", sa.String(64), nullable=False),
        sa.Column("attendance_id", sa.BigInteger, sa.ForeignKey("training_attendance.id"), nullable=False),
        sa.Column("course_id", sa.BigInteger, sa.ForeignKey("training_courses.id"), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("revoked_on", sa.Date, nullable=False),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        # final: a number is revoked once (a repeated request finds it)
        sa.UniqueConstraint("certificate_no", name="uq_training_certificate_revocations_no"),
        sa.CheckConstraint("cause IN ('officer', 'result_changed')",
                           name="ck_training_certificate_revocations_cause"),
    )
    op.create_index("ix_training_certificate_revocations_attendance_id",
                    "training_certificate_revocations", ["attendance_id"])


def downgrade() -> None:
    op.drop_table("training_certificate_revocations")
