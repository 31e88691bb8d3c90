"""What the register announces on `cqo.events` (docs/events.md): appointments accepted,
ended, lapsed and with their term ending soon, filings decided (and a change accepted late), replacement recommendations issued, closed and left unanswered, the
yearly campaign opened and closing (to the offices, and to each roster enterprise
without an active CQO).

Intake gathers its announcements while a message's filings are applied and queues them
when they are written (`LockedRegister.flush`), because only then do new appointments
have their ids; terms and recommendations publish theirs in their own unit of work.
"""
from __future__ import annotations

from shared.db import UnitOfWork
from shared.contracts import events
from shared.messaging.events import publish, publish_built, publish_many
from services.registry.models import parsed

SOURCE = "registry"
ACCEPTED = "register.appointment.accepted"
ENDED = "register.appointment.ended"
LAPSED = "register.appointment.lapsed"
EXPIRING = "register.appointment.expiring"
DECIDED = "register.filing.decided"
LATE = "register.filing.late"
RECOMMENDATION_ISSUED = "register.recommendation.issued"
RECOMMENDATION_CLOSED = "register.recommendation.closed"
RECOMMENDATION_UNANSWERED = "register.recommendation.unanswered"
CAMPAIGN_DUE = "register.campaign.due"


def _appointment_facts(a, county: str) -> dict:
    """What every appointment event says of the appointment and its CQO."""
    return {"appointment_id": a.id, "uscc": a.uscc, "county": county, "cqo_name": a.cqo_name,
            "id_hmac": a.id_hmac, "id_masked": a.id_masked}


def appointment_accepted(appointment, *, county: str, enterprise_name: str, kind: str) -> dict:
    a = appointment
    return {**_appointment_facts(a, county), "enterprise_name": enterprise_name,
            "filing_id": a.filing_id, "filing_version": a.filing_version, "kind": kind,
            "id_type": a.id_type, "appointed_on": a.appointed_on, "term_end": a.term_end,
            "training_certificate": a.training_certificate}


def appointment_ended(appointment, *, county: str) -> dict:
    a = appointment
    return {**_appointment_facts(a, county), "ended_on": a.ended_on, "reason": a.end_reason,
            "by_filing_id": a.ended_by_filing_id}


def filing_decided(row, *, enterprise_name: str | None, contact: dict | None = None) -> dict:
    contact = contact or {}
    return {"contact_name": contact.get("name"), "contact_phone": contact.get("phone"),
            "contact_email": contact.get("email"),
            "filing_id": row.filing_id, "version": row.version, "county": row.county,
            "uscc": row.uscc, "enterprise_name": enterprise_name, "kind": row.kind,
            "outcome": row.outcome, "reasons": parsed(row, "reasons"),
            "late": row.late, "days_late": row.days_late, "appointment_id": row.appointment_id}


def filing_late(row, *, enterprise_name: str | None, contact: dict | None = None) -> dict:
    contact = contact or {}
    return {"filing_id": row.filing_id, "version": row.version, "county": row.county, "uscc": row.uscc,
            "enterprise_name": enterprise_name, "kind": row.kind, "deadline": row.deadline,
            "submitted_on": row.submitted_to_county_on, "days_late": row.days_late,
            "contact_name": contact.get("name"), "contact_phone": contact.get("phone"),
            "contact_email": contact.get("email")}


def publish_all(session, announced: list[tuple[str, object, dict]], now) -> None:
    """Queue one event per announcement, after the decisions the caller queued (so the
    counties' answers are not held behind them); `announced` holds (type, row, facts)
    whose rows have been written (ids set)."""
    built = []
    for event_type, row, facts in announced:
        if event_type == ACCEPTED:
            subject, data, key = row.id, appointment_accepted(row, **facts), f"appointment:{row.id}:accepted"
        elif event_type == ENDED:
            subject, data, key = row.id, appointment_ended(row, **facts), f"appointment:{row.id}:ended"
        elif event_type == LATE:
            subject = f"{row.filing_id}/v{row.version}"
            data, key = filing_late(row, **facts), f"filing:{row.filing_id}:v{row.version}:late"
        else:
            subject = f"{row.filing_id}/v{row.version}"
            data, key = filing_decided(row, **facts), f"filing:{row.filing_id}:v{row.version}:decided"
        built.append(events.build(event_type, subject, data, source=SOURCE, occurred_at=now,
                                  event_id=f"event:{key}"))
    publish_built(UnitOfWork(session), built)


