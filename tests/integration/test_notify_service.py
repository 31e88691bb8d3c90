"""The notify service as it runs: events from the broker (the same event twice is one
e-mail), delivered by its timer to a real SMTP server, the enterprise's inbox, the
offices' contacts and the delivery log over HTTP with each role's scope."""
from __future__ import annotations

import json

import pytest
import requests
from kombu import Connection, Producer
from nameko.containers import ServiceContainer

from shared.contracts import events
from shared.messaging import topology
from services.notify.service import EVENTS_CONSUMER, build_service
from tests.integration.conftest import purge_queues
from tests.integration.oversight_support import establish
from tests.integration.notify_support import COUNTY_MAIL, ENTERPRISE_MAIL, USCC, decided, settings_config
from tests.integration.registry_support import SECRET, token
from tests.support.factories import resident_id_for, uscc_for
from tests.support.polling import wait_for
from cqo.demo_channels import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def notify(amqp_uri, notify_db_config, tmp_path, free_port):
    """The notify service in-process beside a real SMTP server; yields (base URL, sink)."""
    purge_queues(amqp_uri, [EVENTS_CONSUMER])
    smtp_port, port = free_port(), free_port()
    config = {**settings_config(tmp_path, smtp_port=smtp_port), **notify_db_config,
              "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "AUTH_SECRET": SECRET,
              "DELIVERY_INTERVAL_S": 0.1, "RETRY_BASE_S": 0.2, "SMS_QUIET_HOURS": "off"}
    with SmtpSink(smtp_port, tmp_path / "mail") as sink:
        container = ServiceContainer(build_service(config), config)
        container.start()
        try:
            yield f"http://127.0.0.1:{port}/api/v1", sink
        finally:
            container.stop()


def publish(amqp_uri, event, message_id=None):
    with Connection(amqp_uri) as conn:
        Producer(conn.channel()).publish(
            json.dumps(event, ensure_ascii=False).encode(), exchange=topology.EVENTS,
            routing_key=event["type"], content_type="application/json", content_encoding="utf-8",
            message_id=message_id or event["event_id"], delivery_mode=2)


def call(method, url, role="city_officer", **kw):
    scope = {k: kw.pop(k) for k in ("county", "uscc") if k in kw}
    return requests.request(method, url, headers={"Authorization": token(role, **scope)}, timeout=10, **kw)


def test_events_from_the_broker_become_one_email_each_and_an_inbox(notify, amqp_uri):
    base, sink = notify
    resp = call("POST", base + "/contacts", role="county_officer", county="130921",
                json={"level": "county", "county": "130921", "name": "沧县市场监管局", "email": COUNTY_MAIL})
    assert resp.status_code == 201, resp.text
    assert resp.json()["email_masked"] == "c***@scjg.example.cn"
    event = decided()
    publish(amqp_uri, event)
    publish(amqp_uri, event, message_id="another-message-same-event")
    publish(amqp_uri, event)
    wait_for(lambda: len(sink.files()) >= 2, 30, "two e-mails (enterprise and county)")
    def settled():
        body = call("GET", base + "/deliveries?county=130921").json()
        return body if body["total"] == 4 and all(i["status"] in ("sent", "skipped") for i in body["items"]) else None
    log = wait_for(settled, 20, "the delivery log")
    assert {(i["channel"], i["status"], i["address_masked"]) for i in log["items"]} == {
        ("inbox", "sent", None), ("email", "sent", "w***@qiye.example.cn"),
        ("email", "sent", "c***@scjg.example.cn"), ("sms", "skipped", None)}  # no SMS gateway here
    assert sorted(m["To"] for m in sink.messages()) == sorted([ENTERPRISE_MAIL, COUNTY_MAIL])
    # the duplicates were consumed and sent nothing more
    assert len(sink.files()) == 2 and ENTERPRISE_MAIL not in json.dumps(log, ensure_ascii=False)

    # the enterprise's inbox
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=USCC).json()
    assert inbox["total"] == 1 and inbox["unread"] == 1
    (entry,) = inbox["items"]
    assert entry["subject"] == "首席质量官岗位设立备案备案通过：沧州渤海钢管有限公司" and "下一步" in entry["body"]
    assert call("GET", base + "/inbox/unread-count", role="enterprise", uscc=USCC).json() == {"unread": 1}
    read = call("POST", base + f"/inbox/{entry['id']}/read", role="enterprise", uscc=USCC)
    assert read.status_code == 200 and read.json()["read_at"]
    assert call("GET", base + "/inbox/unread-count", role="enterprise", uscc=USCC).json() == {"unread": 0}
    other = call("POST", base + f"/inbox/{entry['id']}/read", role="enterprise", uscc=uscc_for("130921", 2))
    assert other.status_code == 404 and other.json()["code"] == "INBOX_ENTRY_NOT_FOUND"
    assert call("GET", base + "/inbox", role="city_officer").status_code == 403

    # the delivery log per notice, and its county scope
    notice_id = log["items"][0]["notice_id"]
    per_notice = call("GET", base + f"/notices/{notice_id}/deliveries", role="county_officer", county="130921")
    assert per_notice.status_code == 200 and per_notice.json()["items"]
    assert call("GET", base + f"/notices/{notice_id}/deliveries", role="county_officer",
                county="130922").status_code == 404
    assert call("GET", base + "/deliveries", role="county_officer", county="130922").json()["total"] == 0
    assert call("GET", base + "/deliveries?county=130921", role="county_officer",
                county="130922").status_code == 403
    assert call("GET", base + "/deliveries", role="enterprise", uscc=USCC).status_code == 403


