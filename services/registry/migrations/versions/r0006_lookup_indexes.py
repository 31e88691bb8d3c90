"""indexes in the order the enterprise lookup reads history and filings

GET /enterprises/{uscc} lists an enterprise's appointments newest first and its
filings newest first: with the sort keys in the index, PostgreSQL reads them in order
(a backward index scan) instead of sorting for every request. They replace the plain
uscc indexes, so writes maintain no more indexes than before.

Revision ID: r0006_lookup_indexes
Revises: r0005_progress
Create Date: 2026-11-25
"""
from alembic import op

revision = "r0006_lookup_indexes"
down_revision = "r0005_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # build first, drop after: reads keep an index while the new one is built (a
    # drop holds an exclusive lock until the end of the migration's transaction)
    op.create_index("ix_appointments_history", "appointments", ["uscc", "appointed_on", "id"])
    op.create_index("ix_ledger_uscc_received", "filing_ledger", ["uscc", "received_at", "id"])
    op.drop_index("ix_appointments_uscc", table_name="appointments")
    op.drop_index("ix_filing_ledger_uscc", table_name="filing_ledger")


def downgrade() -> None:
    op.drop_index("ix_ledger_uscc_received", table_name="filing_ledger")
    op.create_index("ix_filing_ledger_uscc", "filing_ledger", ["uscc"])
    op.drop_index("ix_appointments_history", table_name="appointments")
    op.create_index("ix_appointments_uscc", "appointments", ["uscc"])
