"""Deliveries out, picked by the timer: those due (`next_attempt_at` passed) are claimed
in one short transaction (`sending`, one more attempt), sent outside it, and each
outcome recorded in its own. Nothing sleeps: a retry is a later `next_attempt_at`.

- sent: `sent_at` and the provider's answer; a row is only ever sent from `sending`,
  and there is one row per (notice, channel), so at most one success per (event,
  recipient, channel).
- retry: back-off with jitter, until RETRY_MAX_ATTEMPTS, then failed.
- failed (a permanent refusal) and unknown (may have been delivered) stay as they are
  until an operator retries them.
- SMS in quiet hours wait for their end, without an attempt being counted.
- a row left `sending` by a process that died mid-send becomes unknown after the lease.
"""
from __future__ import annotations

import json
import logging
import queue
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import eventlet
from sqlalchemy import select, update

from shared.db import Database
from shared.personal_data import IdCipher, mask_email, mask_phone
from services.notify.channels import FAILED, RETRY, SENT, UNKNOWN, Outcome
from services.notify.channels.email import EmailChannel, build_message
from services.notify.channels.sms import SmsChannel
from services.notify.domain.recipients import EMAIL, SMS
from services.notify.models import Delivery, Notice
from services.notify.settings import Settings

log = logging.getLogger(__name__)
SENDING = "sending"
_EMAILS = re.compile(r"[^\s<>\"'@:;,]+@[A-Za-z0-9.-]+")
_MOBILES = re.compile(r"(?<![0-9])(\+?86)?1[3-9][0-9]{9}(?![0-9])")


def scrub(text: str | None) -> str | None:
    """A server's or gateway's answer with the addresses it echoes masked (an SMTP
    refusal names the mailbox, a gateway the phone): the log shows them masked."""
    if not text:
        return text
    text = _EMAILS.sub(lambda m: mask_email(m.group(0)), text)
    return _MOBILES.sub(lambda m: mask_phone(m.group(0)), text)
LEASE = timedelta(minutes=10)
RECORD_EVERY = 50  # outcomes recorded together


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    address: str
    masked: str
    attempts: int
    event_type: str
    subject: str
    text: str
    html: str
    sms_params: dict


