"""outbox payloads stored uncompressed (PostgreSQL)

A batch chunk is several hundred kilobytes of JSON; PostgreSQL's default pglz
compression of such values cost more than writing them (and the relay pays again to
decompress). Outbox rows are short-lived, so they are kept out of line, uncompressed.

Revision ID: s0002_outbox_payload_storage
Revises: s0001_messaging
Create Date: 2026-11-25
"""
from alembic import op

revision = "s0002_outbox_payload_storage"
down_revision = "s0001_messaging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox_messages ALTER COLUMN payload SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox_messages ALTER COLUMN payload SET STORAGE EXTENDED")
