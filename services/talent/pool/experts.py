"""City-level quality experts (市级质量专家, art. 15 人才建设): designation from the pool,
suspension and reinstatement (automatic from the register's events, or by the city),
consent to be contacted, and the contact details given out only with that consent.

Every change to an expert appends its draw-relevant state (`history.record`) and, when
it is a suspension, reinstatement or consent, an `ExpertAction` with the reason, in the
same unit of work. Contact details are personal data: encrypted at rest, masked in every
answer and log line.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

from sqlalchemy import func, select

from shared import clock
from shared.auth import Principal, county_scope
from shared.contracts import county_name
from shared.contracts import events as contract
from shared.errors import Conflict, NotFound
from shared.messaging import events
from shared.paging import page_of
from shared.personal_data import IdCipher, mask_email, mask_phone
from services.talent.domain import pool as rules
from services.talent.domain.expertise import Catalogue
from services.talent.pool import history
from services.talent.pool.models import (Expert, ExpertAction, ExpertConflict, PoolMember,
                                         PoolRecommendation)

log = logging.getLogger(__name__)

REGISTER = "register"  # the actor of what the register's events change


# -- reasons (shared by the event handlers and the officers' use cases) ---------------------

def reasons_of(expert: Expert) -> list[dict]:
    return json.loads(expert.suspensions or "[]")


def change_reasons(session, expert: Expert, reasons: list[dict], now: datetime, *,
                   action: str, code: str, ref: str | None, actor: str,
                   note: str | None = None) -> bool:
    """Store new reasons and the status they give; record the state and the action.
    False (nothing written) when nothing changes: a redelivered event, a repeated
    request."""
    status = rules.expert_status(expert.status, reasons)
    if reasons == reasons_of(expert) and status == expert.status:
        return False
    before = expert.status
    expert.suspensions = json.dumps(reasons, ensure_ascii=False)
    expert.status = status
    expert.updated_at = now
    session.add(ExpertAction(expert_id=expert.id, at=now, action=action, code=code, ref=ref,
                             note=note, actor=actor))
    session.flush()
    history.record(session, expert, now)
    if before != status:
        log.info("expert %s %s -> %s (%s %s)", expert.id, before, status, code, ref)
    return True


def _locked(session, *conditions) -> list[Expert]:
    return list(session.scalars(select(Expert).where(*conditions).order_by(Expert.id)
                                .with_for_update()))


def suspend_linked(session, member: PoolMember, code: str, since, now: datetime) -> int:
    """The experts designated from `member`, suspended because its appointment ended or
    lapsed; returns how many changed."""
    changed = 0
    for expert in _locked(session, Expert.member_id == member.id):
        reasons = rules.add_reason(reasons_of(expert), code, str(member.appointment_id), since)
        changed += change_reasons(session, expert, reasons, now, action="suspended", code=code,
                                  ref=str(member.appointment_id), actor=REGISTER)
    return changed


def open_recommendations(session, uscc: str, id_hmac: str) -> list[PoolRecommendation]:
    return list(session.scalars(select(PoolRecommendation).where(
        PoolRecommendation.uscc == uscc, PoolRecommendation.id_hmac == id_hmac,
        PoolRecommendation.status == "open").order_by(PoolRecommendation.recommendation_id)))


def _with_recommendations(session, reasons: list[dict], uscc: str, id_hmac: str) -> list[dict]:
    for rec in open_recommendations(session, uscc, id_hmac):
        reasons = rules.add_reason(reasons, rules.REPLACEMENT_RECOMMENDED, str(rec.recommendation_id),
                                   rec.issued_on or clock.today())
    return reasons


def follow_appointment(session, member: PoolMember, now: datetime) -> int:
    """A newer appointment of an expert's person (a renewal, a change to another
    enterprise): the expert follows it (employer, county), and the reasons of the older
    appointment's end are cleared. Returns how many experts changed."""
    if member.status != rules.ACTIVE or member.appointment_id is None:
        return 0
    changed = 0
    for expert in _locked(session, Expert.id_hmac == member.id_hmac, Expert.status != rules.EXPERT_ENDED):
        current = session.get(PoolMember, expert.member_id) if expert.member_id else None
        if not rules.supersedes(member.appointment_id, current.appointment_id if current else None):
            continue
        expert.member_id = member.id
        expert.employer_uscc, expert.employer_name = member.uscc, member.enterprise_name
        expert.county, expert.name, expert.id_masked = member.county, member.name, member.id_masked
        reasons = rules.clear_reasons(reasons_of(expert), rules.APPOINTMENT_REASONS)
        reasons = _with_recommendations(session, reasons, member.uscc, member.id_hmac)
        expert.updated_at = now
        if not change_reasons(session, expert, reasons, now, action="appointment_followed",
                              code=None, ref=str(member.appointment_id), actor=REGISTER):
            session.flush()  # the employer changed: a draw must see it
            history.record(session, expert, now)
        changed += 1
    return changed


