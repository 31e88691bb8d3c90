"""The pool as it was at any instant, for draws and their verification: the one place
that says what "the pool as of T" is.

Every change to an expert that matters to a draw (county, employer, expertise,
suspension, conflicts, term, consent to be contacted) appends an `ExpertState` row in
the same unit of work (`record`). A draw takes the pool as of now (through
draws/pool_snapshot.py, which only caches what this module reads and parses); its
verification rebuilds `pool_as_of(draw time)` from the same rows, so editing an expert
afterwards changes nothing about a past draw.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import func, select

from shared import clock
from services.talent.domain.draw import PoolExpert
from services.talent.pool.models import Expert, ExpertConflict, ExpertState

STATES = ExpertState.__table__  # Core, not ORM: ORM row handling costs as much as the query


def state_of(expert: Expert, conflicts: list[str]) -> dict:
    """The draw-relevant facts of an expert (JSON-ready, canonical order)."""
    return {"county": expert.county, "employer_uscc": expert.employer_uscc,
            "expertise": sorted(json.loads(expert.expertise or "[]")),
            "suspended": expert.status != "active", "conflicts": sorted(set(conflicts)),
            "term_start": _day(expert.term_start), "term_end": _day(expert.term_end),
            "consent": bool(expert.consent_to_contact)}


def _day(value) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def record(session, expert: Expert, at: datetime | None = None) -> ExpertState:
    """Append the expert's current state (call after every change, same unit of work)."""
    conflicts = session.scalars(select(ExpertConflict.uscc).where(
        ExpertConflict.expert_id == expert.id, ExpertConflict.withdrawn_at.is_(None))).all()
    row = ExpertState(expert_id=expert.id, at=at or clock.now_utc(),
                      state=json.dumps(state_of(expert, list(conflicts)), sort_keys=True))
    session.add(row)
    return row


def expert_of(expert_id: str, text: str) -> PoolExpert:
    """One recorded state as a draw sees it."""
    s = json.loads(text)
    start, end = s.get("term_start"), s.get("term_end")
    return PoolExpert(expert_id=expert_id, county=s["county"], employer_uscc=s["employer_uscc"],
                      expertise=frozenset(s["expertise"]), suspended=s["suspended"],
                      conflicts=frozenset(s["conflicts"]),
                      term_start=date.fromisoformat(start) if start else None,
                      term_end=date.fromisoformat(end) if end else None,
                      consent=bool(s.get("consent", False)))


def latest_seqs(at: datetime):
    """(expert_id, seq) of every expert's last recorded state at or before `at`."""
    return (select(STATES.c.expert_id, func.max(STATES.c.seq).label("seq"))
            .where(STATES.c.at <= at).group_by(STATES.c.expert_id))


def state_rows(conn, at: datetime | None = None, seqs=None) -> list:
    """(seq, expert_id, state) of the latest states as of `at`, or of the given seqs."""
    query = select(STATES.c.seq, STATES.c.expert_id, STATES.c.state)
    if seqs is None:
        latest = latest_seqs(at).subquery()
        return conn.execute(query.join(latest, STATES.c.seq == latest.c.seq)).all()
    return conn.execute(query.where(STATES.c.seq.in_(seqs))).all()


def pool_as_of(session, at: datetime) -> list[PoolExpert]:
    """Every expert's last recorded state at or before `at`, by expert id."""
    pool = [expert_of(expert_id, text) for _, expert_id, text in
            state_rows(session.connection(), at)]
    pool.sort(key=lambda e: e.expert_id)
    return pool
