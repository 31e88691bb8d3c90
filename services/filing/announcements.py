"""What a county's filing service announces on `cqo.events` (docs/events.md): a filing
returned to its enterprise at pre-review (`filing.<county>.returned`), written through
the county's outbox in the review's own transaction; the city's notify service tells
the enterprise."""
from __future__ import annotations

from shared.contracts import events
from shared.db import UnitOfWork
from shared.messaging.events import publish

SOURCE = "filing"
RETURNED = "filing.returned"


def filing_returned(uow: UnitOfWork, filing, version, *, comment: str | None, day, now) -> dict:
    """`version` is the returned FilingVersion: its form gives the contact (never the ID
    number, which the form does not hold)."""
    return publish(uow, RETURNED, f"{filing.id}/v{filing.version}", {
        "filing_id": filing.id, "version": filing.version, "county": filing.county,
        "uscc": filing.uscc, "enterprise_name": filing.enterprise_name, "comment": comment,
        "kind": filing.kind, "returned_on": day, **events.filing_contact(version.data)},
        source=SOURCE, county=filing.county, occurred_at=now,
        event_id=f"event:filing:{filing.id}:v{filing.version}:returned")
