"""What the register announces on `cqo.events` (docs/events.md): appointments accepted
and ended, filings decided. Gathered while a message's filings are applied and queued
in the outbox when they are written (`LockedRegister.flush`), because only then do new
appointments have their ids.
"""
from __future__ import annotations

import json

from shared.db import UnitOfWork
from shared.messaging.events import publish

SOURCE = "registry"
ACCEPTED = "register.appointment.accepted"
ENDED = "register.appointment.ended"
DECIDED = "register.filing.decided"


def appointment_accepted(appointment, *, county: str, enterprise_name: str, kind: str) -> dict:
    a = appointment
    return {"appointment_id": a.id, "uscc": a.uscc, "enterprise_name": enterprise_name,
            "county": county, "filing_id": a.filing_id, "filing_version": a.filing_version,
            "kind": kind, "cqo_name": a.cqo_name, "id_type": a.id_type, "id_hmac": a.id_hmac,
            "id_masked": a.id_masked, "appointed_on": a.appointed_on, "term_end": a.term_end,
            "training_certificate": a.training_certificate}


def appointment_ended(appointment, *, county: str) -> dict:
    a = appointment
    return {"appointment_id": a.id, "uscc": a.uscc, "county": county, "cqo_name": a.cqo_name,
            "id_hmac": a.id_hmac, "id_masked": a.id_masked, "ended_on": a.ended_on,
            "reason": a.end_reason, "by_filing_id": a.ended_by_filing_id}


def filing_decided(row, *, enterprise_name: str | None) -> dict:
    return {"filing_id": row.filing_id, "version": row.version, "county": row.county,
            "uscc": row.uscc, "enterprise_name": enterprise_name, "kind": row.kind,
            "outcome": row.outcome, "reasons": json.loads(row.reasons or "[]"),
            "late": row.late, "days_late": row.days_late, "appointment_id": row.appointment_id}


def publish_all(session, announced: list[tuple[str, object, dict]], now) -> None:
    """Queue one event per announcement; `announced` holds (type, row, facts) whose rows
    have been written (ids set)."""
    uow = UnitOfWork(session)
    for event_type, row, facts in announced:
        if event_type == ACCEPTED:
            publish(uow, ACCEPTED, row.id, appointment_accepted(row, **facts), source=SOURCE,
                    occurred_at=now, event_id=f"appointment:{row.id}:accepted")
        elif event_type == ENDED:
            publish(uow, ENDED, row.id, appointment_ended(row, **facts), source=SOURCE,
                    occurred_at=now, event_id=f"appointment:{row.id}:ended")
        else:
            publish(uow, DECIDED, f"{row.filing_id}/v{row.version}",
                    filing_decided(row, **facts), source=SOURCE, occurred_at=now,
                    event_id=f"filing:{row.filing_id}:v{row.version}:decided")
