"""Use cases: recommendations to replace a CQO (建议撤换, art. 10).

Advice, not orders (docs/architecture.md): a county officer (for an enterprise of its own
county) or a city officer issues one for the enterprise's current CQO, naming the
incident and the reason; it is announced to the enterprise's county (and through the
county's notices, to the enterprise) on `cqo.notices` / `notice.<county>`. The
enterprise answers with its own token; only the issuer withdraws or closes it (the
issuing county's officers for a county's, city officers for the city's; an admin may,
as the operator's override, audited as one); an accepted change filing closes it as
已更换 (intake calls `close_for_filing` in its own transaction). A pending recommendation past its response
period shows as 未响应 — computed as of a day, never stored; the oversight timer announces
it once (`check_unanswered`: `register.recommendation.unanswered` for the notify service).

Every step is one transaction: the recommendation, its event history, the register's
audit trail and the outbox notice commit together.
"""
from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select, update

from shared import clock
from shared.auth import OFFICERS, Principal
from shared.contracts import county_name
from shared.db import Database, UnitOfWork
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.validators.uscc import validate_uscc
from services.registry.domain import oversight as rules
from services.registry import announcements
from services.registry.models import (Appointment, AuditEntry, Enterprise, Recommendation,
                                      RecommendationEvent)
from services.registry.oversight.schemas import RecommendationOut, RecommendationPageOut
from services.registry.oversight.terms import announce

log = logging.getLogger(__name__)
_out = RecommendationOut()
_page_out = RecommendationPageOut()
CITY_ISSUER_NAME = "市市场监督管理局"


# -- helpers ------------------------------------------------------------------------------

def issuer_name(issuer_role: str, issuer_county: str | None) -> str:
    if issuer_role == "county_officer" and issuer_county:
        return f"{county_name(issuer_county)}市场监督管理局"
    return CITY_ISSUER_NAME


def _not_found(rec_id) -> NotFound:
    return NotFound(f"未找到编号为 {rec_id} 的撤换建议", code="RECOMMENDATION_NOT_FOUND")


def _enterprise_not_found(uscc: str) -> NotFound:
    # as GET /enterprises/{uscc}: an enterprise outside the caller's scope is not found
    return NotFound(f"未找到统一社会信用代码为 {uscc} 的企业备案信息", code="ENTERPRISE_NOT_FOUND")


def _lock(session, model, key_column, key):
    query = select(model).where(key_column == key)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _visible(principal: Principal, rec: Recommendation, enterprise_county: str | None) -> bool:
    if principal.city_wide:
        return True
    if principal.role == "county_officer":
        return principal.county in (enterprise_county, rec.county, rec.issuer_county)
    return principal.role == "enterprise" and principal.uscc == rec.uscc


def _event(session, rec: Recommendation, now: datetime, actor: str, action: str,
           text: str | None = None, filing_id: str | None = None) -> RecommendationEvent:
    event = RecommendationEvent(recommendation_id=rec.id, at=now, actor=actor, action=action,
                                text=text, filing_id=filing_id)
    session.add(event)
    return event


def _audit(session, rec: Recommendation, now: datetime, actor: str, action: str,
           detail: dict, filing_id: str | None = None) -> None:
    session.add(AuditEntry(at=now, actor=actor, action=f"recommendation.{action}", uscc=rec.uscc,
                           appointment_id=rec.appointment_id, filing_id=filing_id,
                           detail=json.dumps({"recommendation_id": rec.id, **detail},
                                             ensure_ascii=False, default=str)))


def _fmt(day: date) -> str:
    return f"{day:%Y年%m月%d日}"


def _summary(rec: Recommendation, as_of: date) -> dict:
    """What a notice carries about the recommendation (no personal ID data)."""
    status = rules.effective_status(rec.status, rec.respond_by, as_of)
    return {"id": rec.id, "cqo_name": rec.cqo_name, "incident": rec.incident,
            "incident_on": rec.incident_on.isoformat() if rec.incident_on else None,
            "reason": rec.reason, "issuer_name": issuer_name(rec.issuer_role, rec.issuer_county),
            "issued_on": rec.issued_on.isoformat(), "respond_by": rec.respond_by.isoformat(),
            "status": status, "status_name": rules.STATUS_NAMES[status],
            "answer": rec.answer, "conclusion": rec.conclusion}


