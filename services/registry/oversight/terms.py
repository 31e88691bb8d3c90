"""Use cases: CQO terms (art. 5) — lapses and the 90/30-day reminders.

The term check runs from a timer (RegistryService, TERM_CHECK_INTERVAL_S) and is
idempotent, so running it often, or in two registry processes at once, is harmless:

- an appointment still in force (not ended) whose `term_end` has passed gets
  `lapsed_on = term_end + 1 day`, once (conditional update), with an audit entry and a
  `term.lapsed` notice; nothing else of the row changes (it is history). A renewal (续任)
  already ended the old appointment and created a new one, so a renewed term never lapses.
- 90 and 30 days before `term_end` a `term.expiring` reminder is raised, at most once per
  appointment and threshold (`term_reminders` primary key, insert-if-absent).

Notices go through the outbox on `cqo.notices` to the enterprise's county
(`notice.<county>`), and events on `cqo.events` (`register.appointment.lapsed`,
`.expiring`) for the notify service, in the same transaction as the change they announce. Each
enterprise is handled in its own short transaction with its row locked first, in the
same order intake locks (enterprise, then its appointments): the check never holds a
lock intake waits for longer than one enterprise takes, and cannot deadlock with it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from shared import clock
from shared.auth import Principal
from shared.contracts import county_name
from shared.db import Database, UnitOfWork, conflict_insert
from shared.messaging import topology
from shared.messaging.outbox import Outbox
from services.registry.counties import county_scope
from services.registry.domain import oversight as rules
from services.registry import announcements
from services.registry.models import Appointment, AuditEntry, Enterprise, TermReminder

log = logging.getLogger(__name__)
ACTOR = "registry.terms"
IN_CHUNK = 500


@dataclass(frozen=True)
class OversightSettings:
    """Settings of terms and recommendations, from the registry's config."""

    reminder_days: tuple[int, ...] = rules.DEFAULT_REMINDER_DAYS
    response_days: int | None = None  # None: one calendar month
    check_interval_s: float = 3600.0

    @classmethod
    def from_config(cls, config) -> "OversightSettings":
        interval = float(config.get("TERM_CHECK_INTERVAL_S") or 3600)
        if not 0.1 <= interval <= 7 * 86400:
            raise ValueError("TERM_CHECK_INTERVAL_S must be between 0.1 and 604800 seconds")
        return cls(reminder_days=rules.parse_thresholds(config.get("TERM_REMINDER_DAYS")),
                   response_days=rules.parse_response_days(config.get("RECOMMENDATION_RESPONSE_DAYS")),
                   check_interval_s=interval)


def notice_routing_key(county: str) -> str:
    return f"notice.{county}"


def announce(uow: UnitOfWork, county: str, payload: dict, message_id: str) -> None:
    """A notice to one county's filing service (and through it, the enterprise)."""
    Outbox.add(uow, topology.NOTICES.name, notice_routing_key(county), payload,
               message_id=message_id)


def _lock_enterprise(session, uscc: str) -> Enterprise | None:
    query = select(Enterprise).where(Enterprise.uscc == uscc)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _fmt(day: date) -> str:
    return f"{day:%Y年%m月%d日}"


# -- the check -----------------------------------------------------------------------------