class Dispatcher:
    """The channels (their connections kept between ticks) and the rules of one service."""

    def __init__(self, settings: Settings, cipher: IdCipher, *, rng=None):
        self.settings = settings
        self.cipher = cipher
        self.rng = rng
        # SMTP_CONNECTIONS slots, each with its own SMTP connection (kept open, reused
        # message after message) and gateway session: a batch is sent over them at once
        self._slots: queue.LifoQueue = queue.LifoQueue()
        self._all = [(EmailChannel(settings.smtp), SmsChannel(settings.sms))
                     for _ in range(settings.connections)]
        for slot in self._all:
            self._slots.put(slot)
        self._pool = eventlet.GreenPool(settings.connections)

    def close(self) -> None:
        for email, sms in self._all:
            email.close()
            sms.close()

    def enabled_channels(self) -> list[str]:
        return [c for c, on in ((EMAIL, bool(self.settings.smtp.host)), (SMS, bool(self.settings.sms.url))) if on]

    def run(self, db: Database, now: datetime) -> int:
        """One tick: claim what is due, send it, record it; returns how many were tried."""
        self.expire_stale(db, now)
        claimed = self.claim(db, now)
        done: list[tuple[Claimed, Outcome]] = []
        for item, outcome in self._pool.imap(lambda item: (item, self.send(item)), claimed):
            done.append((item, outcome))
            if len(done) >= RECORD_EVERY:
                self.record_all(db, done, now)
                done = []
        self.record_all(db, done, now)
        return len(claimed)

    def claim(self, db: Database, now: datetime) -> list[Claimed]:
        channels = self.enabled_channels()
        if not channels:
            return []
        quiet_until = self.settings.quiet_hours.next_allowed(now)
        claimed, quiet = [], []
        with db.unit_of_work() as uow:
            query = (select(Delivery.id, Delivery.channel, Delivery.address_encrypted, Delivery.address_masked,
                            Delivery.attempts, Notice.event_type, Notice.subject, Notice.body_text,
                            Notice.body_html, Notice.sms_params)
                     .join(Notice, Notice.id == Delivery.notice_id)
                     .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                            Delivery.channel.in_(channels))
                     .order_by(Delivery.next_attempt_at, Delivery.id).limit(self.settings.batch))
            if db.is_postgres:  # two instances never take the same row
                query = query.with_for_update(skip_locked=True, of=Delivery)
            for row in uow.session.execute(query).all():
                if row.channel == SMS and quiet_until > now:
                    quiet.append(row.id)  # quiet hours: later, not dropped
                    continue
                claimed.append(Claimed(
                    row.id, row.channel, self.cipher.decrypt(row.address_encrypted), row.address_masked or "",
                    (row.attempts or 0) + 1, row.event_type, row.subject, row.body_text, row.body_html,
                    json.loads(row.sms_params)))
            if quiet:
                uow.session.execute(update(Delivery).where(Delivery.id.in_(quiet))
                                    .values(next_attempt_at=quiet_until))
            if claimed:  # one statement for the whole batch
                uow.session.execute(update(Delivery).where(Delivery.id.in_([c.id for c in claimed]))
                                    .values(status=SENDING, last_attempt_at=now,
                                            attempts=Delivery.attempts + 1))
            uow.commit()
        return claimed

    def send(self, item: Claimed) -> Outcome:
        email, sms = self._slots.get()
        try:
            if item.channel == EMAIL:
                msg = build_message(sender=self.settings.smtp.sender, to=item.address,
                                    subject=item.subject, text=item.text, html=item.html,
                                    delivery_id=item.id)
                return email.send(msg, item.address)
            template = sms.template(item.event_type)
            if not template:
                return Outcome(FAILED, f"no SMS template registered for {item.event_type}")
            return sms.send(delivery_id=item.id, phone=item.address, template_code=template,
                            params=item.sms_params)
        except Exception as exc:  # a bug must not leave the row claimed for ever
            log.exception("delivery %s (%s) raised", item.id, item.channel)
            return Outcome(UNKNOWN, f"{type(exc).__name__} while sending")
        finally:
            self._slots.put((email, sms))

    def outcome_values(self, item: Claimed, outcome: Outcome, now: datetime) -> dict:
        values: dict = {"last_error": scrub(outcome.error), "provider_answer": scrub(outcome.answer)}
        result = outcome.result
        if result == RETRY and self.settings.backoff.exhausted(item.attempts):
            result = FAILED
            values["last_error"] = f"gave up after {item.attempts} attempts: {values['last_error']}"[:1000]
        if result == SENT:
            values.update(status="sent", sent_at=now, last_error=None)
        elif result == RETRY:
            at = now + self.settings.backoff.delay(item.attempts, self.rng)
            if item.channel == SMS:
                at = self.settings.quiet_hours.next_allowed(at)
            values.update(status="pending", next_attempt_at=at)
        else:
            values.update(status=result, next_attempt_at=None)
        return values

    def record(self, db: Database, item: Claimed, outcome: Outcome, now: datetime) -> None:
        self.record_all(db, [(item, outcome)], now)

    def record_all(self, db: Database, done: list[tuple["Claimed", Outcome]], now: datetime) -> None:
        """Outcomes in one transaction (a commit per e-mail would cost more than the
        e-mail); rows with the same values in one UPDATE. Only a row still `sending` is
        changed. A crash before this leaves them `sending`: unknown after the lease,
        never resent by itself."""
        if not done:
            return
        groups: dict[tuple, list[int]] = {}
        for item, outcome in done:
            values = self.outcome_values(item, outcome, now)
            groups.setdefault(tuple(sorted(values.items())), []).append(item.id)
            level = logging.INFO if values["status"] in ("sent", "pending") else logging.WARNING
            log.log(level, "delivery %s %s to %s, attempt %s: %s%s", item.id, item.channel, item.masked,
                    item.attempts, values["status"],
                    f" ({values['last_error']})" if values.get("last_error") else "")
        with db.unit_of_work() as uow:
            for values, ids in groups.items():
                uow.session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == SENDING)
                                    .values(**dict(values)))
            uow.commit()

    def expire_stale(self, db: Database, now: datetime) -> None:
        with db.unit_of_work() as uow:
            done = uow.session.execute(
                update(Delivery).where(Delivery.status == SENDING, Delivery.last_attempt_at < now - LEASE)
                .values(status=UNKNOWN, last_error="interrupted while sending (the service stopped)"))
            if done.rowcount:
                log.warning("%s deliveries left sending by a stopped worker are now unknown", done.rowcount)
            uow.commit()
