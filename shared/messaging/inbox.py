"""Inbox: a consumer records each message id in the same transaction as its effect.

    with db.unit_of_work() as uow:
        if Inbox.first_time(uow, "registry.intake", message.message_id):
            apply_effect(uow, body)
        uow.commit()

A duplicate delivery (relay retry, shovel retry, broker redelivery) finds the id and
skips the effect; a failed effect rolls the id back with it, so a retry is not skipped.
"""
from __future__ import annotations

from shared import clock
from shared.db import UnitOfWork, conflict_insert
from shared.messaging.models import InboxMessage


class Inbox:
    @staticmethod
    def first_time(uow: UnitOfWork, consumer: str, message_id: str) -> bool:
        """Insert (consumer, message_id); True if it was not there before.

        ON CONFLICT DO NOTHING: a concurrent duplicate waits for the first
        transaction on PostgreSQL and then sees the row, instead of failing.
        """
        if not message_id:
            raise ValueError("a message without message_id cannot be de-duplicated")
        stmt = (conflict_insert(uow.session)(InboxMessage)
                .values(consumer=consumer, message_id=str(message_id),
                        received_at=clock.now_utc())
                .on_conflict_do_nothing(index_elements=["consumer", "message_id"]))
        return uow.session.execute(stmt).rowcount == 1
