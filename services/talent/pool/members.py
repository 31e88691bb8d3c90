"""The talent pool's members (人才库, art. 15 人才建设): filled from the register's
appointment events (and once from the appointments that already exist, backfill.py),
and by counties' nominations.

The register's events may arrive twice (the inbox absorbs those) or out of order (nameko
runs several workers; the initial fill reads while events flow): a member row is keyed
by its appointment, created by whichever event comes first, and its status only moves
forward (services/talent/domain/pool.py), so an "ended" that overtook its "accepted"
leaves an ended member, never an active one.
"""
from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import func, select

from shared import clock
from shared.auth import Principal, county_scope
from shared.contracts import county_name, jurisdiction
from shared.db import insert_or_lock
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.paging import page_of
from shared.personal_data import id_hmac, mask_id
from services.talent.domain import pool as rules
from services.talent.pool import experts
from services.talent.pool.models import PoolMember, PoolRecommendation

log = logging.getLogger(__name__)

ACCEPTED = "register.appointment.accepted"
ENDED = "register.appointment.ended"
LAPSED = "register.appointment.lapsed"
RECOMMENDATION_ISSUED = "register.recommendation.issued"
RECOMMENDATION_CLOSED = "register.recommendation.closed"


# -- the register's events -----------------------------------------------------------------

def apply_event(session, envelope: dict, data: dict, now: datetime | None = None) -> None:
    """Apply one register event (loaded with shared.contracts.events.load)."""
    now = now or clock.now_utc()
    kind = envelope["type"]
    if kind == ACCEPTED:
        appointment_accepted(session, data, now)
    elif kind == ENDED:
        appointment_left(session, data, rules.ENDED, data["ended_on"], now)
    elif kind == LAPSED:
        appointment_left(session, data, rules.LAPSED, data["lapsed_on"], now)
    elif kind == RECOMMENDATION_ISSUED:
        recommendation_issued(session, data, now)
    elif kind == RECOMMENDATION_CLOSED:
        recommendation_closed(session, data, now)
    # any other type on the queue is not the pool's: nothing to do


def _member_of_appointment(session, data: dict, *, status: str, joined_on: date,
                           left_on: date | None, now: datetime) -> tuple[PoolMember, bool]:
    """The member of `data["appointment_id"]`, locked; created from `data` when it is
    the first event of that appointment. ON CONFLICT DO NOTHING: two workers with two
    events of one appointment do not both insert it."""
    values = dict(appointment_id=data["appointment_id"], id_hmac=data["id_hmac"],
                  id_masked=data["id_masked"], name=data["cqo_name"], uscc=data["uscc"],
                  enterprise_name=data.get("enterprise_name"), county=data["county"],
                  source="appointment", status=status, joined_on=joined_on, left_on=left_on,
                  updated_at=now)
    return insert_or_lock(session, PoolMember, "appointment_id", values)


def appointment_accepted(session, data: dict, now: datetime) -> PoolMember:
    """An appointment in the register: its CQO is (or stays) a member; an expert of the
    same person follows the newer appointment."""
    member, created = _member_of_appointment(session, data, status=rules.ACTIVE,
                                             joined_on=data["appointed_on"], left_on=None, now=now)
    if not created:  # a repeat, the initial fill, or the "ended" came first
        member.id_hmac, member.id_masked, member.name = data["id_hmac"], data["id_masked"], data["cqo_name"]
        member.uscc, member.county = data["uscc"], data["county"]
        member.enterprise_name = data.get("enterprise_name") or member.enterprise_name
        member.joined_on = data["appointed_on"]
        member.status = rules.member_status_after(member.status, rules.ACTIVE)
        member.updated_at = now
    session.flush()
    experts.follow_appointment(session, member, now)
    return member


def appointment_left(session, data: dict, status: str, left_on: date, now: datetime) -> PoolMember:
    """An appointment ended or lapsed: its member leaves, its experts are suspended."""
    # an unknown appointment (its "accepted" not here yet) is kept as a member that
    # left: the late "accepted" fills in the rest and cannot make it active
    member, created = _member_of_appointment(session, data, status=status, joined_on=left_on,
                                             left_on=left_on, now=now)
    if not created:
        after = rules.member_status_after(member.status, status)
        if after != member.status:
            member.status, member.left_on, member.updated_at = after, left_on, now
    session.flush()
    code = rules.APPOINTMENT_ENDED if status == rules.ENDED else rules.APPOINTMENT_LAPSED
    experts.suspend_linked(session, member, code, left_on, now)
    return member


