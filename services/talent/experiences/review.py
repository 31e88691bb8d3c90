"""The city reviews a county's typical experience: approves it, returns it with a comment,
publishes it (only with the enterprise's recorded consent) or takes it off the public list."""
from __future__ import annotations

from shared import clock
from shared.auth import CITY_WIDE, Principal
from shared.db import UnitOfWork
from services.talent.domain import experiences as rules
from services.talent.experiences import records


def review(uow: UnitOfWork, principal: Principal, experience_id: int, action: str,
           comment: str | None) -> None:
    principal.require_role(*CITY_WIDE)
    experience = records.load(uow, principal, experience_id, lock=True)
    experience.status = rules.review(experience.status, action, consented=experience.consented,
                                     comment=comment)
    if action == rules.PUBLISH:
        experience.published_on = clock.today()
    elif action == rules.UNPUBLISH:
        experience.published_on = None
    experience.review_comment = comment
    experience.reviewed_by = records.actor(principal)
    experience.reviewed_at = clock.now_utc()
    records.record(uow, experience, action, principal, comment)
    uow.commit()
