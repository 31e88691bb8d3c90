"""Events in: each event of the contract, once (by event id), becomes one notice per
recipient and one delivery per (notice, channel), in one transaction with the record
that the event was taken in. The in-app inbox is delivered at once; e-mail and SMS
wait for the timer (dispatch.py), SMS not before the end of the quiet hours.

The experts' contacts come the same way (`talent.expert.*`), only with their consent,
and make no notice.

A message may carry a batch of events (docs/events.md): the whole batch is written
with a few multi-row statements, not a handful per event."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import insert, or_, select, update

from shared.db import UnitOfWork, conflict_insert, insert_rows
from shared.personal_data import IdCipher, mask_email, mask_phone
from services.notify.domain import recipients as rules
from services.notify.domain.schedule import QuietHours
from services.notify.models import (ConsumedEvent, Delivery, EnterpriseContact, ExpertContact, InboxEntry,
                                    Notice, OfficeContact)
from services.notify.notices.render import render

log = logging.getLogger(__name__)
PENDING, SENT, SKIPPED = "pending", "sent", "skipped"
EXPERT_EVENTS = ("talent.expert.designated", "talent.expert.updated")


def mask(channel: str, address: str | None) -> str | None:
    if address is None:
        return None
    return {rules.EMAIL: mask_email, rules.SMS: mask_phone}.get(channel, lambda a: a)(address)


def first_time(session, received: list[tuple[dict, dict]], now: datetime) -> list[tuple[dict, dict]]:
    """The events not taken in before (nor earlier in this batch), recorded as taken."""
    unique: dict[str, tuple[dict, dict]] = {}
    for envelope, data in received:
        unique.setdefault(envelope["event_id"], (envelope, data))
    stmt = (conflict_insert(session)(ConsumedEvent)
            .values([{"event_id": k, "event_type": e["type"], "received_at": now} for k, (e, _) in unique.items()])
            .on_conflict_do_nothing(index_elements=["event_id"]).returning(ConsumedEvent.event_id))
    new = set(session.scalars(stmt).all())
    return [pair for key, pair in unique.items() if key in new]


def _learn_contacts(session, cipher: IdCipher, fresh: list[tuple[dict, dict]]) -> None:
    """The newest filing's contact per enterprise (decided by the city or returned by
    the county), kept for the events that carry none:
    one upsert, and an older decision arriving late does not overwrite a newer one."""
    newest: dict[str, dict] = {}
    for envelope, data in fresh:
        contact = rules.event_contact(data) if envelope["type"] in rules.CONTACT_EVENTS else None
        if contact is None or not data.get("uscc"):
            continue
        at = envelope["occurred_at"]
        if data["uscc"] in newest and newest[data["uscc"]]["as_of"] > at:
            continue
        newest[data["uscc"]] = {
            "uscc": data["uscc"], "enterprise_name": data.get("enterprise_name"), "county": data.get("county"),
            "contact_name": contact.contact_name,
            "phone_encrypted": cipher.encrypt_text(contact.phone) if contact.phone else None,
            "email_encrypted": cipher.encrypt_text(contact.email) if contact.email else None, "as_of": at}
    if not newest:
        return
    stmt = conflict_insert(session)(EnterpriseContact).values(list(newest.values()))
    names = [k for k in next(iter(newest.values())) if k != "uscc"]
    session.execute(stmt.on_conflict_do_update(
        index_elements=["uscc"], set_={k: stmt.excluded[k] for k in names},
        where=EnterpriseContact.as_of <= stmt.excluded.as_of))


def _learn_experts(session, cipher: IdCipher, fresh: list[tuple[dict, dict]]) -> None:
    """The experts' read model (docs/events.md): the newest announcement per expert by
    revision; phone and e-mail kept only with consent. A withdrawn consent also stops
    what is still queued for the expert: their e-mails and SMS not sent yet are skipped
    and their addresses erased, so neither the timer nor `cqo notify retry` uses them."""
    newest: dict[str, dict] = {}
    for envelope, data in fresh:
        if envelope["type"] not in EXPERT_EVENTS:
            continue
        if data["expert_id"] in newest and newest[data["expert_id"]]["revision"] > data["revision"]:
            continue
        consent = bool(data["consent_to_contact"])
        newest[data["expert_id"]] = {
            "expert_id": data["expert_id"], "name": data["name"][:100], "county": data.get("county"),
            "status": data["status"][:16], "consent_to_contact": consent, "revision": data["revision"],
            "phone_encrypted": cipher.encrypt_text(data["phone"]) if consent and data.get("phone") else None,
            "email_encrypted": cipher.encrypt_text(data["email"]) if consent and data.get("email") else None,
            "as_of": envelope["occurred_at"]}
    if not newest:
        return
    stmt = conflict_insert(session)(ExpertContact).values(list(newest.values()))
    names = [k for k in next(iter(newest.values())) if k != "expert_id"]
    session.execute(stmt.on_conflict_do_update(
        index_elements=["expert_id"], set_={k: stmt.excluded[k] for k in names},
        where=ExpertContact.revision <= stmt.excluded.revision))
    # what the table holds now (a late, older announcement may have lost to a newer one)
    withdrawn = list(session.scalars(select(ExpertContact.expert_id).where(
        ExpertContact.expert_id.in_(list(newest)), ExpertContact.consent_to_contact.is_(False))))
    if withdrawn:
        notices = select(Notice.id).where(Notice.recipient.in_([f"expert:{e}" for e in withdrawn]))
        stopped = session.execute(update(Delivery).where(
            Delivery.notice_id.in_(notices), Delivery.channel.in_([rules.EMAIL, rules.SMS]),
            Delivery.status.in_([PENDING, "failed", "unknown"])).values(
            status=SKIPPED, address_encrypted=None, next_attempt_at=None,
            last_error=rules.NO_CONSENT + "（已撤回同意）")).rowcount
        if stopped:
            log.info("consent withdrawn by %d expert(s): %d queued deliveries skipped", len(withdrawn), stopped)


def _directories(session, cipher: IdCipher, fresh) -> dict[int, rules.Directory]:
    """Per event (by position): the offices of its county (of every county for a
    city-wide event) and the city, and its enterprise's known contact when the event
    carries none; two queries in all."""
    counties = {d.get("county") for _, d in fresh if d.get("county")}
    every = {n for n, (e, _) in enumerate(fresh) if rules.needs_every_county(e["type"])}
    county_offices = (OfficeContact.level == "county") if every else \
        ((OfficeContact.level == "county") & OfficeContact.county.in_(counties))
    offices = [rules.Office(o.id, o.level, o.county, o.name, o.phone, o.email)
               for o in session.scalars(select(OfficeContact).where(or_(
                   OfficeContact.level == "city", county_offices)).order_by(OfficeContact.id))]
    wanted = {d["uscc"] for _, d in fresh if d.get("uscc") and rules.event_contact(d) is None}
    known = {}
    if wanted:
        for row in session.scalars(select(EnterpriseContact).where(EnterpriseContact.uscc.in_(wanted))):
            known[row.uscc] = rules.EnterpriseAddress(
                contact_name=row.contact_name, enterprise_name=row.enterprise_name,
                phone=cipher.decrypt(row.phone_encrypted) if row.phone_encrypted else None,
                email=cipher.decrypt(row.email_encrypted) if row.email_encrypted else None)
    experts = {}
    wanted_experts = {d["expert_id"] for e, d in fresh if d.get("expert_id") and e["type"] not in EXPERT_EVENTS}
    if wanted_experts:
        for row in session.scalars(select(ExpertContact).where(ExpertContact.expert_id.in_(wanted_experts))):
            consent = bool(row.consent_to_contact)
            experts[row.expert_id] = rules.ExpertAddress(
                name=row.name, consent=consent,
                phone=cipher.decrypt(row.phone_encrypted) if consent and row.phone_encrypted else None,
                email=cipher.decrypt(row.email_encrypted) if consent and row.email_encrypted else None)
    out = {}
    for n, (_, data) in enumerate(fresh):
        mine = tuple(o for o in offices if o.level == "city" or n in every or o.county == data.get("county"))
        out[n] = rules.Directory(offices=mine, enterprise=known.get(data.get("uscc")),
                                 expert=experts.get(data.get("expert_id")))
    return out


def receive(uow: UnitOfWork, *, cipher: IdCipher, sms_templates, quiet_hours: QuietHours,
            received: list[tuple[dict, dict]], now: datetime) -> int:
    """Notices for the events not seen before; returns how many notices were made."""
    session = uow.session
    fresh = first_time(session, received, now)
    if not fresh:
        return 0  # the same events again (alone, or inside another batch)
    _learn_contacts(session, cipher, fresh)
    _learn_experts(session, cipher, fresh)
    directories = _directories(session, cipher, fresh)
    notices, routes = [], []
    for n, (envelope, data) in enumerate(fresh):
        for plan in rules.plan(envelope["type"], data, directories[n], sms_templates):
            r = plan.recipient
            rendered = render(envelope["type"], envelope, data, r.audience, r.name)
            notices.append({"event_id": envelope["event_id"], "event_type": envelope["type"],
                            "recipient": r.key, "recipient_name": r.name[:200], "county": r.county,
                            "template": rendered.template, "subject": rendered.subject[:300],
                            "body_text": rendered.text, "body_html": rendered.html,
                            "sms_params": rendered.sms_params_json, "created_at": now})
            routes.append(plan.routes)
    if not notices:
        return 0
    ids = session.scalars(insert(Notice).returning(Notice.id, sort_by_parameter_order=True), notices).all()
    deliveries, inbox = [], []
    for notice_id, notice, plan_routes in zip(ids, notices, routes):
        for route in plan_routes:
            row = {"notice_id": notice_id, "channel": route.channel, "attempts": 0, "created_at": now,
                   "address_masked": None, "address_encrypted": None, "status": PENDING,
                   "next_attempt_at": None, "sent_at": None, "last_error": None}
            if route.address is None:
                row.update(status=SKIPPED, last_error=route.skip_reason)
            elif route.channel == rules.INBOX:
                row.update(status=SENT, sent_at=now)
                inbox.append({"notice_id": notice_id, "recipient": notice["recipient"], "created_at": now})
            else:
                row.update(address_masked=mask(route.channel, route.address),
                           address_encrypted=cipher.encrypt_text(route.address),
                           next_attempt_at=quiet_hours.next_allowed(now) if route.channel == rules.SMS else now)
            deliveries.append(row)
        log.info("notice %s for %s (%s, event %s): %s", notice_id, notice["recipient"], notice["template"],
                 notice["event_id"], ", ".join(
                     f"{x.channel} {'skipped' if x.address is None else mask(x.channel, x.address)}"
                     for x in plan_routes if x.channel != rules.INBOX))
    # one statement each (the ORM's bulk insert sent the deliveries one row at a time)
    insert_rows(session.connection(), Delivery.__table__, deliveries)
    insert_rows(session.connection(), InboxEntry.__table__, inbox)
    return len(ids)
