"""outbox message ids up to the AMQP limit (255)

An answer's id is derived from the message it answers ("decisions:<received id>:<county>"),
and received ids are kept up to 128 characters (inbox_messages): 64 was too short, e.g. for
the city's answer to a withdrawal request ("decisions:withdraw:<uuid>:v1:<county>", 65),
which PostgreSQL refused, so the request was dead-lettered and never answered.

Revision ID: s0003_outbox_message_id_length
Revises: s0002_outbox_payload_storage
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "s0003_outbox_message_id_length"
down_revision = "s0002_outbox_payload_storage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("message_id", existing_type=sa.String(64), type_=sa.String(255),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("message_id", existing_type=sa.String(255), type_=sa.String(64),
                           existing_nullable=False)
