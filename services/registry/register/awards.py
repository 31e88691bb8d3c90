"""The award check (art. 16): does the enterprise have an active filed CQO, and since when."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock
from shared.auth import Principal
from shared.db import UnitOfWork
from services.registry import active_cqo
from services.registry.domain import active_cqo as rules
from services.registry.models import Appointment
from services.registry.register.schemas import AwardCheckOut
from services.registry.enterprises import visible_enterprise


_award_out = AwardCheckOut()


def _fmt(day) -> str:
    return f"{day:%Y年%m月%d日}"


def _inactive_message(on, appointments: list[Appointment], lapsed_counts: bool) -> str:
    """Why there is no active CQO on `on`, from the latest appointment begun by then."""
    message = f"该企业在{_fmt(on)}没有在任的已备案首席质量官"
    last = max(appointments, key=lambda a: (a.appointed_on, a.id), default=None)
    if last is None:
        return message + "（此前未有首席质量官备案）"
    if last.ended_on is not None and last.ended_on <= on:
        return message + f"（原首席质量官已于{_fmt(last.ended_on)}离任）"
    if not lapsed_counts:
        return message + f"（首席质量官任期已于{_fmt(last.term_end)}届满，未办理续任备案）"
    return message


def award_check(uow: UnitOfWork, principal: Principal, uscc: str, on=None) -> dict:
    """Art. 16: does the enterprise have an active filed CQO on `on` (default today), and
    since when without a break (services/registry/domain/active_cqo.py)."""
    found = visible_enterprise(uow, principal, uscc)
    on = on or clock.today()
    lapsed_counts = active_cqo.lapsed_counts_policy()
    appointments = list(uow.session.scalars(select(Appointment).where(
        Appointment.uscc == found.uscc, Appointment.appointed_on <= on)))
    current = next(iter(rules.active_on(appointments, on, lapsed_counts=lapsed_counts)), None)
    since = rules.active_since(appointments, on, lapsed_counts=lapsed_counts)
    if current is None:
        message = _inactive_message(on, appointments, lapsed_counts)
    else:
        message = f"该企业自{_fmt(since)}起至{_fmt(on)}连续有在任的已备案首席质量官"
    return _award_out.dump({
        "uscc": found.uscc, "name": found.name, "on": on, "has_active_cqo": current is not None,
        "since": since, "cqo_name": current.cqo_name if current else None,
        "term_end": current.term_end if current else None,
        "lapsed_counts_as_coverage": lapsed_counts, "message": message})