def suspend_for_recommendation(session, rec: PoolRecommendation, now: datetime) -> int:
    changed = 0
    for expert in _locked(session, Expert.employer_uscc == rec.uscc, Expert.id_hmac == rec.id_hmac):
        reasons = rules.add_reason(reasons_of(expert), rules.REPLACEMENT_RECOMMENDED,
                                   str(rec.recommendation_id), rec.issued_on or clock.today())
        changed += change_reasons(session, expert, reasons, now, action="suspended",
                                  code=rules.REPLACEMENT_RECOMMENDED,
                                  ref=str(rec.recommendation_id), actor=REGISTER)
    return changed


def clear_recommendation(session, rec: PoolRecommendation, now: datetime) -> int:
    """The recommendation's reason cleared from whoever carries it (the person may have
    moved to another enterprise since); reinstated when no reason is left."""
    changed = 0
    for expert in _locked(session, Expert.id_hmac == rec.id_hmac):
        reasons = rules.clear_reasons(reasons_of(expert), rules.REPLACEMENT_RECOMMENDED,
                                      str(rec.recommendation_id))
        changed += change_reasons(session, expert, reasons, now, action="reinstated",
                                  code=rules.REPLACEMENT_RECOMMENDED,
                                  ref=str(rec.recommendation_id), actor=REGISTER,
                                  note=f"撤换建议已{RECOMMENDATION_STATUS_NAMES.get(rec.status, rec.status)}")
    return changed


RECOMMENDATION_STATUS_NAMES = {"withdrawn": "撤回", "closed": "关闭", "replaced": "办结（已更换）"}


def contact_event(expert: Expert, revision: int, at: datetime, event_type: str, cipher: IdCipher) -> dict:
    """Who the expert is and how to reach them, for the notification service
    (docs/events.md): the contact only while the expert consents to be contacted, so a
    withdrawn consent reaches it as "forget the contact". `revision` (an ExpertAction
    id) orders one expert's announcements."""
    consented = rules.contactable(expert.consent_to_contact, expert.status)
    data = {"expert_id": expert.id, "revision": revision, "name": expert.name, "county": expert.county,
            "status": expert.status, "consent_to_contact": consented, "phone": None, "email": None}
    if consented:
        data["phone"] = cipher.decrypt(expert.phone_encrypted) if expert.phone_encrypted else None
        data["email"] = cipher.decrypt(expert.email_encrypted) if expert.email_encrypted else None
    return contract.build(event_type, expert.id, data, source="talent", occurred_at=at,
                          event_id=f"event:expert:{expert.id}:{revision}")


def announce_contact(uow, expert: Expert, action: ExpertAction, event_type: str, cipher: IdCipher) -> None:
    """`contact_event` through the outbox, in the transaction of the change."""
    events.publish_built(uow, [contact_event(expert, action.id, action.at, event_type, cipher)])


# -- officers' use cases ------------------------------------------------------------------

