"""Publishing domain events (docs/events.md) through the caller's outbox.

An event is written in the same transaction as the change it announces, like every
other message (docs/architecture.md, "Outbox and inbox"); the event id is the message
id, on which consumers dedupe.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from shared.contracts import events
from shared.db import UnitOfWork
from shared.messaging import topology
from shared.messaging.outbox import Outbox


def publish(uow: UnitOfWork, event_type: str, subject_id: Any, data: Mapping[str, Any], *,
            source: str, county: str | None = None, occurred_at: datetime | None = None,
            event_id: str | None = None) -> dict:
    """Build, check and queue one event; returns it."""
    event = events.build(event_type, subject_id, data, source=source,
                         occurred_at=occurred_at, event_id=event_id)
    Outbox.add(uow, topology.EVENTS.name, events.routing_key(event_type, county), event,
               message_id=event["event_id"])
    return event


def publish_many(uow: UnitOfWork, built: list[dict], county: str | None = None) -> None:
    """Queue events already made with `events.build`, in one statement (intake's many)."""
    Outbox.add_many(uow, topology.EVENTS.name, [
        (e["event_id"], events.routing_key(e["type"], county), e) for e in built])