def _recommendation(session, data: dict, status: str, now: datetime) -> tuple[PoolRecommendation, bool]:
    values = dict(recommendation_id=data["recommendation_id"], uscc=data["uscc"],
                  id_hmac=data["id_hmac"], appointment_id=data["appointment_id"], status=status,
                  issued_on=data.get("issued_on"), updated_at=now)
    return insert_or_lock(session, PoolRecommendation, "recommendation_id", values)


def recommendation_issued(session, data: dict, now: datetime) -> None:
    """A replacement recommendation (art. 10): the expert who is that enterprise's
    recommended CQO is suspended until it is closed."""
    rec, created = _recommendation(session, data, "open", now)
    if not created:
        if rec.status != "open":
            return  # its "closed" came first: nothing stands
        rec.issued_on = data["issued_on"]
    experts.suspend_for_recommendation(session, rec, now)


def recommendation_closed(session, data: dict, now: datetime) -> None:
    rec, created = _recommendation(session, data, data["status"], now)
    if not created:
        rec.status, rec.updated_at = data["status"], now
    session.flush()
    experts.clear_recommendation(session, rec, now)


# -- nominations and the listing ------------------------------------------------------------

def nominate(uow, principal: Principal, data: dict, *, hmac_key: str) -> dict:
    """POST /pool/nominations: a county nominates a CQO of its own county. The ID number
    becomes its keyed hash and masked form here and is never stored or answered."""
    county = data.get("county") or principal.county
    if principal.role == "county_officer" and county != principal.county:
        raise Forbidden("县级监管人员只能推荐本县（市、区）的首席质量官", code="AUTH_FORBIDDEN")
    if not county:
        raise ValidationFailed("市级推荐须指定县（市、区）代码", code="VALIDATION_FAILED", field="county")
    jurisdiction().validate(county, field="county")  # COUNTY_UNKNOWN
    session, now = uow.session, clock.now_utc()
    person = id_hmac(hmac_key, data["id_type"], data["id_number"])
    if session.scalar(select(func.count()).select_from(PoolMember).where(
            PoolMember.id_hmac == person, PoolMember.uscc == data["uscc"],
            PoolMember.status == rules.ACTIVE)):
        raise Conflict("此人已在人才库中（同一企业）", code="MEMBER_EXISTS", field="id_number")
    member = PoolMember(id_hmac=person, id_masked=mask_id(data["id_number"]), name=data["name"],
                        uscc=data["uscc"], enterprise_name=data.get("enterprise_name"),
                        county=county, appointment_id=None, source="nomination",
                        status=rules.ACTIVE, joined_on=clock.today(), left_on=None,
                        nominated_by=principal.subject, nomination_reason=data["reason"],
                        updated_at=now)
    session.add(member)
    session.flush()
    out = member_dict(member)
    uow.commit()
    log.info("pool member %s nominated by %s", member.id, principal.subject)
    return out


def list_members(uow, principal: Principal, filters: dict) -> dict:
    if principal.role == "enterprise":
        raise Forbidden("企业无权查看人才库", code="AUTH_FORBIDDEN")
    county = county_scope(principal, filters.get("county"))
    query = select(PoolMember)
    if county:
        query = query.where(PoolMember.county == county)
    for name in ("status", "source", "uscc"):
        if filters.get(name):
            query = query.where(getattr(PoolMember, name) == filters[name])
    page, size = filters["page"], filters["page_size"]
    total, found = page_of(uow.session, query.order_by(PoolMember.id), page, size)
    return {"items": [member_dict(m) for m in found], "total": total, "page": page,
            "page_size": size}


def member_dict(member: PoolMember) -> dict:
    return {"id": member.id, "name": member.name, "id_masked": member.id_masked,
            "uscc": member.uscc, "enterprise_name": member.enterprise_name,
            "county": member.county, "county_name": county_name(member.county),
            "appointment_id": member.appointment_id, "source": member.source,
            "source_name": rules.SOURCE_NAMES.get(member.source, member.source),
            "status": member.status,
            "status_name": rules.MEMBER_STATUS_NAMES.get(member.status, member.status),
            "joined_on": member.joined_on, "left_on": member.left_on,
            "nominated_by": member.nominated_by, "nomination_reason": member.nomination_reason}