def designate(uow, principal: Principal, data: dict, *, cipher: IdCipher, expertise: Catalogue) -> dict:
    """POST /experts: the city designates a pool member as a city-level expert."""
    session, now = uow.session, clock.now_utc()
    member = session.get(PoolMember, data["member_id"])
    if member is None:
        raise NotFound("人才库中没有该成员", code="MEMBER_NOT_FOUND", field="member_id")
    if member.status != rules.ACTIVE:
        raise Conflict(f"该成员已{rules.MEMBER_STATUS_NAMES.get(member.status, member.status)}，"
                       "不能聘为市级质量专家", code="MEMBER_NOT_ACTIVE", field="member_id")
    codes = expertise.check(data["expertise"])
    rules.check_term(data["term_start"], data["term_end"])
    if session.scalar(select(func.count()).select_from(Expert).where(
            Expert.id_hmac == member.id_hmac, Expert.status != rules.EXPERT_ENDED)):
        raise Conflict("此人已是市级质量专家", code="EXPERT_EXISTS", field="member_id")
    phone, email = data.get("phone"), data.get("email")
    # a recommendation already open against this person at this enterprise stands
    reasons = _with_recommendations(session, [], member.uscc, member.id_hmac)
    expert = Expert(
        id=str(uuid.uuid4()), member_id=member.id, id_hmac=member.id_hmac,
        id_masked=member.id_masked, name=member.name, county=member.county,
        employer_uscc=member.uscc, employer_name=member.enterprise_name,
        expertise=json.dumps(codes), term_start=data["term_start"], term_end=data["term_end"],
        phone_encrypted=cipher.encrypt_text(phone) if phone else None,
        phone_masked=mask_phone(phone) if phone else None,
        email_encrypted=cipher.encrypt_text(email) if email else None,
        email_masked=mask_email(email) if email else None,
        consent_to_contact=data["consent_to_contact"], consent_recorded_at=now,
        consent_recorded_by=principal.subject,
        status=rules.expert_status(rules.EXPERT_ACTIVE, reasons),
        suspensions=json.dumps(reasons, ensure_ascii=False),
        designated_at=now, designated_by=principal.subject, updated_at=now)
    session.add(expert)
    designated = ExpertAction(expert_id=expert.id, at=now, action="designated", actor=principal.subject,
                              note="同意联系" if expert.consent_to_contact else "未同意联系")
    session.add(designated)
    for reason in reasons:
        session.add(ExpertAction(expert_id=expert.id, at=now, action="suspended", code=reason["code"],
                                 ref=reason["ref"], actor=REGISTER))
    session.flush()
    history.record(session, expert, now)
    announce_contact(uow, expert, designated, "talent.expert.designated", cipher)
    out = expert_dict(session, expert, expertise, detail=True)
    uow.commit()
    log.info("expert %s designated from member %s by %s", expert.id, member.id, principal.subject)
    return out


def _readable(session, principal: Principal, expert_id: str, *, lock: bool = False) -> Expert:
    query = select(Expert).where(Expert.id == expert_id)
    expert = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if expert is None:
        raise NotFound("没有该市级质量专家", code="EXPERT_NOT_FOUND")
    principal.require_county(expert.county)
    return expert


def list_experts(uow, principal: Principal, filters: dict, expertise: Catalogue) -> dict:
    session = uow.session
    county = county_scope(principal, filters.get("county"))
    query = select(Expert)
    if county:
        query = query.where(Expert.county == county)
    if filters.get("status"):
        query = query.where(Expert.status == filters["status"])
    if filters.get("expertise"):  # a JSON list of codes: match the quoted code
        query = query.where(Expert.expertise.like(f'%"{filters["expertise"]}"%'))
    if filters.get("uscc"):
        query = query.where(Expert.employer_uscc == filters["uscc"])
    page, size = filters["page"], filters["page_size"]
    total, found = page_of(session, query.order_by(Expert.designated_at, Expert.id), page, size)
    return {"items": [expert_dict(session, e, expertise) for e in found], "total": total,
            "page": page, "page_size": size}


