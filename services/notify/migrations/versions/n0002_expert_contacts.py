"""notify: experts' contacts as the talent service announces them (only with consent);
the person to ask for at an office (联系人), for `cqo contacts import`

Revision ID: n0002_expert_contacts
Revises: n0001_notify
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "n0002_expert_contacts"
down_revision = "n0001_notify"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("office_contacts") as table:
        table.add_column(sa.Column("person", sa.String(50)))
    op.create_table(
        "expert_contacts",
        sa.Column("expert_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("county", sa.String(6)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consent_to_contact", sa.Boolean, nullable=False),
        sa.Column("phone_encrypted", sa.Text),
        sa.Column("email_encrypted", sa.Text),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("as_of", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("expert_contacts")
    with op.batch_alter_table("office_contacts") as table:
        table.drop_column("person")
