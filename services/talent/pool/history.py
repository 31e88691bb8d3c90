"""The pool as it was at any instant, for draws and their verification.

Every change to an expert that matters to a draw (county, employer, expertise,
suspension, conflicts, end of term) appends an `ExpertState` row in the same unit of
work (`record`). A draw takes `pool_as_of(now)`; its verification rebuilds
`pool_as_of(draw time)` from the same rows, so editing an expert afterwards changes
nothing about a past draw.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select

from shared import clock
from services.talent.domain.draw import PoolExpert
from services.talent.pool.models import Expert, ExpertConflict, ExpertState


def state_of(expert: Expert, conflicts: list[str]) -> dict:
    """The draw-relevant facts of an expert (JSON-ready, canonical order)."""
    return {"county": expert.county, "employer_uscc": expert.employer_uscc,
            "expertise": sorted(json.loads(expert.expertise or "[]")),
            "suspended": expert.status != "active", "conflicts": sorted(set(conflicts))}


def record(session, expert: Expert, at: datetime | None = None) -> ExpertState:
    """Append the expert's current state (call after every change, same unit of work)."""
    conflicts = session.scalars(select(ExpertConflict.uscc).where(
        ExpertConflict.expert_id == expert.id, ExpertConflict.withdrawn_at.is_(None))).all()
    row = ExpertState(expert_id=expert.id, at=at or clock.now_utc(),
                      state=json.dumps(state_of(expert, list(conflicts)), sort_keys=True))
    session.add(row)
    return row


def pool_as_of(session, at: datetime) -> list[PoolExpert]:
    """Every expert's last recorded state at or before `at`."""
    latest = (select(ExpertState.expert_id, func.max(ExpertState.seq).label("seq"))
              .where(ExpertState.at <= at).group_by(ExpertState.expert_id).subquery())
    rows = session.execute(select(ExpertState.expert_id, ExpertState.state)
                           .join(latest, ExpertState.seq == latest.c.seq)).all()
    pool = []
    for expert_id, text in rows:
        s = json.loads(text)
        pool.append(PoolExpert(expert_id=expert_id, county=s["county"],
                               employer_uscc=s["employer_uscc"],
                               expertise=frozenset(s["expertise"]), suspended=s["suspended"],
                               conflicts=frozenset(s["conflicts"])))
    pool.sort(key=lambda e: e.expert_id)
    return pool