def get_expert(uow, principal: Principal, expert_id: str, expertise: Catalogue) -> dict:
    return expert_dict(uow.session, _readable(uow.session, principal, expert_id), expertise, detail=True)


def suspend(uow, principal: Principal, expert_id: str, reason: str, expertise: Catalogue) -> dict:
    """The city suspends an expert by hand, with its reason (one such reason at a time)."""
    session, now = uow.session, clock.now_utc()
    expert = _readable(session, principal, expert_id, lock=True)
    if expert.status == rules.EXPERT_ENDED:
        raise Conflict("该专家的聘任已终止", code="EXPERT_ENDED")
    reasons = reasons_of(expert)
    if any(r["code"] == rules.MANUAL for r in reasons):
        raise Conflict("该专家已被市局暂停", code="EXPERT_ALREADY_SUSPENDED")
    reasons = rules.add_reason(reasons, rules.MANUAL, rules.MANUAL, clock.today(),
                               note=reason, by=principal.subject)
    change_reasons(session, expert, reasons, now, action="suspended", code=rules.MANUAL,
                   ref=rules.MANUAL, actor=principal.subject, note=reason)
    out = expert_dict(session, expert, expertise, detail=True)
    uow.commit()
    return out


def reinstate(uow, principal: Principal, expert_id: str, reason: str, expertise: Catalogue) -> dict:
    """The city lifts its own suspension. Automatic reasons (the appointment's end, a
    replacement recommendation) are lifted only by what caused them: the expert stays
    suspended while one stands, and the answer lists it."""
    session, now = uow.session, clock.now_utc()
    expert = _readable(session, principal, expert_id, lock=True)
    reasons = reasons_of(expert)
    if not any(r["code"] == rules.MANUAL for r in reasons):
        standing = "、".join(rules.SUSPENSION_NAMES.get(r["code"], r["code"]) for r in reasons)
        raise Conflict("该专家没有被市局暂停" + (f"（暂停原因：{standing}，待原因消除后自动恢复）"
                                                 if standing else ""),
                       code="EXPERT_NOT_SUSPENDED", details={"suspensions": rules.describe(reasons)})
    change_reasons(session, expert, rules.clear_reasons(reasons, rules.MANUAL), now,
                   action="reinstated", code=rules.MANUAL, ref=rules.MANUAL,
                   actor=principal.subject, note=reason)
    out = expert_dict(session, expert, expertise, detail=True)
    uow.commit()
    return out


def record_consent(uow, principal: Principal, expert_id: str, consent: bool,
                   expertise: Catalogue, cipher: IdCipher) -> dict:
    """The expert's answer to being contacted, with who recorded it and when."""
    session, now = uow.session, clock.now_utc()
    expert = _readable(session, principal, expert_id, lock=True)
    expert.consent_to_contact = consent
    expert.consent_recorded_at, expert.consent_recorded_by = now, principal.subject
    expert.updated_at = now
    action = ExpertAction(expert_id=expert.id, at=now, action="consent", actor=principal.subject,
                          note="同意联系" if consent else "不同意联系")
    session.add(action)
    session.flush()
    history.record(session, expert, now)  # a draw needs the consent standing at its time
    announce_contact(uow, expert, action, "talent.expert.updated", cipher)
    out = expert_dict(session, expert, expertise, detail=True)
    uow.commit()
    return out


def contact(uow, principal: Principal, expert_id: str, cipher: IdCipher) -> dict:
    """The clear contact details, for the city to invite the expert: only with the
    expert's recorded consent (409 EXPERT_NO_CONSENT otherwise). Never logged."""
    expert = _readable(uow.session, principal, expert_id)
    if not rules.contactable(expert.consent_to_contact, expert.status):
        raise Conflict("该专家未同意被联系，不提供联系方式", code="EXPERT_NO_CONSENT")
    return {"id": expert.id, "name": expert.name,
            "phone": cipher.decrypt(expert.phone_encrypted) if expert.phone_encrypted else None,
            "email": cipher.decrypt(expert.email_encrypted) if expert.email_encrypted else None}