def test_offices_keep_their_own_contacts(notify):
    base, _ = notify
    county = dict(role="county_officer", county="130921")
    mine = call("POST", base + "/contacts", json={"level": "county", "county": "130921", "name": "沧县局",
                                                   "phone": "13900000001"}, **county)
    assert mine.status_code == 201 and mine.json()["phone_masked"] == "139****0001"
    for body in ({"level": "county", "county": "130922", "name": "青县局", "email": "q@x.cn"},
                 {"level": "city", "name": "市局", "email": "c@x.cn"}):
        assert call("POST", base + "/contacts", json=body, **county).status_code == 403
    city = call("POST", base + "/contacts", json={"level": "city", "name": "市局质量科", "email": "city@x.cn"})
    assert city.status_code == 201
    assert call("PUT", base + f"/contacts/{city.json()['id']}", json={"level": "city", "name": "改",
                                                                      "email": "c@x.cn"}, **county).status_code == 404
    bad = call("POST", base + "/contacts", json={"level": "county", "name": "无县"})
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_FAILED"
    assert [c["name"] for c in call("GET", base + "/contacts", **county).json()["items"]] == ["沧县局"]
    assert len(call("GET", base + "/contacts").json()["items"]) == 2
    changed = call("PUT", base + f"/contacts/{mine.json()['id']}", json={
        "level": "county", "county": "130921", "name": "沧县市场监管局", "email": "cx@x.cn"}, **county)
    assert changed.status_code == 200 and changed.json()["email_masked"] == "c***@x.cn"
    assert call("DELETE", base + f"/contacts/{mine.json()['id']}", **county).status_code == 204
    assert call("GET", base + "/contacts", **county).json()["items"] == []


def test_a_decision_of_the_registry_reaches_the_enterprise_at_the_filing_contact(registry, notify):
    """The registry's own event, with the contact its filing gave (the CQO's phone and
    e-mail), becomes the enterprise's e-mail: the contract extended at its source."""
    county, _, _ = registry
    base, sink = notify
    filing = establish(county, n=7)
    wait_for(lambda: sink.files(), 30, "the enterprise's e-mail")
    (mail,) = sink.messages()
    assert mail["To"] == filing["cqo"]["email"]
    assert mail["Subject"] == f"首席质量官岗位设立备案备案通过：{filing['enterprise']['name']}"
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=filing["enterprise"]["uscc"]).json()
    assert inbox["total"] == 1
    log = call("GET", base + "/deliveries").json()
    assert {(i["channel"], i["status"]) for i in log["items"]} == {
        ("inbox", "sent"), ("email", "sent"), ("sms", "skipped")}
    # no ID number anywhere a reader sees: the e-mail's parts, the inbox, the delivery log
    number = resident_id_for(7)
    texts = [mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content(),
             json.dumps(inbox, ensure_ascii=False), json.dumps(log, ensure_ascii=False)]
    for text in texts:
        assert number not in text.upper() and not events.holds_id_number(text)
    assert filing["cqo"]["email"] not in json.dumps(log, ensure_ascii=False)
