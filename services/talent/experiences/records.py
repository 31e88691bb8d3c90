"""What every use case of typical experiences needs: the experience in the caller's
scope, and a line in its history."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import NotFound
from services.talent.experiences.models import Experience, ExperienceEvent


def actor(principal: Principal) -> str:
    return principal.subject or principal.role


def not_found(experience_id: int) -> NotFound:
    return NotFound(f"未找到编号为 {experience_id} 的典型经验", code="EXPERIENCE_NOT_FOUND")


def load(uow: UnitOfWork, principal: Principal, experience_id: int, *, lock: bool = False) -> Experience:
    """The experience, when the caller may see it unpublished: its county's officers and
    the city's (403 AUTH_FORBIDDEN for another county, 404 when there is none)."""
    query = select(Experience).where(Experience.id == experience_id)
    if lock:  # one change at a time (the attachment count, the review)
        query = query.with_for_update()
    experience = uow.session.scalars(query).first()
    if experience is None:
        raise not_found(experience_id)
    principal.require_county(experience.county)
    return experience


def record(uow: UnitOfWork, experience: Experience, action: str, principal: Principal,
           comment: str | None = None) -> None:
    now = clock.now_utc()
    experience.updated_at = now
    uow.session.add(ExperienceEvent(experience_id=experience.id, action=action, comment=comment,
                                    actor=actor(principal), at=now))
