"""talent training: courses and attendance (art. 6 任职培训, art. 15 教育培训)

Revision ID: t0101_training
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "t0101_training"
down_revision = None
branch_labels = ("talent_training",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "training_courses",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("county", sa.String(6)),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("hours", sa.Float, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("level IN ('city', 'county')", name="ck_training_courses_level"),
        sa.CheckConstraint("(level = 'county') = (county IS NOT NULL)", name="ck_training_courses_county"),
    )
    op.create_index("ix_training_courses_starts_on", "training_courses", ["starts_on"])
    op.create_index("ix_training_courses_county", "training_courses", ["county"])
    op.create_table(
        "training_attendance",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.BigInteger, sa.ForeignKey("training_courses.id"), nullable=False),
        sa.Column("person_name", sa.String(100), nullable=False),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("id_encrypted", sa.Text, nullable=False),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(18)),
        sa.Column("enterprise_name", sa.String(200)),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("certificate_no", sa.String(64)),
        sa.Column("issued_on", sa.Date),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        # re-importing a file finds its rows again by (course, person)
        sa.UniqueConstraint("course_id", "id_hmac", name="uq_training_attendance_person"),
        # NULLs never collide: only rows with a certificate are unique
        sa.UniqueConstraint("certificate_no", name="uq_training_attendance_certificate"),
    )
    op.create_index("ix_training_attendance_id_hmac", "training_attendance", ["id_hmac"])


def downgrade() -> None:
    op.drop_table("training_attendance")
    op.drop_table("training_courses")
