"""City-level experts written straight into the talent database (models + history), for
tests of what is built on the pool (draws) without going through the pool's API."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta

from shared import clock
from services.talent.pool import history
from services.talent.pool.models import Expert, ExpertConflict
from tests.support.factories import uscc_for

PHONE_MASKED = "138****0042"
EMAIL_MASKED = "z***@example.cn"
TERM = (date(2026, 1, 1), date(2028, 12, 31))


def add_expert(session, n: int, *, county: str = "130921", employer: str | None = None,
               expertise=("13",), status: str = "active", conflicts=(),
               at: datetime | None = None, term: tuple[date, date] = TERM,
               consent: bool = True) -> Expert:
    """Expert number `n` and its state in the history (as of `at`, default a minute ago
    so that a draw made now sees it)."""
    at = at or clock.now_utc() - timedelta(minutes=1)
    expert = Expert(
        id=str(uuid.UUID(int=n + 1)), id_hmac=f"{n:064x}", id_masked="130921********123X",
        name=f"专家{n:03d}", county=county, employer_uscc=employer or uscc_for(county, 5000 + n),
        employer_name=f"企业{n}", expertise=json.dumps(sorted(expertise)),
        term_start=term[0], term_end=term[1], phone_masked=PHONE_MASKED,
        # no ciphertext: a consent recorded later announces the contact, and "enc" would not decrypt
        phone_encrypted=None, email_masked=EMAIL_MASKED, email_encrypted=None,
        consent_to_contact=consent, status=status,
        suspensions=json.dumps([{"code": "appointment_ended"}] if status == "suspended" else []),
        designated_at=at, designated_by="test", updated_at=at)
    session.add(expert)
    session.flush()
    for uscc in conflicts:
        session.add(ExpertConflict(expert_id=expert.id, uscc=uscc, since=date(2026, 1, 1),
                                   recorded_at=at, recorded_by="test"))
    session.flush()
    history.record(session, expert, at)
    return expert


def add_experts(db, count: int, start: int = 0, **kw) -> list[str]:
    with db.unit_of_work() as uow:
        ids = [add_expert(uow.session, n, **kw).id for n in range(start, start + count)]
        uow.commit()
    return ids
