"""The in-app inbox of an enterprise (bound to its USCC by its token) or of a city-level
expert (bound to their expert id by theirs): each reads only its own."""
from __future__ import annotations

from sqlalchemy import func, select

from shared import clock
from shared.auth import EXPERT, Principal
from shared.db import UnitOfWork
from shared.errors import NotFound
from services.notify.models import InboxEntry, Notice


READERS = ("enterprise", EXPERT)


def owner(principal: Principal) -> str:
    principal.require_role(*READERS)
    if principal.role == EXPERT:
        return f"expert:{principal.expert_id}"
    return f"enterprise:{principal.uscc}"


def _entry(entry: InboxEntry, notice: Notice) -> dict:
    return {"id": entry.id, "event_type": notice.event_type, "subject": notice.subject,
            "body": notice.body_text, "created_at": clock.aware(entry.created_at),
            "read_at": clock.aware(entry.read_at)}


def unread(uow: UnitOfWork, recipient: str) -> int:
    return uow.session.scalar(select(func.count()).select_from(InboxEntry).where(
        InboxEntry.recipient == recipient, InboxEntry.read_at.is_(None))) or 0


def listing(uow: UnitOfWork, principal: Principal, query: dict) -> dict:
    recipient = owner(principal)
    where = [InboxEntry.recipient == recipient]
    if query.get("unread_only"):
        where.append(InboxEntry.read_at.is_(None))
    total = uow.session.scalar(select(func.count()).select_from(InboxEntry).where(*where)) or 0
    page, size = query["page"], query["page_size"]
    rows = uow.session.execute(
        select(InboxEntry, Notice).join(Notice, Notice.id == InboxEntry.notice_id).where(*where)
        .order_by(InboxEntry.id.desc()).offset((page - 1) * size).limit(size)).all()
    return {"total": total, "page": page, "page_size": size, "unread": unread(uow, recipient),
            "items": [_entry(e, n) for e, n in rows]}


def mark_read(uow: UnitOfWork, principal: Principal, entry_id: int) -> dict:
    recipient = owner(principal)
    row = uow.session.execute(select(InboxEntry, Notice).join(Notice, Notice.id == InboxEntry.notice_id)
                              .where(InboxEntry.id == entry_id, InboxEntry.recipient == recipient)).first()
    if row is None:  # another party's entry is as absent as a missing one
        raise NotFound("没有这条通知", code="INBOX_ENTRY_NOT_FOUND")
    entry, notice = row
    if entry.read_at is None:
        entry.read_at = clock.now_utc()
    uow.commit()
    return _entry(entry, notice)