def _notify(uow: UnitOfWork, rec: Recommendation, enterprise: Enterprise, kind: str,
            title: str, message: str, message_id: str, as_of: date) -> None:
    announce(uow, enterprise.county, {
        "type": f"recommendation.{kind}", "county": enterprise.county, "uscc": rec.uscc,
        "enterprise_name": enterprise.name, "recommendation": _summary(rec, as_of),
        "title": title, "message": message}, message_id=message_id)


def _view(rec: Recommendation, enterprise: Enterprise | None, as_of: date,
          events: list[RecommendationEvent] | None = None) -> dict:
    status = rules.effective_status(rec.status, rec.respond_by, as_of)
    view = {c.key: clock.aware(getattr(rec, c.key)) for c in Recommendation.__table__.columns}
    view.update({
        "enterprise_name": enterprise.name if enterprise else None,
        "enterprise_county": enterprise.county if enterprise else rec.county,
        "county_name": county_name(rec.county),
        "issuer_name": issuer_name(rec.issuer_role, rec.issuer_county),
        "stored_status": rec.status, "status": status, "status_name": rules.STATUS_NAMES[status],
        "open": rules.is_open(rec.status), "as_of": as_of,
        "days_overdue": (as_of - rec.respond_by).days if status == rules.UNANSWERED else 0,
    })
    if events is not None:
        view["events"] = [{"at": clock.aware(e.at), "actor": e.actor, "action": e.action,
                           "action_name": rules.ACTION_NAMES.get(e.action, e.action),
                           "text": e.text, "filing_id": e.filing_id} for e in events]
    return view


def _load(session, principal: Principal, rec_id: int, *, lock: bool = False
          ) -> tuple[Recommendation, Enterprise]:
    rec = session.get(Recommendation, rec_id)
    if rec is None:
        raise _not_found(rec_id)
    enterprise = (_lock(session, Enterprise, Enterprise.uscc, rec.uscc) if lock
                  else session.get(Enterprise, rec.uscc))
    if lock:  # re-read under the enterprise lock: intake may have closed it meanwhile
        rec = session.scalars(select(Recommendation).where(Recommendation.id == rec_id)
                              .execution_options(populate_existing=True)).one()
    if not _visible(principal, rec, enterprise.county if enterprise else None):
        raise _not_found(rec_id)
    return rec, enterprise


def _events(session, rec_id: int) -> list[RecommendationEvent]:
    return list(session.scalars(select(RecommendationEvent)
                                .where(RecommendationEvent.recommendation_id == rec_id)
                                .order_by(RecommendationEvent.at, RecommendationEvent.id)))


def _require_open(rec: Recommendation, doing: str) -> None:
    if not rules.is_open(rec.status):
        raise Conflict(f"该撤换建议已{rules.STATUS_NAMES[rec.status]}，不能再{doing}",
                       code="RECOMMENDATION_CONCLUDED")


# -- use cases ----------------------------------------------------------------------------

