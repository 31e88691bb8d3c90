"""The experts designated before their contacts were announced (`talent.expert.*`,
docs/events.md): announced once, at the first start that knows how, so the notification
service hears of every expert and not only of those designated or re-consenting since.
Each expert's newest action is the announcement's revision, so a later change still
wins at the reader. Marked done in `pool_backfill` (name `expert_contacts`) in the same
transaction: it never runs again."""
from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from shared import clock
from shared.db import Database, insert_or_lock
from shared.keys import Keys
from shared.messaging import events as publishing
from shared.personal_data import IdCipher
from services.talent.pool.experts import contact_event
from services.talent.pool.models import Expert, ExpertAction, PoolBackfill

log = logging.getLogger(__name__)
NAME = "expert_contacts"


def announce_all(db: Database, cipher: IdCipher) -> int:
    """Announce every expert once; returns how many (0 once done)."""
    with db.unit_of_work() as uow:
        session, now = uow.session, clock.now_utc()
        state = insert_or_lock(session, PoolBackfill, "name", dict(
            name=NAME, after_id=0, received=0, started_at=now))[0]
        if state.completed_at is not None:
            return 0
        latest = dict(session.execute(select(ExpertAction.expert_id, func.max(ExpertAction.id))
                                      .group_by(ExpertAction.expert_id)).all())
        built = [contact_event(e, latest.get(e.id, 0), now, "talent.expert.updated", cipher)
                 for e in session.scalars(select(Expert).order_by(Expert.id))]
        if built:
            publishing.publish_built(uow, built)
        state.received, state.completed_at = len(built), now
        uow.commit()
    if built:
        log.info("announced the contacts of %d experts designated before", len(built))
    return len(built)


class ExpertContactsBackfill(DependencyProvider):
    """Runs `announce_all` when the container starts (after the database's setup); a
    failure is logged and tried again at the next start, never stopping this one."""

    def __init__(self, database_attr: str = "db"):
        self.database_attr = database_attr

    def start(self):
        (dependency,) = [d for d in self.container.dependencies if d.attr_name == self.database_attr]
        try:
            announce_all(dependency.database, Keys(dict(self.container.config)).id_cipher())
        except Exception:  # noqa: BLE001 - announcing old experts must not stop the service
            log.exception("announcing the experts' contacts failed; tried again at the next start")