def appointment_lapsed(uow: UnitOfWork, appointment, *, county: str, lapsed_on, now,
                       enterprise_name: str | None = None) -> dict:
    a = appointment
    return publish(uow, LAPSED, a.id, {
        **_appointment_facts(a, county), "term_end": a.term_end, "lapsed_on": lapsed_on,
        "enterprise_name": enterprise_name}, source=SOURCE, occurred_at=now,
        event_id=f"event:appointment:{a.id}:lapsed")


def appointment_expiring(uow: UnitOfWork, appointment, *, county: str, enterprise_name: str,
                         days: int, days_left: int, now) -> dict:
    a = appointment
    return publish(uow, EXPIRING, a.id, {
        **_appointment_facts(a, county), "enterprise_name": enterprise_name, "appointed_on": a.appointed_on,
        "term_end": a.term_end, "days": days, "days_left": days_left}, source=SOURCE, occurred_at=now,
        event_id=f"event:appointment:{a.id}:expiring:{days}")


def recommendation_issued(uow: UnitOfWork, rec, appointment, now) -> dict:
    return publish(uow, RECOMMENDATION_ISSUED, rec.id, {
        "recommendation_id": rec.id, "uscc": rec.uscc, "county": rec.county,
        "appointment_id": rec.appointment_id, "cqo_name": rec.cqo_name,
        "id_hmac": appointment.id_hmac, "issuer_role": rec.issuer_role,
        "issuer_county": rec.issuer_county, "reason": rec.reason, "issued_on": rec.issued_on,
        "respond_by": rec.respond_by}, source=SOURCE, occurred_at=now,
        event_id=f"event:recommendation:{rec.id}:issued")


def recommendation_unanswered(uow: UnitOfWork, rec, id_hmac: str, *, enterprise_name: str | None,
                              days_overdue: int, now) -> dict:
    return publish(uow, RECOMMENDATION_UNANSWERED, rec.id, {
        "recommendation_id": rec.id, "uscc": rec.uscc, "county": rec.county, "appointment_id": rec.appointment_id,
        "enterprise_name": enterprise_name, "cqo_name": rec.cqo_name, "id_hmac": id_hmac,
        "issuer_role": rec.issuer_role, "issuer_county": rec.issuer_county, "reason": rec.reason,
        "issued_on": rec.issued_on, "respond_by": rec.respond_by, "days_overdue": days_overdue},
        source=SOURCE, occurred_at=now, event_id=f"event:recommendation:{rec.id}:unanswered")


def recommendation_closed(uow: UnitOfWork, rec, id_hmac: str, now) -> dict:
    return publish(uow, RECOMMENDATION_CLOSED, rec.id, {
        "recommendation_id": rec.id, "uscc": rec.uscc, "county": rec.county,
        "appointment_id": rec.appointment_id, "id_hmac": id_hmac, "status": rec.status},
        source=SOURCE, occurred_at=now, event_id=f"event:recommendation:{rec.id}:closed")


def campaign(uow: UnitOfWork, stage: str, campaign, enterprises: list[dict], now, *,
             days_left: int | None = None) -> None:
    """`register.campaign.<stage>` (opened | closing) for the offices, and one
    `register.campaign.due` per roster enterprise without an active CQO (`enterprises`:
    the roster rows, contact included), batched: a roster holds thousands."""
    facts = {"year": campaign.year, "title": campaign.title, "notice_number": campaign.notice_number,
             "opens_on": campaign.opens_on, "closes_on": campaign.closes_on, "days_left": days_left}
    publish(uow, f"register.campaign.{stage}", campaign.year, {**facts, "enterprises": len(enterprises)},
            source=SOURCE, occurred_at=now, event_id=f"event:campaign:{campaign.year}:{stage}")
    publish_many(uow, CAMPAIGN_DUE, [(
        f"{campaign.year}/{e['uscc']}",
        {**facts, "stage": stage, "uscc": e["uscc"], "county": e["county"], "enterprise_name": e["name"],
         "contact_name": e.get("contact_person"), "contact_phone": e.get("phone"), "contact_email": e.get("email")},
        f"event:campaign:{campaign.year}:{stage}:{e['uscc']}") for e in enterprises],
        source=SOURCE, occurred_at=now)
