"""Publishing domain events (docs/events.md) through the caller's outbox.

An event is written in the same transaction as the change it announces, like every
other message (docs/architecture.md, "Outbox and inbox"); the event id is the message
id, on which consumers dedupe.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

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


def publish_many(uow: UnitOfWork, event_type: str,
                 items: Iterable[tuple[Any, Mapping[str, Any], str | None]], *, source: str,
                 county: str | None = None, occurred_at: datetime | None = None) -> list[dict]:
    """`publish` for many events of one type: (subject id, data, event id) each, built
    and checked by `events.build_many`, queued in one insert."""
    built = events.build_many(event_type, items, source=source, occurred_at=occurred_at)
    key = events.routing_key(event_type, county)
    Outbox.add_many(uow, topology.EVENTS.name, [(key, event, event["event_id"]) for event in built])
    return built


def publish_built(uow: UnitOfWork, built: list[dict], county: str | None = None) -> None:
    """Queue events already made with `events.build` (of any types), in one insert."""
    Outbox.add_many(uow, topology.EVENTS.name, [
        (events.routing_key(e["type"], county), e, e["event_id"]) for e in built])
