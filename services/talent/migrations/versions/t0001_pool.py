"""talent pool: members, city-level experts, declared conflicts, expert state history

Revision ID: t0001_pool
Revises:
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "t0001_pool"
down_revision = None
branch_labels = ("talent",)
depends_on = "s0001_messaging"

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pool_members",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("id_hmac", sa.String(64), nullable=False, index=True),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False, index=True),
        sa.Column("enterprise_name", sa.String(200)),
        sa.Column("county", sa.String(6), nullable=False, index=True),
        sa.Column("appointment_id", sa.BigInteger, unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("joined_on", sa.Date, nullable=False),
        sa.Column("left_on", sa.Date),
        sa.Column("nominated_by", sa.String(200)),
        sa.Column("nomination_reason", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "experts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("member_id", sa.BigInteger, sa.ForeignKey("pool_members.id")),
        sa.Column("id_hmac", sa.String(64), nullable=False, index=True),
        sa.Column("id_masked", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("county", sa.String(6), nullable=False, index=True),
        sa.Column("employer_uscc", sa.String(18), nullable=False, index=True),
        sa.Column("employer_name", sa.String(200)),
        sa.Column("expertise", sa.Text, nullable=False),
        sa.Column("term_start", sa.Date, nullable=False),
        sa.Column("term_end", sa.Date, nullable=False),
        sa.Column("phone_encrypted", sa.Text),
        sa.Column("phone_masked", sa.String(32)),
        sa.Column("email_encrypted", sa.Text),
        sa.Column("email_masked", sa.String(200)),
        sa.Column("consent_to_contact", sa.Boolean, nullable=False),
        sa.Column("consent_recorded_at", TS),
        sa.Column("consent_recorded_by", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suspensions", sa.Text, nullable=False, server_default="[]"),
        sa.Column("designated_at", TS, nullable=False),
        sa.Column("designated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "expert_conflicts",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("expert_id", sa.String(36), sa.ForeignKey("experts.id"), nullable=False, index=True),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("since", sa.Date, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("withdrawn_at", TS),
    )
    op.create_table(
        "expert_states",
        sa.Column("seq", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("expert_id", sa.String(36), sa.ForeignKey("experts.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_index("ix_expert_states_expert_at", "expert_states", ["expert_id", "at", "seq"])
    op.create_table(
        "pool_recommendations",
        sa.Column("recommendation_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("appointment_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_on", sa.Date),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_pool_recommendations_person", "pool_recommendations", ["uscc", "id_hmac"])
    op.create_table(
        "expert_actions",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("expert_id", sa.String(36), sa.ForeignKey("experts.id"), nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("code", sa.String(32)),
        sa.Column("ref", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_table(
        "pool_backfill",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("after_id", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("completed_at", TS),
    )


def downgrade() -> None:
    op.drop_table("pool_backfill")
    op.drop_table("pool_recommendations")
    op.drop_table("expert_actions")
    op.drop_table("expert_states")
    op.drop_table("expert_conflicts")
    op.drop_table("experts")
    op.drop_table("pool_members")
