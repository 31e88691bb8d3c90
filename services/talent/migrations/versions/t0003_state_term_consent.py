"""talent draws: the expert's term and consent in the state history; exclusion counts

A draw now requires the expert's term to cover the draw's date and their recorded
consent to be contacted, so both become part of every recorded state
(services/talent/pool/history.py), including the rows written before. The term is
set at designation and never changed, so the expert's row gives it exactly. Consent
as of each state is taken from the expert's actions (designation, then each recorded
answer) at or before the state; the expert's current answer when no action says.

Revision ID: t0003_state_term_consent
Revises: t0002_draws
Create Date: 2026-12-03
"""
import json
from datetime import date, datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "t0003_state_term_consent"
down_revision = "t0002_draws"
branch_labels = None
depends_on = None

BATCH = 1000
# the notes pool/experts.py writes with a designation or a recorded answer
CONSENT_NOTES = {"同意联系": True, "未同意联系": False, "不同意联系": False}

experts = sa.table("experts", sa.column("id", sa.String), sa.column("term_start", sa.Date),
                   sa.column("term_end", sa.Date), sa.column("consent_to_contact", sa.Boolean))
actions = sa.table("expert_actions", sa.column("expert_id", sa.String),
                   sa.column("at", sa.DateTime(timezone=True)), sa.column("id", sa.BigInteger),
                   sa.column("action", sa.String), sa.column("note", sa.Text))
states = sa.table("expert_states", sa.column("seq", sa.BigInteger),
                  sa.column("expert_id", sa.String),
                  sa.column("at", sa.DateTime(timezone=True)), sa.column("state", sa.Text))


def _utc(value):
    if isinstance(value, str):  # SQLite without type coercion
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _day(value):
    return value.isoformat() if isinstance(value, date) else (str(value) if value else None)


def upgrade() -> None:
    op.add_column("draws", sa.Column("exclusions", sa.Text))
    conn = op.get_bind()
    facts = {row.id: row for row in conn.execute(sa.select(
        experts.c.id, experts.c.term_start, experts.c.term_end, experts.c.consent_to_contact))}
    answers: dict[str, list] = {}
    for row in conn.execute(sa.select(actions.c.expert_id, actions.c.at, actions.c.note)
                            .where(actions.c.action.in_(("designated", "consent")))
                            .order_by(actions.c.at, actions.c.id)):
        if row.note in CONSENT_NOTES:
            answers.setdefault(row.expert_id, []).append((_utc(row.at), CONSENT_NOTES[row.note]))
    after = -1
    while True:
        rows = conn.execute(sa.select(states.c.seq, states.c.expert_id, states.c.at, states.c.state)
                            .where(states.c.seq > after).order_by(states.c.seq).limit(BATCH)).all()
        if not rows:
            break
        after = rows[-1].seq
        updates = []
        for row in rows:
            state, expert = json.loads(row.state), facts.get(row.expert_id)
            if expert is None or "consent" in state:
                continue
            consent = bool(expert.consent_to_contact)
            at = _utc(row.at)
            for answered_at, answer in answers.get(row.expert_id, ()):
                if answered_at <= at:
                    consent = answer
            state.update(term_start=_day(expert.term_start), term_end=_day(expert.term_end),
                         consent=consent)
            updates.append({"b_seq": row.seq, "b_state": json.dumps(state, sort_keys=True)})
        if updates:
            conn.execute(states.update().where(states.c.seq == sa.bindparam("b_seq"))
                         .values(state=sa.bindparam("b_state")), updates)


def downgrade() -> None:
    with op.batch_alter_table("draws") as batch:  # SQLite rebuilds the table
        batch.drop_column("exclusions")
    # the added keys stay in the states: readers before this revision ignore them
