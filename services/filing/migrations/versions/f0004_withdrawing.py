"""county filing service: a filing whose withdrawal the city was asked for stays open

Status `withdrawing` (撤回申请中): the county asked the city to withdraw a filing that
waits there for its predecessor; until the city answers, the filing still blocks another
one of the same enterprise, so the partial unique index counts it as open.

Revision ID: f0004_withdrawing
Revises: f0003_notices
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = "f0004_withdrawing"
down_revision = "f0003_notices"
branch_labels = None
depends_on = None

# literal, not imported: a migration keeps the predicate of its own time
BEFORE = "status IN ('submitted', 'returned', 'approved', 'forwarded', 'waiting')"
OPEN_PREDICATE = "status IN ('submitted', 'returned', 'approved', 'forwarded', 'waiting', 'withdrawing')"


def _open_index(predicate: str) -> None:
    op.drop_index("uq_filings_open_uscc", table_name="filings")
    # no row is `withdrawing` before this revision, so the wider index builds on any data
    op.create_index("uq_filings_open_uscc", "filings", ["uscc"], unique=True,
                    postgresql_where=sa.text(predicate), sqlite_where=sa.text(predicate))


def upgrade() -> None:
    _open_index(OPEN_PREDICATE)


def downgrade() -> None:
    _open_index(BEFORE)
