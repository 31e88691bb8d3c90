"""The appointments in the register now, page by page, for the talent pool's initial
fill (`RegistryService.current_appointments`, nameko RPC; docs/events.md).

Each item has the fields of a `register.appointment.accepted` event's data (the same
function builds both), dumped to JSON: an ID number never, only `id_hmac` and the masked
form. "Now" is the register's: not ended by a filing and not recorded as lapsed.
"""
from __future__ import annotations

from sqlalchemy import and_, select

from shared.contracts import events
from services.registry import announcements
from services.registry.models import Appointment, Enterprise, LedgerEntry

MAX_LIMIT = 1000
_accepted = events.TYPES[announcements.ACCEPTED][1]()


def current_appointments(session, after_id: int = 0, limit: int = MAX_LIMIT) -> dict:
    """{"items": [...], "next_after_id": id or None}: the appointments after `after_id`
    in id order; `next_after_id` is None on the last page."""
    after_id = max(int(after_id or 0), 0)
    limit = min(max(int(limit or MAX_LIMIT), 1), MAX_LIMIT)
    rows = session.execute(
        select(Appointment, Enterprise.name, Enterprise.county, LedgerEntry.kind)
        .join(Enterprise, Enterprise.uscc == Appointment.uscc)
        .outerjoin(LedgerEntry, and_(LedgerEntry.filing_id == Appointment.filing_id,
                                     LedgerEntry.version == Appointment.filing_version))
        .where(Appointment.id > after_id, Appointment.ended_on.is_(None),
               Appointment.lapsed_on.is_(None))
        .order_by(Appointment.id).limit(limit)).all()
    items = [_accepted.dump(announcements.appointment_accepted(
        appointment, county=county, enterprise_name=name, kind=kind or "establishment"))
        for appointment, name, county, kind in rows]
    return {"items": items,
            "next_after_id": rows[-1][0].id if len(rows) == limit else None}