def check_terms(db: Database, as_of: date | None = None, *,
                thresholds: tuple[int, ...] = rules.DEFAULT_REMINDER_DAYS,
                now: datetime | None = None) -> dict:
    """Mark lapsed terms and raise due reminders as of `as_of` (default: today in
    Asia/Shanghai). Returns what it did: {"as_of", "candidates", "lapsed",
    "reminders": {"90": n, "30": n}}."""
    as_of = as_of or clock.today()
    now = now or clock.now_utc()
    horizon = as_of + timedelta(days=max(thresholds))
    with db.unit_of_work() as uow:  # what might need doing: one read, no locks
        candidates = uow.session.execute(
            select(Appointment.id, Appointment.uscc, Appointment.term_end)
            .where(Appointment.ended_on.is_(None), Appointment.lapsed_on.is_(None),
                   Appointment.term_end <= horizon)
            .order_by(Appointment.uscc, Appointment.id)).all()
        raised: dict[int, set[int]] = {}
        ids = [c.id for c in candidates]
        for start in range(0, len(ids), IN_CHUNK):
            for appointment_id, days in uow.session.execute(
                    select(TermReminder.appointment_id, TermReminder.days)
                    .where(TermReminder.appointment_id.in_(ids[start:start + IN_CHUNK]))):
                raised.setdefault(appointment_id, set()).add(days)
    stats = {"as_of": as_of.isoformat(), "candidates": len(candidates), "lapsed": 0,
             "reminders": {str(t): 0 for t in thresholds}}
    for appointment_id, uscc, term_end in candidates:
        if rules.is_lapsed(term_end, as_of):
            with db.unit_of_work() as uow:
                if mark_lapsed(uow, appointment_id, uscc, as_of, now):
                    stats["lapsed"] += 1
                uow.commit()
            continue
        due = rules.reminder_due(term_end, as_of, thresholds, raised.get(appointment_id, ()))
        if due is not None:
            with db.unit_of_work() as uow:
                if raise_reminder(uow, appointment_id, uscc, due, as_of, now):
                    stats["reminders"][str(due)] += 1
                uow.commit()
    if stats["lapsed"] or any(stats["reminders"].values()):
        log.info("term check as of %s: %s", as_of, stats)
    return stats


def _current(session, appointment_id: int) -> Appointment | None:
    """The appointment if it is still in force and not yet marked lapsed (read after
    the enterprise lock: a change or renewal decided meanwhile has ended it)."""
    appointment = session.scalars(select(Appointment).where(Appointment.id == appointment_id)
                                  .execution_options(populate_existing=True)).first()
    if appointment is None or appointment.ended_on is not None or appointment.lapsed_on is not None:
        return None
    return appointment