def issue(uow: UnitOfWork, principal: Principal, data: dict, *,
          response_days: int | None = None, today: date | None = None) -> dict:
    """A county officer (own county) or a city officer recommends replacing the
    enterprise's current CQO."""
    principal.require_role(*OFFICERS)
    today = today or clock.today()
    session, now = uow.session, clock.now_utc()
    uscc = validate_uscc(data["uscc"], field="uscc")
    if data.get("incident_on") and data["incident_on"] > today:
        raise ValidationFailed("事件发生日期不能晚于今天", field="incident_on",
                               code="INCIDENT_DATE_FUTURE")
    enterprise = _lock(session, Enterprise, Enterprise.uscc, uscc)
    if enterprise is None or not principal.can_access_enterprise(uscc, enterprise.county):
        raise _enterprise_not_found(uscc)
    current = session.scalars(select(Appointment).where(
        Appointment.uscc == uscc, Appointment.ended_on.is_(None))
        .order_by(Appointment.id.desc()).limit(1)).first()
    if current is None:
        raise Conflict("该企业目前没有在任的已备案首席质量官，无法提出撤换建议", code="NO_CURRENT_CQO")
    existing = session.scalars(select(Recommendation).where(
        Recommendation.uscc == uscc, Recommendation.appointment_id == current.id,
        Recommendation.status.in_(rules.OPEN_STATUSES)).limit(1)).first()
    if existing is not None:
        raise Conflict(f"已有针对首席质量官{current.cqo_name}的撤换建议尚未办结（编号 {existing.id}），"
                       "请在原建议中处理", code="RECOMMENDATION_OPEN",
                       details={"recommendation_id": existing.id})
    rec = Recommendation(
        uscc=uscc, county=enterprise.county, appointment_id=current.id, cqo_name=current.cqo_name,
        incident=data["incident"], incident_on=data.get("incident_on"), reason=data["reason"],
        issuer_role=principal.role,
        issuer_county=principal.county if principal.role == "county_officer" else None,
        issued_by=principal.subject, issued_on=today, issued_at=now,
        respond_by=rules.respond_by(today, response_days), status=rules.PENDING, updated_at=now)
    session.add(rec)
    session.flush()
    _event(session, rec, now, principal.subject, "issued", data["reason"])
    announcements.recommendation_issued(uow, rec, current, now)
    _audit(session, rec, now, principal.subject, "issued",
           {"incident": rec.incident, "reason": rec.reason, "respond_by": rec.respond_by})
    issuer = issuer_name(rec.issuer_role, rec.issuer_county)
    _notify(uow, rec, enterprise, "issued", "首席质量官撤换建议",
            f"{issuer}建议{enterprise.name}撤换首席质量官{rec.cqo_name}（第十条）。事件：{rec.incident}。"
            f"理由：{rec.reason}。本建议为监督建议，请于{_fmt(rec.respond_by)}前答复，"
            "或按规定办理首席质量官变更备案。",
            f"recommendation:{rec.id}:issued", today)
    uow.commit()
    return _out.dump(_view(rec, enterprise, today, _events(session, rec.id)))


def get(uow: UnitOfWork, principal: Principal, rec_id: int, as_of: date | None = None) -> dict:
    rec, enterprise = _load(uow.session, principal, rec_id)
    return _out.dump(_view(rec, enterprise, as_of or clock.today(), _events(uow.session, rec.id)))


