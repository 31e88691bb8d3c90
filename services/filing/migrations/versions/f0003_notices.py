"""county filing service: the notices inbox (what the city announced to this county)

Revision ID: f0003_notices
Revises: f0002_progress
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "f0003_notices"
down_revision = "f0002_progress"
branch_labels = None
depends_on = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(128)),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("uscc", sa.String(18)),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("uq_notices_message_id", "notices", ["message_id"], unique=True)
    op.create_index("ix_notices_uscc", "notices", ["uscc", "received_at"])
    op.create_index("ix_notices_type", "notices", ["type", "received_at"])
    op.create_index("ix_notices_received", "notices", ["received_at"])


def downgrade() -> None:
    op.drop_table("notices")
