"""talent training: attendance keys cheaper to maintain (PostgreSQL)

The index on `id_hmac` alone served no query: a person is looked up within a course,
by (course_id, id_hmac), which `uq_training_attendance_person` serves; certificates by
`certificate_no`. It cost every imported row one more index entry. The hash and the
certificate number are only ever compared for equality (and IN), so they are compared
byte-wise (COLLATE "C"): the same answers, and the unique keys are checked without the
database's locale collation.

Revision ID: t0103_attendance_keys
Revises: t0102_certificate_revocations
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "t0103_attendance_keys"
down_revision = "t0102_certificate_revocations"
branch_labels = None
depends_on = None

_KEYS = ("id_hmac", "certificate_no")


def upgrade() -> None:
    op.drop_index("ix_training_attendance_id_hmac", table_name="training_attendance")
    if op.get_bind().dialect.name == "postgresql":  # SQLite compares bytes already
        for column in _KEYS:  # the unique keys on these columns are rebuilt with them
            op.execute(f'ALTER TABLE training_attendance ALTER COLUMN {column} TYPE varchar(64) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in _KEYS:
            op.execute(f'ALTER TABLE training_attendance ALTER COLUMN {column} TYPE varchar(64) COLLATE "default"')
    op.create_index("ix_training_attendance_id_hmac", "training_attendance", ["id_hmac"])