def mark_lapsed(uow: UnitOfWork, appointment_id: int, uscc: str, as_of: date,
                now: datetime) -> bool:
    """Mark one appointment lapsed and announce it; False if there was nothing to do."""
    session = uow.session
    enterprise = _lock_enterprise(session, uscc)
    appointment = _current(session, appointment_id)
    if enterprise is None or appointment is None or not rules.is_lapsed(appointment.term_end, as_of):
        return False
    lapsed = rules.lapsed_on(appointment.term_end)
    changed = session.execute(
        update(Appointment).where(Appointment.id == appointment_id, Appointment.ended_on.is_(None),
                                  Appointment.lapsed_on.is_(None))
        .values(lapsed_on=lapsed).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        return False
    session.add(AuditEntry(
        at=now, actor=ACTOR, action="appointment.lapsed", uscc=uscc, appointment_id=appointment_id,
        filing_id=appointment.filing_id,
        detail=json.dumps({"term_end": appointment.term_end.isoformat(),
                           "lapsed_on": lapsed.isoformat(), "checked_as_of": as_of.isoformat()},
                          ensure_ascii=False)))
    announce(uow, enterprise.county, {
        "type": "term.lapsed", "county": enterprise.county, "uscc": uscc,
        "enterprise_name": enterprise.name, "appointment_id": appointment_id,
        "cqo_name": appointment.cqo_name, "appointed_on": appointment.appointed_on.isoformat(),
        "term_end": appointment.term_end.isoformat(), "lapsed_on": lapsed.isoformat(),
        "title": "首席质量官任期已届满",
        "message": (f"{enterprise.name}：首席质量官{appointment.cqo_name}的任期已于"
                    f"{_fmt(appointment.term_end)}届满，未办理续任备案（第五条）。"
                    "请尽快办理续任备案，或任命新的首席质量官并办理变更备案。"),
    }, message_id=f"term:{appointment_id}:lapsed")
    announcements.appointment_lapsed(uow, appointment, county=enterprise.county,
                                     lapsed_on=lapsed, now=now, enterprise_name=enterprise.name)
    return True


def raise_reminder(uow: UnitOfWork, appointment_id: int, uscc: str, days: int, as_of: date,
                   now: datetime) -> bool:
    """Raise the `days`-before-the-end reminder once; False if it was raised before."""
    session = uow.session
    enterprise = _lock_enterprise(session, uscc)
    appointment = _current(session, appointment_id)
    if enterprise is None or appointment is None or rules.is_lapsed(appointment.term_end, as_of):
        return False
    message_id = f"term:{appointment_id}:expiring:{days}"
    inserted = session.execute(
        conflict_insert(session)(TermReminder).values(
            appointment_id=appointment_id, days=days, uscc=uscc, term_end=appointment.term_end,
            as_of=as_of, raised_at=now, message_id=message_id)
        .on_conflict_do_nothing()).rowcount
    if inserted != 1:
        return False
    left = rules.days_left(appointment.term_end, as_of)
    announce(uow, enterprise.county, {
        "type": "term.expiring", "county": enterprise.county, "uscc": uscc,
        "enterprise_name": enterprise.name, "appointment_id": appointment_id,
        "cqo_name": appointment.cqo_name, "appointed_on": appointment.appointed_on.isoformat(),
        "term_end": appointment.term_end.isoformat(), "days": days, "days_left": left,
        "title": "首席质量官任期即将届满",
        "message": (f"{enterprise.name}：首席质量官{appointment.cqo_name}的任期将于"
                    f"{_fmt(appointment.term_end)}届满（还有{left}天）。首席质量官任期一般为三年"
                    "（第五条），请在届满前办理续任备案，或任命新的首席质量官并办理变更备案。"),
    }, message_id=message_id)
    announcements.appointment_expiring(uow, appointment, county=enterprise.county, enterprise_name=enterprise.name,
                                       days=days, days_left=left, now=now)
    return True


# -- reading -------------------------------------------------------------------------------

TERM_STATUS_NAMES = {"expiring": "即将届满", "lapsed": "已届满未续任"}


def list_terms(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    """Terms in force ending within `within_days` of `as_of` (expiring) and terms that
    have passed their end without renewal (lapsed, as of `as_of`), scoped to the caller."""
    as_of = filters.get("as_of") or clock.today()
    county = county_scope(principal, filters.get("county"))
    in_force = or_(Appointment.ended_on.is_(None), Appointment.ended_on > as_of)
    expiring = and_(Appointment.term_end >= as_of,
                    Appointment.term_end <= as_of + timedelta(days=filters["within_days"]))
    lapsed = Appointment.term_end < as_of
    status = filters.get("status")
    condition = {"expiring": expiring, "lapsed": lapsed}.get(status, or_(expiring, lapsed))
    query = (select(Appointment, Enterprise.name, Enterprise.county)
             .join(Enterprise, Enterprise.uscc == Appointment.uscc)
             .where(in_force, Appointment.appointed_on <= as_of, condition))
    if county is not None:
        query = query.where(Enterprise.county == county)
    if filters.get("uscc"):
        query = query.where(Appointment.uscc == filters["uscc"])
    session = uow.session
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page, page_size = filters["page"], filters["page_size"]
    rows = session.execute(query.order_by(Appointment.term_end, Appointment.id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    reminders: dict[int, list[int]] = {}
    ids = [r[0].id for r in rows]
    if ids:
        for appointment_id, days in session.execute(
                select(TermReminder.appointment_id, TermReminder.days)
                .where(TermReminder.appointment_id.in_(ids)).order_by(TermReminder.days.desc())):
            reminders.setdefault(appointment_id, []).append(days)
    items = []
    for appointment, name, code in rows:
        state = "lapsed" if rules.is_lapsed(appointment.term_end, as_of) else "expiring"
        items.append({
            "appointment_id": appointment.id, "uscc": appointment.uscc, "enterprise_name": name,
            "county": code, "county_name": county_name(code), "cqo_name": appointment.cqo_name,
            "appointed_on": appointment.appointed_on, "term_end": appointment.term_end,
            "days_left": rules.days_left(appointment.term_end, as_of), "status": state,
            "status_name": TERM_STATUS_NAMES[state], "lapsed_on": appointment.lapsed_on,
            "reminders": reminders.get(appointment.id, [])})
    return {"as_of": as_of, "items": items, "total": total, "page": page, "page_size": page_size}
