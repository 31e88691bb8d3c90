"""Helpers of the notify service's tests: its database, settings, events as the
registry announces them, and office contacts."""
from __future__ import annotations

from datetime import datetime, timezone

from shared import clock
from shared.contracts import events
from shared.keys import Keys
from shared.migrate import upgrade
from services.notify.delivery import intake
from services.notify.delivery.dispatch import Dispatcher
from services.notify.models import Delivery, Notice, OfficeContact
from services.notify.service import MIGRATIONS
from services.notify.settings import Settings
from tests.support.factories import uscc_for

USCC = uscc_for("130921", 1)
ENTERPRISE_MAIL = "wang.lian@qiye.example.cn"
ENTERPRISE_PHONE = "13800138000"
COUNTY_MAIL = "cangxian@scjg.example.cn"
# 12:00 in Asia/Shanghai: outside the SMS quiet hours
NOON = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)


def settings_config(tmp_path, *, smtp_port=None, sms_url=None, **extra) -> dict:
    config = {"DEV_KEYS_DIR": str(tmp_path / "keys"), "SMTP_HOST": "127.0.0.1" if smtp_port else "",
              "SMTP_PORT": smtp_port or "", "SMTP_FROM": "noreply@cqo.example.cn", "SMTP_TIMEOUT_S": 5,
              "SMS_GATEWAY_URL": sms_url or "", "SMS_TIMEOUT_S": 2,
              "SMS_TEMPLATES": {"register.filing.decided": "SMS_301001",
                                "register.recommendation.issued": "SMS_301002"}}
    config.update(extra)
    return config


class NotifyHarness:
    """The notify use cases on a real database, with an explicit clock."""

    def __init__(self, database, config: dict):
        upgrade(database, MIGRATIONS)
        self.db = database
        self.settings = Settings.from_config(config)
        self.cipher = Keys(dict(config)).id_cipher()
        self.dispatcher = Dispatcher(self.settings, self.cipher)

    def close(self):
        self.dispatcher.close()

    def add_office(self, level, county, name, *, email=None, phone=None):
        with self.db.unit_of_work() as uow:
            uow.session.add(OfficeContact(level=level, county=county, name=name, email=email, phone=phone,
                                          updated_by="test", updated_at=clock.now_utc()))
            uow.commit()

    def receive(self, body, now=NOON) -> int:
        templates = frozenset(self.settings.sms.templates) if self.settings.sms.url else None
        with self.db.unit_of_work() as uow:
            made = intake.receive(uow, cipher=self.cipher, sms_templates=templates,
                                  quiet_hours=self.settings.quiet_hours,
                                  received=events.load_all(body), now=now)
            uow.commit()
        return made

    def tick(self, now) -> int:
        return self.dispatcher.run(self.db, now)

    def deliveries(self, channel=None) -> list[Delivery]:
        with self.db.unit_of_work() as uow:
            rows = uow.session.query(Delivery).order_by(Delivery.id).all()
            uow.session.expunge_all()  # kept as read, past the unit of work's rollback
        return [r for r in rows if channel in (None, r.channel)]

    def notices(self) -> list[Notice]:
        with self.db.unit_of_work() as uow:
            rows = uow.session.query(Notice).order_by(Notice.id).all()
            uow.session.expunge_all()
            return rows


def decided(n=1, *, outcome="accepted", reasons=(), email=ENTERPRISE_MAIL, phone=ENTERPRISE_PHONE,
            event_id=None) -> dict:
    filing_id = f"3f2b8c1e-0000-4000-8000-{n:012d}"
    data = {"filing_id": filing_id, "version": 1, "county": "130921", "uscc": USCC,
            "enterprise_name": "沧州渤海钢管有限公司", "kind": "establishment", "outcome": outcome,
            "reasons": list(reasons), "late": False, "days_late": 0, "appointment_id": n,
            "contact_name": "王联络", "contact_phone": phone, "contact_email": email}
    return events.build("register.filing.decided", f"{filing_id}/v1", data, source="registry",
                        occurred_at=NOON, event_id=event_id or f"event:filing:{filing_id}:v1:decided")
