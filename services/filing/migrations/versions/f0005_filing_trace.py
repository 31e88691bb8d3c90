"""county filing service: what a filing's trace needs at the county

`filing_versions.forward_message_id`: the outbox message that carried the version to the
city (its written and published times); `filing_decisions.shovelled_at` and `shovel`:
the shovel hop a decision came by (forward headers). A proactive filing's message id
is its own (`filing:<id>:v<version>`), so versions forwarded before this revision get
it back when their outbox row is there; a batch chunk's cannot be told afterwards.

Revision ID: f0005_filing_trace
Revises: f0004_withdrawing
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "f0005_filing_trace"
down_revision = "f0004_withdrawing"
branch_labels = None
depends_on = None

# services/filing/domain.py filing_message_id, in SQL (the colons bound: text() reads ":v" as a parameter)
OWN_ID = ":before || filing_versions.filing_id || :between || CAST(filing_versions.version AS VARCHAR)"


def upgrade() -> None:
    with op.batch_alter_table("filing_versions") as batch:
        batch.add_column(sa.Column("forward_message_id", sa.String(255), nullable=True))
    with op.batch_alter_table("filing_decisions") as batch:
        batch.add_column(sa.Column("shovelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("shovel", sa.String(200), nullable=True))
    op.execute(sa.text(f"UPDATE filing_versions SET forward_message_id = {OWN_ID} WHERE EXISTS "
                       f"(SELECT 1 FROM outbox_messages WHERE outbox_messages.message_id = {OWN_ID})")
               .bindparams(before="filing:", between=":v"))


def downgrade() -> None:
    with op.batch_alter_table("filing_decisions") as batch:
        batch.drop_column("shovel")
        batch.drop_column("shovelled_at")
    with op.batch_alter_table("filing_versions") as batch:
        batch.drop_column("forward_message_id")
