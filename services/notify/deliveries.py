"""The delivery log: every notice's deliveries with attempts, last error and when sent;
city officers see all, a county officer the notices concerning its county."""
from __future__ import annotations

from sqlalchemy import func, select, update

from shared import clock
from shared.auth import OFFICERS, Principal, county_scope
from shared.db import UnitOfWork
from shared.errors import NotFound
from services.notify.models import Delivery, Notice

READERS = OFFICERS


def view(d: Delivery, n: Notice) -> dict:
    return {"id": d.id, "notice_id": n.id, "event_id": n.event_id, "event_type": n.event_type,
            "recipient": n.recipient, "recipient_name": n.recipient_name, "county": n.county,
            "subject": n.subject, "channel": d.channel, "address_masked": d.address_masked,
            "status": d.status, "attempts": d.attempts, "next_attempt_at": clock.aware(d.next_attempt_at),
            "last_attempt_at": clock.aware(d.last_attempt_at), "last_error": d.last_error,
            "sent_at": clock.aware(d.sent_at), "provider_answer": d.provider_answer,
            "created_at": clock.aware(d.created_at)}


def listing(uow: UnitOfWork, principal: Principal, query: dict) -> dict:
    county = county_scope(principal, query.get("county"))
    where = []
    if county is not None:
        where.append(Notice.county == county)
    for key, column in (("status", Delivery.status), ("channel", Delivery.channel),
                        ("event_id", Notice.event_id)):
        if query.get(key):
            where.append(column == query[key])
    base = select(Delivery, Notice).join(Notice, Notice.id == Delivery.notice_id).where(*where)
    total = uow.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    page, size = query["page"], query["page_size"]
    rows = uow.session.execute(base.order_by(Delivery.id.desc()).offset((page - 1) * size).limit(size)).all()
    return {"total": total, "page": page, "page_size": size, "items": [view(d, n) for d, n in rows]}


def of_notice(uow: UnitOfWork, principal: Principal, notice_id: int) -> dict:
    principal.require_role(*READERS)
    notice = uow.session.get(Notice, notice_id)
    if notice is None or (principal.role == "county_officer" and notice.county != principal.county):
        raise NotFound("没有这条通知", code="NOTICE_NOT_FOUND")
    rows = uow.session.scalars(select(Delivery).where(Delivery.notice_id == notice_id).order_by(Delivery.id)).all()
    return {"notice_id": notice.id, "event_id": notice.event_id, "subject": notice.subject,
            "items": [view(d, notice) for d in rows]}


RETRYABLE = ("failed", "unknown")


def retry(uow: UnitOfWork, *, statuses=("failed",), since=None, now=None) -> int:
    """An operator's decision: deliveries that failed (or whose fate is unknown) are due
    again now. The row stays the same (one per notice and channel), so a success is still
    recorded once; for `unknown` the operator accepts that the recipient may get it twice
    (an SMS keeps its idempotency key, so the gateway itself drops a duplicate). Attempts
    keep counting: one that had used up its retries gets one more attempt."""
    statuses = tuple(statuses)
    if not statuses or set(statuses) - set(RETRYABLE):
        raise ValueError("statuses must be failed and/or unknown")
    now = now or clock.now_utc()
    where = [Delivery.status.in_(statuses)]
    if since is not None:
        where.append(Delivery.created_at >= since)
    done = uow.session.execute(update(Delivery).where(*where).values(
        status="pending", next_attempt_at=now))
    uow.commit()
    return done.rowcount
