"""Notices delivered over a real SMTP server (aiosmtpd in its own process) and a real
local HTTP server as the SMS gateway, on SQLite and PostgreSQL, with simulated time:
the Chinese subject and body as received, retries on schedule while the server is
down, one e-mail for an event told twice, one SMS after a gateway error, `unknown`
when the connection drops after DATA, refusals failed at once, quiet hours."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from shared import clock
from shared.contracts import events
from tests.integration.notify_support import (COUNTY_MAIL, ENTERPRISE_MAIL, ENTERPRISE_PHONE, NOON,
                                              NotifyHarness, decided, settings_config)
from tests.support.sms_gateway import SmsGateway
from cqo.demo_channels import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp_port(free_port):
    return free_port()


@pytest.fixture
def harness(database, tmp_path, smtp_port):
    made = []

    def make(**kwargs):
        h = NotifyHarness(database, settings_config(tmp_path, smtp_port=smtp_port, **kwargs))
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


def test_a_notice_arrives_with_its_chinese_subject_and_body(harness, smtp_port, tmp_path):
    h = harness()
    h.add_office("county", "130921", "沧县市场监管局", email=COUNTY_MAIL)
    h.add_office("county", "130922", "青县市场监管局", email="qingxian@scjg.example.cn")
    reasons = [{"code": "QUALIFICATION_NOT_MET", "message": "从事质量管理工作不满3年"}]
    assert h.receive(decided(outcome="rejected", reasons=reasons)) == 2  # enterprise, its county
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        assert h.tick(NOON) == 2
        received = {m["To"]: m for m in sink.messages()}
    assert set(received) == {ENTERPRISE_MAIL, COUNTY_MAIL}
    mail = received[ENTERPRISE_MAIL]
    assert mail["Subject"] == "首席质量官岗位设立备案不予备案：沧州渤海钢管有限公司"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert "沧州渤海钢管有限公司" in part and "3f2b8c1e-0000-4000-8000-000000000001（第1版）" in part
        assert "从事质量管理工作不满3年（依据：第六条）" in part and "2026年12月3日" in part
    assert text.startswith("沧州渤海钢管有限公司：") and "下一步：请按上述原因补正后" in text
    assert "请告知并指导企业补正" in received[COUNTY_MAIL].get_body(("plain",)).get_content()
    sent = h.deliveries("email")
    assert [(d.status, d.attempts) for d in sent] == [("sent", 1), ("sent", 1)]
    assert {d.address_masked for d in sent} == {"w***@qiye.example.cn", "c***@scjg.example.cn"}
    assert all(ENTERPRISE_MAIL not in (d.provider_answer or "") for d in sent)
    # the enterprise's inbox has it at once; its SMS waits for a gateway (none here)
    assert {(d.channel, d.status) for d in h.deliveries()} == {
        ("inbox", "sent"), ("email", "sent"), ("sms", "skipped")}


def test_smtp_down_for_ten_minutes_is_retried_on_schedule_and_delivered_once(harness, smtp_port, tmp_path):
    h = harness()
    h.receive(decided())
    now, step, tries = NOON, timedelta(seconds=5), []
    sink = SmtpSink(smtp_port, tmp_path / "mail")
    try:
        while now < NOON + timedelta(minutes=30):
            if now >= NOON + timedelta(minutes=10) and sink.process is None:
                sink.start()  # the server is back
            (before,) = h.deliveries("email")
            if h.tick(now):
                assert before.next_attempt_at.replace(tzinfo=now.tzinfo) <= now  # never early
                tries.append(now)
            (row,) = h.deliveries("email")
            if row.status == "sent":
                break
            # never late either: a due delivery is taken on the first tick after it
            assert row.status == "pending" and row.next_attempt_at.replace(tzinfo=now.tzinfo) > now
            now += step
        messages = sink.messages()
    finally:
        sink.stop()
    (row,) = h.deliveries("email")
    assert row.status == "sent" and len(messages) == 1 and row.attempts == len(tries)
    down = [t for t in tries if t < NOON + timedelta(minutes=10)]
    # back-off: each wait between half and all of 30 s doubling (15-30, 30-60, 60-120, ...)
    gaps = [(b - a).total_seconds() for a, b in zip(down, down[1:])]
    for n, gap in enumerate(gaps):
        assert 30 * 2 ** n / 2 <= gap <= 30 * 2 ** n + step.total_seconds(), gaps
    assert 4 <= len(down) <= 6 and row.last_error is None  # 15+30+60+120+240 s at the most


def test_the_same_event_twice_sends_one_email(harness, smtp_port, tmp_path):
    h = harness()
    event = decided()
    assert h.receive(event) == 1
    assert h.receive(event) == 0  # redelivered alone
    assert h.receive(events.batch([decided(2), event])) == 1  # replayed inside another batch
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        h.tick(NOON)
        h.tick(NOON + timedelta(hours=1))
        to = [m["To"] for m in sink.messages()]
    assert to == [ENTERPRISE_MAIL, ENTERPRISE_MAIL]  # one per event: the first and the second
    assert len(h.notices()) == 2


def test_a_gateway_answering_500_then_200_sends_one_sms(harness):
    with SmsGateway(script=[500]) as gateway:
        h = harness(sms_url=gateway.url, SMTP_HOST="")
        h.receive(decided())
        assert h.tick(NOON) == 1
        (sms,) = h.deliveries("sms")
        assert (sms.status, sms.attempts) == ("pending", 1) and "500" in sms.last_error
        assert h.tick(NOON + timedelta(seconds=10)) == 0  # not due yet
        assert h.tick(NOON + timedelta(minutes=1)) == 1
        h.tick(NOON + timedelta(hours=1))
    (sms,) = h.deliveries("sms")
    assert (sms.status, sms.attempts, sms.address_masked) == ("sent", 2, "138****8000")
    assert '"code": "OK"' in sms.provider_answer
    assert len(gateway.requests) == 2 and len(gateway.delivered) == 1
    first, second = gateway.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"] == f"cqo-notify-{sms.id}"
    body = second["body"]
    assert (body["phone"], body["template_code"], body["sign_name"]) == (ENTERPRISE_PHONE, "SMS_301001", "沧州市场监管")
    assert body["params"] == {"name": "沧州渤海钢管有限公司", "kind": "岗位设立", "result": "备案通过"}


def test_a_gateway_refusal_fails_at_once_and_quiet_hours_delay_never_drop(harness):
    with SmsGateway(script=[299]) as gateway:
        h = harness(sms_url=gateway.url, SMTP_HOST="")
        h.receive(decided(1))
        h.tick(NOON)
        (refused,) = h.deliveries("sms")
        assert (refused.status, refused.attempts) == ("failed", 1) and "BUSINESS_LIMIT" in refused.last_error
        late = NOON + timedelta(hours=11)  # 23:00 in Asia/Shanghai
        h.receive(decided(2), now=late)
        quiet = h.deliveries("sms")[1]
        assert quiet.status == "pending" and quiet.next_attempt_at.hour == 0  # 08:00 local = 00:00 UTC
        assert h.tick(late + timedelta(hours=8)) == 0  # 07:00 local: still quiet
        assert h.tick(late + timedelta(hours=9)) == 1  # 08:00 local
    assert h.deliveries("sms")[1].status == "sent" and len(gateway.requests) == 2


def test_a_connection_dropped_after_data_is_unknown_and_not_resent(harness, smtp_port, tmp_path):
    h = harness()
    h.receive(decided())
    with SmtpSink(smtp_port, tmp_path / "mail", mode="drop") as sink:
        h.tick(NOON)
        for minutes in (1, 10, 60, 600):
            assert h.tick(NOON + timedelta(minutes=minutes)) == 0
        arrived = len(sink.files())
    (row,) = h.deliveries("email")
    assert (row.status, row.attempts, arrived) == ("unknown", 1, 1)
    assert "after DATA" in row.last_error and row.next_attempt_at is None


def test_the_operator_retries_what_is_unknown_with_the_cli(harness, smtp_port, tmp_path, db_config):
    h = harness()
    h.receive(decided())
    with SmtpSink(smtp_port, tmp_path / "drop", mode="drop"):
        h.tick(NOON)
    assert h.deliveries("email")[0].status == "unknown"
    env = {**os.environ, "DATABASE_URL": db_config["DATABASE_URL"],
           "DATABASE_SCHEMA": db_config.get("DATABASE_SCHEMA", ""), "DEV_KEYS_DIR": str(tmp_path / "keys")}
    cli = [sys.executable, "-m", "cqo.cli", "notify", "retry"]
    done = subprocess.run(cli + ["--status", "failed"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "已重新排入 0 条投递" in done.stdout, done.stderr
    done = subprocess.run(cli + ["--status", "unknown", "--since", "2026-12-01"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "已重新排入 1 条投递" in done.stdout, done.stderr
    bad = subprocess.run(cli + ["--status", "sent"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "failed 或 unknown" in bad.stderr
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        assert h.tick(clock.now_utc()) == 1
        assert len(sink.files()) == 1
    (row,) = h.deliveries("email")
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_permanent_refusal_fails_at_once_with_the_address_masked(harness, smtp_port, tmp_path):
    h = harness()
    h.receive(decided(email="reject.me@qiye.example.cn"))
    with SmtpSink(smtp_port, tmp_path / "mail"):
        h.tick(NOON)
        assert h.tick(NOON + timedelta(hours=1)) == 0
    (row,) = h.deliveries("email")
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("550") and "r***@qiye.example.cn" in row.last_error
    assert "reject.me@" not in row.last_error


def test_two_dispatchers_on_one_database_send_each_notice_once(harness, smtp_port, tmp_path):
    """Two instances of the service (two dispatchers, each its own SMTP connection) over
    one database: every delivery is claimed by one of them only."""
    import eventlet

    first, second = harness(), harness()
    for n in range(1, 31):
        first.receive(decided(n, email=f"qiye{n}@qiye.example.cn"))
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        workers = [eventlet.spawn(h.tick, NOON) for h in (first, second) for _ in range(3)]
        counts = [w.wait() for w in workers]
        to = sorted(m["To"] for m in sink.messages())
    assert sum(counts) == 30 and len(to) == 30 and len(set(to)) == 30
    assert {d.status for d in first.deliveries("email")} == {"sent"}


def test_events_without_a_contact_use_the_newest_filing_contact(harness):
    h = harness()
    h.add_office("city", None, "市局质量发展科", email="city@scjg.example.cn")
    newer = events.build("register.filing.decided", "x/v2", {
        **events.load(decided(2))[1], "contact_email": "new@qiye.example.cn"}, source="registry",
        occurred_at=NOON + timedelta(days=1), event_id="event:newer")
    older = decided(1, email="old@qiye.example.cn")  # decided earlier, arriving later
    h.receive(events.batch([newer]))
    h.receive(older)
    issued = events.build("register.recommendation.issued", 5, {
        "recommendation_id": 5, "uscc": events.load(older)[1]["uscc"], "county": "130921",
        "appointment_id": 1, "cqo_name": "李四", "id_hmac": "a" * 64, "issuer_role": "city_officer",
        "issuer_county": None, "reason": "抽检不合格", "issued_on": "2026-12-04", "respond_by": "2027-01-04"},
        source="registry", occurred_at=NOON + timedelta(days=2), event_id="event:recommendation:5:issued")
    assert h.receive(issued) == 2  # the enterprise and the city office
    last = [d for d in h.deliveries("email")][-2:]
    assert {d.address_masked for d in last} == {"n***@qiye.example.cn", "c***@scjg.example.cn"}