# -- declared conflicts (art. 10 回避) -----------------------------------------------------

def declare_conflict(uow, principal: Principal, expert_id: str, data: dict) -> dict:
    session, now = uow.session, clock.now_utc()
    expert = _readable(session, principal, expert_id, lock=True)
    if session.scalar(select(func.count()).select_from(ExpertConflict).where(
            ExpertConflict.expert_id == expert.id, ExpertConflict.uscc == data["uscc"],
            ExpertConflict.withdrawn_at.is_(None))):
        raise Conflict("已登记该专家与此企业的利益冲突", code="EXPERT_CONFLICT_EXISTS", field="uscc")
    row = ExpertConflict(expert_id=expert.id, uscc=data["uscc"], since=data["since"],
                         note=data.get("note"), recorded_at=now, recorded_by=principal.subject)
    session.add(row)
    expert.updated_at = now
    session.add(ExpertAction(expert_id=expert.id, at=now, action="conflict_declared",
                             ref=data["uscc"], note=data.get("note"), actor=principal.subject))
    session.flush()
    history.record(session, expert, now)
    out = conflict_dict(row)
    uow.commit()
    return out


def withdraw_conflict(uow, principal: Principal, expert_id: str, conflict_id: int,
                      note: str | None) -> dict:
    session, now = uow.session, clock.now_utc()
    expert = _readable(session, principal, expert_id, lock=True)
    row = session.get(ExpertConflict, conflict_id)
    if row is None or row.expert_id != expert.id:
        raise NotFound("没有该利益冲突登记", code="EXPERT_CONFLICT_NOT_FOUND")
    if row.withdrawn_at is not None:
        raise Conflict("该利益冲突登记已撤销", code="EXPERT_CONFLICT_WITHDRAWN")
    row.withdrawn_at = now
    expert.updated_at = now
    session.add(ExpertAction(expert_id=expert.id, at=now, action="conflict_withdrawn",
                             ref=row.uscc, note=note, actor=principal.subject))
    session.flush()
    history.record(session, expert, now)
    out = conflict_dict(row)
    uow.commit()
    return out


# -- answers: contact details masked, always ----------------------------------------------

def conflict_dict(row: ExpertConflict) -> dict:
    return {"id": row.id, "uscc": row.uscc, "since": row.since, "note": row.note,
            "recorded_at": row.recorded_at, "recorded_by": row.recorded_by,
            "withdrawn_at": row.withdrawn_at}


def expert_dict(session, expert: Expert, expertise: Catalogue, *, detail: bool = False) -> dict:
    names = {f.code: f.name for f in expertise}
    codes = json.loads(expert.expertise or "[]")
    out = {"id": expert.id, "member_id": expert.member_id, "name": expert.name,
           "id_masked": expert.id_masked, "county": expert.county,
           "county_name": county_name(expert.county), "employer_uscc": expert.employer_uscc,
           "employer_name": expert.employer_name,
           "expertise": [{"code": c, "name": names.get(c, c)} for c in codes],
           "term_start": expert.term_start, "term_end": expert.term_end,
           "phone_masked": expert.phone_masked, "email_masked": expert.email_masked,
           "consent_to_contact": expert.consent_to_contact,
           "consent_recorded_at": expert.consent_recorded_at,
           "consent_recorded_by": expert.consent_recorded_by,
           "status": expert.status,
           "status_name": rules.EXPERT_STATUS_NAMES.get(expert.status, expert.status),
           "suspensions": rules.describe(reasons_of(expert)),
           "designated_at": expert.designated_at, "designated_by": expert.designated_by,
           "updated_at": expert.updated_at}
    if detail:
        rows = session.scalars(select(ExpertConflict).where(ExpertConflict.expert_id == expert.id)
                               .order_by(ExpertConflict.id)).all()
        out["conflicts"] = [conflict_dict(r) for r in rows]
    return out
