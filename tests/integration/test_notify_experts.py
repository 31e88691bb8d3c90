"""Experts' notices, on the real broker, SQLite and PostgreSQL: the talent service
announces an expert's contact only with their consent (`talent.expert.designated|
updated`, through its outbox), notify keeps it and reaches an invited expert by e-mail
and SMS; a withdrawn consent stops the contact at once, queued deliveries included;
an expert's token reads only that expert's inbox."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from shared.contracts import events
from shared.db import Database
from services.notify.models import ExpertContact
from tests.integration.notify_support import NOON, NotifyHarness, settings_config
from tests.integration.registry_support import token
from tests.integration.test_notify_service import notify, publish  # noqa: F401 - the fixture
from tests.integration.test_talent_pool import _accepted, _publish, designate, member_of
from tests.support.polling import wait_for
from cqo.demo_channels import SmtpSink

pytestmark = pytest.mark.integration

EXPERT = "0b7f2c1e-4d3a-4f6b-9c8d-1a2b3c4d5e6f"
PHONE, EMAIL = "13912345678", "zhang.zhuanjia@example.cn"
NIGHT = NOON + timedelta(hours=11)  # 23:00 in Asia/Shanghai: SMS waits for 08:00


def expert_event(revision, *, consent=True, event_type="talent.expert.designated", expert_id=EXPERT):
    data = {"expert_id": expert_id, "revision": revision, "name": "张专家", "county": "130921",
            "status": "active", "consent_to_contact": consent,
            "phone": PHONE if consent else None, "email": EMAIL if consent else None}
    return events.build(event_type, expert_id, data, source="talent", occurred_at=NOON,
                        event_id=f"event:expert:{expert_id}:{revision}")


def invited(draw_id, expert_id=EXPERT):
    return events.build("talent.draw.invited", draw_id, {"draw_id": draw_id, "purpose": "质量诊断",
                                                         "expert_id": expert_id, "role": "member"},
                        source="talent", occurred_at=NOON, event_id=f"event:draw:{draw_id}:invited:{expert_id}")


@pytest.fixture
def harness(database, tmp_path, free_port):
    smtp_port = free_port()
    templates = {"talent.draw.invited": "SMS_301009"}
    h = NotifyHarness(database, settings_config(tmp_path, smtp_port=smtp_port, sms_url="http://127.0.0.1:9/send",
                                                SMS_TEMPLATES=templates))
    yield h, smtp_port
    h.close()


def test_an_expert_is_reached_with_consent_and_no_longer_once_it_is_withdrawn(harness, tmp_path):
    h, smtp_port = harness
    h.receive(expert_event(5))
    h.receive(expert_event(3, consent=False, event_type="talent.expert.updated"))  # older, late: loses
    assert h.receive(invited("d1"), now=NIGHT) == 1
    by_channel = {d.channel: d for d in h.deliveries()}
    assert by_channel["email"].address_masked == "z***@example.cn" and by_channel["email"].status == "pending"
    assert by_channel["sms"].address_masked == "139****5678" and by_channel["sms"].next_attempt_at > NIGHT
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        assert h.tick(NIGHT) == 1  # the e-mail; the SMS waits for the end of the quiet hours
        (mail,) = sink.messages()
    assert mail["To"] == EMAIL and "质量诊断" in mail.get_body(("plain",)).get_content()

    # consent withdrawn: the SMS still waiting is skipped, the contact forgotten
    h.receive(expert_event(7, consent=False, event_type="talent.expert.updated"))
    sms = h.deliveries("sms")[0]
    assert (sms.status, sms.address_encrypted, sms.last_error) == ("skipped", None, "专家未同意被联系（已撤回同意）")
    assert h.deliveries("email")[0].status == "sent"  # what was sent stays in the log
    with h.db.unit_of_work() as uow:
        row = uow.session.scalars(select(ExpertContact)).one()
        assert (row.consent_to_contact, row.phone_encrypted, row.email_encrypted, row.revision) == (
            False, None, None, 7)
    h.receive(invited("d2"))
    later = [d for d in h.deliveries() if d.notice_id != sms.notice_id]
    assert {(d.channel, d.status, d.last_error) for d in later} == {
        ("inbox", "sent", None), ("email", "skipped", "专家未同意被联系"), ("sms", "skipped", "专家未同意被联系")}

    # consent given again: the contact is used again for what comes next
    h.receive(expert_event(9, event_type="talent.expert.updated"))
    h.receive(invited("d3"))
    assert {d.channel for d in h.deliveries() if d.status == "pending"} == {"email", "sms"}
    # an expert never announced: the invitation reaches the inbox only
    h.receive(invited("d4", expert_id=str(uuid.uuid4())))
    assert [d.last_error for d in h.deliveries("email")][-1] == "没有电子邮箱地址"


def _inbox(base, expert_id, path="/inbox", method="GET"):
    return requests.request(method, base + path, timeout=10,
                            headers={"Authorization": token("expert", expert_id=expert_id)})


def _learned(notify_db_config, expert_id):
    """(consent, has phone, has e-mail) as notify knows the expert, or None."""
    db = Database(notify_db_config["DATABASE_URL"], schema=notify_db_config.get("DATABASE_SCHEMA"))
    try:
        with db.unit_of_work() as uow:
            row = uow.session.get(ExpertContact, expert_id)
            return None if row is None else (row.consent_to_contact, bool(row.phone_encrypted),
                                              bool(row.email_encrypted))
    finally:
        db.dispose()


def test_talent_tells_notify_and_the_expert_reads_only_their_own_inbox(talent, notify, amqp_uri,
                                                                        notify_db_config):
    talent_base, _, _ = talent
    base, sink = notify
    appointment = _accepted(71001, n=11)
    _publish(amqp_uri, "register.appointment.accepted", 71001, appointment)
    member = wait_for(lambda: member_of(talent_base, appointment["uscc"]), 20, "the pool member")
    created = designate(talent_base, member["id"], phone=PHONE, email=EMAIL, consent_to_contact=True)
    assert created.status_code == 201, created.text
    expert_id = created.json()["id"]
    assert "phone" not in created.json() and created.json()["phone_masked"] == "139****5678"
    wait_for(lambda: _learned(notify_db_config, expert_id) == (True, True, True), 30, "notify learns the contact")

    publish(amqp_uri, invited("d-real-1", expert_id))
    wait_for(lambda: sink.files(), 30, "the expert's e-mail")
    (mail,) = sink.messages()
    assert mail["To"] == EMAIL

    inbox = _inbox(base, expert_id).json()
    assert inbox["total"] == 1 and inbox["unread"] == 1 and "质量诊断" in inbox["items"][0]["body"]
    entry_id = inbox["items"][0]["id"]
    other = str(uuid.uuid4())
    assert _inbox(base, other).json()["total"] == 0
    assert _inbox(base, other, f"/inbox/{entry_id}/read", "POST").status_code == 404
    assert _inbox(base, expert_id, "/inbox/unread-count").json() == {"unread": 1}
    assert _inbox(base, expert_id, f"/inbox/{entry_id}/read", "POST").json()["read_at"]
    assert _inbox(base, expert_id, "/inbox/unread-count").json() == {"unread": 0}
    for path in ("/deliveries", "/contacts"):  # nothing else of notify's
        refused = _inbox(base, expert_id, path)
        assert refused.status_code == 403 and refused.json()["code"] == "AUTH_FORBIDDEN"
    refused = requests.get(talent_base + "/api/v1/expertise", timeout=10,
                           headers={"Authorization": token("expert", expert_id=expert_id)})
    assert refused.status_code == 403  # "any role" endpoints are not an expert's

    # the expert withdraws consent at the talent service: the next invitation is skipped
    withdrawn = requests.post(f"{talent_base}/api/v1/experts/{expert_id}/consent", timeout=10,
                              json={"consent_to_contact": False}, headers={"Authorization": token("city_officer")})
    assert withdrawn.status_code == 200, withdrawn.text
    wait_for(lambda: _learned(notify_db_config, expert_id) == (False, False, False), 30, "notify forgets it")
    publish(amqp_uri, invited("d-real-2", expert_id))

    def skipped():
        log = requests.get(base + "/deliveries?channel=email", timeout=10,
                           headers={"Authorization": token("city_officer")}).json()
        return log if any(i["last_error"] == "专家未同意被联系" for i in log["items"]) else None
    log = wait_for(skipped, 30, "the invitation after the withdrawal, skipped")
    text = json.dumps(log, ensure_ascii=False)
    assert EMAIL not in text and PHONE not in text and "z***@example.cn" in text
    assert len(sink.files()) == 1

    # designated without consent: notify hears of the expert, never of a contact
    second = _accepted(71002, n=12)
    _publish(amqp_uri, "register.appointment.accepted", 71002, second)
    member = wait_for(lambda: member_of(talent_base, second["uscc"]), 20, "the second member")
    refusing = designate(talent_base, member["id"], phone="13900000002", consent_to_contact=False)
    assert refusing.status_code == 201, refusing.text
    wait_for(lambda: _learned(notify_db_config, refusing.json()["id"]) == (False, False, False), 30,
             "notify hears of the expert without contact")


def test_experts_designated_before_are_announced_once(talent):
    """The first start that knows how announces the experts designated before (with
    their contact only when they consented), once."""
    from sqlalchemy import delete, text

    from services.talent.pool.contacts_backfill import NAME, announce_all
    from services.talent.pool.models import PoolBackfill
    from shared.keys import Keys
    from tests.support.talent_pool import add_expert

    _, db, config = talent
    cipher = Keys(dict(config)).id_cipher()
    with db.unit_of_work() as uow:
        assert uow.session.get(PoolBackfill, NAME).completed_at is not None  # done at this start: none then
        yes, no = add_expert(uow.session, 1), add_expert(uow.session, 2, consent=False)
        for expert in (yes, no):
            expert.phone_encrypted, expert.email_encrypted = cipher.encrypt_text(PHONE), cipher.encrypt_text(EMAIL)
        uow.session.execute(delete(PoolBackfill).where(PoolBackfill.name == NAME))
        uow.commit()
        ids = (yes.id, no.id)
    assert announce_all(db, cipher) == 2
    assert announce_all(db, cipher) == 0
    with db.unit_of_work() as uow:
        (payload,) = uow.session.execute(text(
            "SELECT payload FROM outbox_messages WHERE routing_key = 'talent.expert.updated'")).scalars()
    told = {e["data"]["expert_id"]: e["data"] for e in json.loads(payload)["events"]}
    assert (told[ids[0]]["phone"], told[ids[0]]["email"], told[ids[0]]["consent_to_contact"]) == (PHONE, EMAIL, True)
    assert (told[ids[1]]["phone"], told[ids[1]]["email"], told[ids[1]]["consent_to_contact"]) == (None, None, False)
