"""Events in: each event of the contract, once (by event id), becomes one notice per
recipient and one delivery per (notice, channel), in one transaction with the record
that the event was taken in. The in-app inbox is delivered at once; e-mail and SMS
wait for the timer (dispatch.py), SMS not before the end of the quiet hours."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select

from shared.db import UnitOfWork, conflict_insert
from shared.personal_data import IdCipher, mask_email, mask_phone
from services.notify.domain import recipients as rules
from services.notify.domain.schedule import QuietHours
from services.notify.models import (ConsumedEvent, Delivery, EnterpriseContact, InboxEntry, Notice,
                                    OfficeContact)
from services.notify.notices.render import render

log = logging.getLogger(__name__)
PENDING, SENT, SKIPPED = "pending", "sent", "skipped"


def first_time(uow: UnitOfWork, envelope: dict, now: datetime) -> bool:
    stmt = (conflict_insert(uow.session)(ConsumedEvent)
            .values(event_id=envelope["event_id"], event_type=envelope["type"], received_at=now)
            .on_conflict_do_nothing(index_elements=["event_id"]))
    return uow.session.execute(stmt).rowcount == 1


def mask(channel: str, address: str | None) -> str | None:
    if address is None:
        return None
    return {rules.EMAIL: mask_email, rules.SMS: mask_phone}.get(channel, lambda a: a)(address)


def _learn_contact(session, cipher: IdCipher, envelope: dict, data: dict) -> None:
    """The newest filing's contact, kept for the events that carry none: one upsert, and
    an older decision arriving late does not overwrite a newer contact."""
    contact = rules.event_contact(data)
    if contact is None or not data.get("uscc"):
        return
    values = {"uscc": data["uscc"], "enterprise_name": data.get("enterprise_name"),
              "county": data.get("county"), "contact_name": contact.contact_name,
              "phone_encrypted": cipher.encrypt_text(contact.phone) if contact.phone else None,
              "email_encrypted": cipher.encrypt_text(contact.email) if contact.email else None,
              "as_of": envelope["occurred_at"]}
    stmt = conflict_insert(session)(EnterpriseContact).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["uscc"], set_={k: stmt.excluded[k] for k in values if k != "uscc"},
        where=EnterpriseContact.as_of <= stmt.excluded.as_of))


def directory(session, cipher: IdCipher, data: dict) -> rules.Directory:
    county = data.get("county")
    offices = session.scalars(select(OfficeContact).where(or_(
        OfficeContact.level == "city",
        (OfficeContact.level == "county") & (OfficeContact.county == county)))
        .order_by(OfficeContact.id)).all()
    enterprise = None
    if data.get("uscc") and rules.event_contact(data) is None:  # the event's own contact wins
        row = session.get(EnterpriseContact, data["uscc"])
        if row is not None:
            enterprise = rules.EnterpriseAddress(
                contact_name=row.contact_name, enterprise_name=row.enterprise_name,
                phone=cipher.decrypt(row.phone_encrypted) if row.phone_encrypted else None,
                email=cipher.decrypt(row.email_encrypted) if row.email_encrypted else None)
    return rules.Directory(
        offices=tuple(rules.Office(o.id, o.level, o.county, o.name, o.phone, o.email) for o in offices),
        enterprise=enterprise)


def receive(uow: UnitOfWork, *, cipher: IdCipher, sms_templates, quiet_hours: QuietHours,
            received: list[tuple[dict, dict]], now: datetime) -> int:
    """Notices for the events not seen before; returns how many notices were made."""
    session, made = uow.session, 0
    for envelope, data in received:
        if not first_time(uow, envelope, now):
            continue  # the same event again (alone, or inside another batch)
        event_type = envelope["type"]
        if event_type == "register.filing.decided":
            _learn_contact(session, cipher, envelope, data)
        plans = rules.plan(event_type, data, directory(session, cipher, data), sms_templates)
        for plan in plans:
            made += _notice(session, cipher, envelope, data, plan, quiet_hours, now)
    return made


def _notice(session, cipher, envelope, data, plan: rules.Plan, quiet_hours, now) -> int:
    r = plan.recipient
    rendered = render(envelope["type"], envelope, data, r.audience, r.name)
    notice = Notice(event_id=envelope["event_id"], event_type=envelope["type"], recipient=r.key,
                    recipient_name=r.name[:200], county=r.county, template=rendered.template,
                    subject=rendered.subject[:300], body_text=rendered.text, body_html=rendered.html,
                    sms_params=rendered.sms_params_json, created_at=now)
    session.add(notice)
    session.flush()  # its id, for the deliveries
    for route in plan.routes:
        row = Delivery(notice_id=notice.id, channel=route.channel, attempts=0, created_at=now,
                       address_masked=mask(route.channel, route.address) if route.channel != rules.INBOX else None)
        if route.address is None:
            row.status, row.last_error = SKIPPED, route.skip_reason
        elif route.channel == rules.INBOX:
            row.status, row.sent_at = SENT, now
            session.add(InboxEntry(notice_id=notice.id, recipient=r.key, created_at=now))
        else:
            row.status = PENDING
            row.address_encrypted = cipher.encrypt_text(route.address)
            row.next_attempt_at = quiet_hours.next_allowed(now) if route.channel == rules.SMS else now
        session.add(row)
    log.info("notice %s for %s (%s, event %s): %s", notice.id, r.key, rendered.template,
             envelope["event_id"], ", ".join(
                 f"{x.channel} {'skipped' if x.address is None else mask(x.channel, x.address)}"
                 for x in plan.routes if x.channel != rules.INBOX))
    return 1
