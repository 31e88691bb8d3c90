"""talent draws: draws, their members, the hash-chained audit log of draws

Revision ID: t0002_draws
Revises: t0001_pool
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "t0002_draws"
down_revision = "t0001_pool"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "draws",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("snapshot_hash", sa.String(64), nullable=False),
        sa.Column("eligible_count", sa.Integer, nullable=False),
        sa.Column("draw_order", sa.Text, nullable=False),
        sa.Column("panel", sa.Text, nullable=False),
        sa.Column("alternates", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("drawn_at", TS, nullable=False),
        sa.Column("drawn_by", sa.String(200), nullable=False),
        sa.Column("published_at", TS),
        sa.Column("published_by", sa.String(200)),
        sa.Column("parent_draw_id", sa.String(36), sa.ForeignKey("draws.id"), index=True),
        sa.Column("chain_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "draw_members",
        sa.Column("draw_id", sa.String(36), sa.ForeignKey("draws.id"), primary_key=True),
        sa.Column("expert_id", sa.String(36), sa.ForeignKey("experts.id"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("replaced_by", sa.String(36)),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "draw_chain",
        # assigned by the appender under the chain lock, never by a sequence: a gap or
        # a duplicate would be a fork
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("draw_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_draw_chain_draw", "draw_chain", ["draw_id", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        # a snapshot and an order of 20,000 ids are ~700 kB each: compressing them took
        # two thirds of a draw's write (bench/draw.py); ids barely compress anyway
        op.execute("ALTER TABLE draws ALTER COLUMN snapshot SET STORAGE EXTERNAL, "
                   "ALTER COLUMN draw_order SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("draw_chain")
    op.drop_table("draw_members")
    op.drop_table("draws")