def list_recommendations(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    as_of = filters.get("as_of") or clock.today()
    query = select(Recommendation, Enterprise).join(Enterprise, Enterprise.uscc == Recommendation.uscc)
    if principal.role == "enterprise":
        if filters.get("uscc") not in (None, principal.uscc):
            raise Forbidden("企业只能查看本企业的撤换建议", code="AUTH_FORBIDDEN")
        query = query.where(Recommendation.uscc == principal.uscc)
    elif principal.role == "county_officer":
        if filters.get("county") not in (None, principal.county):
            raise Forbidden("无权访问其他县（市、区）的数据", code="AUTH_FORBIDDEN")
        query = query.where(or_(Enterprise.county == principal.county,
                                Recommendation.county == principal.county,
                                Recommendation.issuer_county == principal.county))
    if filters.get("county"):
        query = query.where(Enterprise.county == filters["county"])
    if filters.get("uscc"):
        query = query.where(Recommendation.uscc == filters["uscc"])
    status = filters.get("status")
    if status == rules.UNANSWERED:
        query = query.where(Recommendation.status == rules.PENDING, Recommendation.respond_by < as_of)
    elif status == rules.PENDING:
        query = query.where(Recommendation.status == rules.PENDING, Recommendation.respond_by >= as_of)
    elif status == "open":
        query = query.where(Recommendation.status.in_(rules.OPEN_STATUSES))
    elif status:
        query = query.where(Recommendation.status == status)
    session = uow.session
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page, page_size = filters["page"], filters["page_size"]
    rows = session.execute(query.order_by(Recommendation.issued_at.desc(), Recommendation.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    return _page_out.dump({"items": [_view(r, e, as_of) for r, e in rows], "total": total,
                           "page": page, "page_size": page_size, "as_of": as_of})


def answer(uow: UnitOfWork, principal: Principal, rec_id: int, text: str) -> dict:
    """The enterprise answers (again, if it wants to add something): the latest answer
    is shown, every answer is kept in the events."""
    principal.require_role("enterprise")
    session, now, today = uow.session, clock.now_utc(), clock.today()
    rec, enterprise = _load(session, principal, rec_id, lock=True)
    _require_open(rec, "答复")
    first = rec.answered_at is None
    rec.answer, rec.answered_by, rec.status, rec.updated_at = text, principal.subject, rules.ANSWERED, now
    if first:
        rec.answered_at = now
    event = _event(session, rec, now, principal.subject, "answered", text)
    session.flush()
    _audit(session, rec, now, principal.subject, "answered", {"answer": text})
    _notify(uow, rec, enterprise, "answered", "企业已答复撤换建议",
            f"{enterprise.name}已答复关于撤换首席质量官{rec.cqo_name}的建议（编号 {rec.id}）：{text}",
            f"recommendation:{rec.id}:answered:{event.id}", today)
    uow.commit()
    return _out.dump(_view(rec, enterprise, today, _events(session, rec.id)))


def conclude(uow: UnitOfWork, principal: Principal, rec_id: int, action: str,
             comment: str) -> dict:
    """`withdraw` (the advice is retracted) or `close` (the matter is settled), by the
    issuer only; an admin's is an override, so marked in the audit trail and the notice."""
    principal.require_role(*OFFICERS)
    status, verb = {"withdraw": (rules.WITHDRAWN, "撤回"), "close": (rules.CLOSED, "关闭")}[action]
    session, now, today = uow.session, clock.now_utc(), clock.today()
    rec, enterprise = _load(session, principal, rec_id, lock=True)
    issuer = issuer_name(rec.issuer_role, rec.issuer_county)
    if not rules.may_conclude(principal.role, principal.county, rec.issuer_role, rec.issuer_county):
        raise Forbidden(f"只有提出建议的{issuer}可以{verb}该撤换建议",
                        code="RECOMMENDATION_NOT_ISSUER")
    _require_open(rec, verb)
    override = rules.is_override(principal.role, rec.issuer_role)
    rec.status, rec.concluded_at, rec.concluded_by = status, now, principal.subject
    rec.conclusion, rec.updated_at = comment, now
    _event(session, rec, now, principal.subject, status, comment)
    detail = {"comment": comment}
    if override:
        detail.update(override=True, issuer_role=rec.issuer_role, issuer_county=rec.issuer_county)
        log.warning("recommendation %s %s by admin %s in place of its issuer (%s)",
                    rec.id, status, principal.subject, rec.issuer_role)
    _audit(session, rec, now, principal.subject, status, detail)
    announcements.recommendation_closed(
        uow, rec, session.get(Appointment, rec.appointment_id).id_hmac, now)
    by = f"系统管理员（代{issuer}）" if override else issuer
    _notify(uow, rec, enterprise, status, f"撤换建议已{verb}",
            f"关于撤换{enterprise.name}首席质量官{rec.cqo_name}的建议（编号 {rec.id}）已由"
            f"{by}{verb}：{comment}",
            f"recommendation:{rec.id}:{status}", today)
    uow.commit()
    return _out.dump(_view(rec, enterprise, today, _events(session, rec.id)))


def close_for_filing(uow: UnitOfWork, appointment: Appointment, data: dict, now: datetime) -> int:
    """Intake hook: an accepted change (变更) ended `appointment`, so the enterprise's open
    recommendations are settled (已更换); an accepted end of the post (岗位撤销) closes
    them too (the CQO has left). Runs inside intake's unit of work; returns how many."""
    session = uow.session
    with session.no_autoflush:  # intake flushes its rows in batches; do not force one here
        open_ones = list(session.scalars(select(Recommendation).where(
            Recommendation.uscc == appointment.uscc,
            Recommendation.status.in_(rules.OPEN_STATUSES))))
        if not open_ones:
            return 0
        enterprise = session.get(Enterprise, appointment.uscc)  # locked by intake already
    kind, filing_id = data["kind"], data["filing_id"]
    county = enterprise.county if enterprise else data["enterprise"]["county"]
    enterprise_name = enterprise.name if enterprise else data["enterprise"]["name"]
    actor = f"registry.intake:{data['county']}"
    if kind == "change":
        status, action = rules.REPLACED, "replaced"
        text = f"企业已办理首席质量官变更备案（原首席质量官{appointment.cqo_name}已离任），建议办结"
    else:
        status, action = rules.CLOSED, "post_ended"
        text = f"企业已办理首席质量官岗位撤销备案（原首席质量官{appointment.cqo_name}已离任），建议办结"
    today = clock.today()
    for rec in open_ones:
        rec.status, rec.concluded_at, rec.concluded_by = status, now, actor
        rec.conclusion, rec.closed_by_filing_id, rec.updated_at = text, filing_id, now
        _event(session, rec, now, actor, action, text, filing_id)
        _audit(session, rec, now, actor, action, {"kind": kind}, filing_id)
        announcements.recommendation_closed(uow, rec, appointment.id_hmac, now)
        announce(uow, county, {
            "type": "recommendation.closed", "county": county, "uscc": rec.uscc,
            "enterprise_name": enterprise_name, "recommendation": _summary(rec, today),
            "filing_id": filing_id, "title": "撤换建议已办结",
            "message": f"关于撤换{enterprise_name}首席质量官{rec.cqo_name}的建议（编号 {rec.id}）：{text}。"},
            message_id=f"recommendation:{rec.id}:{action}")
    return len(open_ones)


# -- unanswered at the deadline (the oversight timer) ----------------------------------------

def check_unanswered(db: Database, as_of: date | None = None, now: datetime | None = None) -> int:
    """Announce each pending recommendation whose response period ended before `as_of`
    (default today) unanswered, once (a conditional update on
    `unanswered_announced_at`, each in its own short transaction); how many."""
    as_of, now = as_of or clock.today(), now or clock.now_utc()
    with db.unit_of_work() as uow:
        due = list(uow.session.scalars(select(Recommendation.id).where(
            Recommendation.status == rules.PENDING, Recommendation.respond_by < as_of,
            Recommendation.unanswered_announced_at.is_(None)).order_by(Recommendation.id)))
    told = 0
    for rec_id in due:
        with db.unit_of_work() as uow:
            session = uow.session
            marked = session.execute(update(Recommendation).where(
                Recommendation.id == rec_id, Recommendation.status == rules.PENDING,
                Recommendation.respond_by < as_of, Recommendation.unanswered_announced_at.is_(None))
                .values(unanswered_announced_at=now).execution_options(synchronize_session=False)).rowcount
            if marked != 1:
                continue  # answered or concluded meanwhile, or another process told it
            rec = session.get(Recommendation, rec_id)
            enterprise = session.get(Enterprise, rec.uscc)
            appointment = session.get(Appointment, rec.appointment_id)
            announcements.recommendation_unanswered(
                uow, rec, appointment.id_hmac, enterprise_name=enterprise.name if enterprise else None,
                days_overdue=(as_of - rec.respond_by).days, now=now)
            uow.commit()
            told += 1
    if told:
        log.info("%d recommendation(s) unanswered as of %s announced", told, as_of)
    return told


# -- as of a day (overdue list, assessment report) ---------------------------------------------

def end_of_day_utc(as_of: date) -> datetime:
    """The first instant after `as_of` in Asia/Shanghai, in UTC (stored times are UTC)."""
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=clock.TZ).astimezone(timezone.utc)


def open_as_of(as_of: date):
    """SQL condition: issued by `as_of` and not concluded by its end."""
    boundary = end_of_day_utc(as_of)
    return (Recommendation.issued_on <= as_of) & (
        Recommendation.concluded_at.is_(None) | (Recommendation.concluded_at >= boundary))


def unanswered_as_of(as_of: date):
    """SQL condition: open as of `as_of`, past its response period, no answer by then."""
    boundary = end_of_day_utc(as_of)
    return open_as_of(as_of) & (Recommendation.respond_by < as_of) & (
        Recommendation.answered_at.is_(None) | (Recommendation.answered_at >= boundary))
