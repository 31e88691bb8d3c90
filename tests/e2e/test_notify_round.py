"""A round of filings told to the parties through the real services (issue 11, "Must
show": the end-to-end test and the ID-number audit over a whole round).

The registry, one county filing service and notify run as `cqo serve` processes (DEBUG
logging) on a vhost of the test's own, on PostgreSQL and on SQLite; notify sends e-mail
to a real SMTP server (aiosmtpd, cqo/demo_channels.py) and SMS to a local HTTP
gateway (tests/support/sms_gateway.py). The round, once per database:

1. the enterprise files the establishment of its CQO; the county approves it (a
   proactive filing: forwarded at once); the city accepts it;
2. the enterprise files the change of its CQO, which took effect two months ago
   (art. 14: one month to report it);
3. the county returns it (退回); the enterprise corrects it, first with the new CQO's
   ID number mistyped (refused, 422), then right; the county approves and forwards it;
4. the city accepts it as a change reported late (register.filing.late).

Then each party must have exactly its notices: the enterprise its e-mails, SMS and
inbox entries, its county office its e-mails, the city office nothing; and a PiiAudit
that watched the whole round (every exchange tapped, every log file, every HTTP answer,
every notify table, every e-mail and SMS) finds no ID number in clear.
"""
from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import MetaData, select

from services.filing.domain import ACCEPTED, FORWARDED, RETURNED
from services.registry.domain.deadlines import lateness
from cqo.service_support import default_config_path
from shared import config as config_files
from shared.clock import today
from services.notify.settings import Settings
from tests.e2e.support import Deployment, city, enterprise, filing_form, officer, wait_for
from tests.support.pii import IdCase, PiiAudit, mistyped
from tests.support.sms_gateway import SmsGateway
from cqo.demo_channels import SmtpSink

pytestmark = pytest.mark.e2e

COUNTY = "130921"
N = 7301                       # the enterprise
FIRST_CQO, NEW_CQO = 7301, 7302  # its CQOs (persons of tests.support.factories)
NEW_CQO_PHONE = "13800138002"
COUNTY_OFFICE = {"level": "county", "county": COUNTY, "name": "沧县市场监督管理局", "person": "张科长",
                 "email": "cangxian@scjg.example.cn", "phone": "13900139000"}
CITY_OFFICE = {"level": "city", "name": "沧州市市场监督管理局质量发展科", "person": "刘科长",
               "email": "zhiliang@scjg.example.cn", "phone": "13900139001"}
RETURN_COMMENT = "任命书文号与附件不一致，请核对后重新提交"
SETTLE_S = 120
# the SMS templates registered with the gateway: the ones notify ships with
TEMPLATES = Settings.from_config(config_files.load(default_config_path("notify"), environ={})).sms.templates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(repr=False)  # its forms hold the ID numbers: a failure report must not show them
class Round:
    d: Deployment
    audit: PiiAudit
    sink: SmtpSink
    gateway: SmsGateway
    name: str                  # the enterprise's
    uscc: str
    establishment: dict        # the forms filed
    change: dict
    establishment_id: str = ""
    change_id: str = ""
    effective_on: date | None = None
    submitted_on: date | None = None  # the change's, to the county (art. 14's clock stops)
    offices: dict = field(default_factory=dict)   # level -> contact id
    inbox: dict = field(default_factory=dict)     # GET /inbox as the enterprise
    log: list = field(default_factory=list)       # GET /deliveries as the city
    county_notices: dict = field(default_factory=dict)  # GET /notices at the county, as its officer

    @property
    def county_url(self) -> str:
        return self.d.county_url(COUNTY)


def _expect(audit: PiiAudit, resp: requests.Response, status: int, what: str) -> dict:
    assert resp.status_code == status, f"{what}: HTTP {resp.status_code} {audit.redact(resp.text)[:600]}"
    return resp.json() if resp.content else {}


def _county_status(r: Round, filing_id: str) -> str:
    resp = r.audit.request("GET", f"{r.county_url}/filings/{filing_id}", headers=officer(COUNTY))
    return _expect(r.audit, resp, 200, "GET /filings/{id}")["status"]


def _review(r: Round, filing_id: str, decision: str, comment: str, status: str) -> None:
    resp = r.audit.request("POST", f"{r.county_url}/filings/{filing_id}/review", headers=officer(COUNTY),
                           json={"decision": decision, "comment": comment})
    assert _expect(r.audit, resp, 200, f"review {decision}")["status"] == status


def _settled(r: Round, expected_deliveries: int) -> bool:
    """Every event announced and taken, every delivery made (none pending or sending)."""
    d = r.d
    if any(d.outbox_backlog(name) for name in ("registry", f"filing_{COUNTY}")):
        return False
    if d.queue_depth("notify.events"):
        return False
    statuses = dict(d.rows(d.db("notify"), "SELECT status, count(*) FROM deliveries GROUP BY status"))
    return sum(statuses.values()) >= expected_deliveries and not (
        statuses.get("pending") or statuses.get("sending"))


def play(r: Round) -> Round:
    audit, ent = r.audit, enterprise(r.uscc)
    for level, office in (("county", COUNTY_OFFICE), ("city", CITY_OFFICE)):
        resp = audit.request("POST", r.d.notify_url + "/contacts", json=office, headers=city())
        r.offices[level] = _expect(audit, resp, 201, f"the {level} office's contact")["id"]

    # 1. the establishment, filed, approved, accepted
    resp = audit.request("POST", r.county_url + "/filings", json=r.establishment, headers=ent)
    r.establishment_id = _expect(audit, resp, 201, "POST /filings (establishment)")["id"]
    _review(r, r.establishment_id, "approve", "材料齐全", FORWARDED)
    wait_for(lambda: _county_status(r, r.establishment_id) == ACCEPTED, SETTLE_S,
             "the city's acceptance of the establishment")

    # 2.-3. the change, returned, corrected (a mistyped ID number refused first), forwarded
    resp = audit.request("POST", r.county_url + "/filings", json=r.change, headers=ent)
    filed = _expect(audit, resp, 201, "POST /filings (change)")
    r.change_id, r.submitted_on = filed["id"], date.fromisoformat(filed["submitted_to_county_on"])
    _review(r, r.change_id, "return", RETURN_COMMENT, RETURNED)
    corrected = json.loads(json.dumps(r.change))
    corrected["appointment"]["letter_number"] += "（更正）"
    typo = json.loads(json.dumps(corrected))
    typo["cqo"]["id_number"] = mistyped(corrected["cqo"]["id_number"])
    resp = audit.request("PUT", f"{r.county_url}/filings/{r.change_id}", json=typo, headers=ent)
    problem = _expect(audit, resp, 422, "PUT /filings/{id} with the ID number mistyped")
    assert "id_number" in json.dumps(problem.get("errors"), ensure_ascii=False), audit.redact(resp.text)
    resp = audit.request("PUT", f"{r.county_url}/filings/{r.change_id}", json=corrected, headers=ent)
    assert _expect(audit, resp, 200, "PUT /filings/{id}")["version"] == 2
    _review(r, r.change_id, "approve", "材料齐全", FORWARDED)

    # 4. accepted, late
    wait_for(lambda: _county_status(r, r.change_id) == ACCEPTED, SETTLE_S, "the city's acceptance of the change")
    wait_for(lambda: _settled(r, sum(EXPECTED_DELIVERIES.values())), SETTLE_S,
             lambda: f"every notice delivered: {r.d.rows(r.d.db('notify'), 'SELECT status, count(*) FROM deliveries GROUP BY status')}")

    # what the parties and the officers read
    resp = audit.request("GET", r.d.notify_url + "/inbox", headers=ent, params={"page_size": 100})
    r.inbox = _expect(audit, resp, 200, "GET /inbox")
    resp = audit.request("GET", r.d.notify_url + "/deliveries", headers=city(), params={"page_size": 100})
    r.log = _expect(audit, resp, 200, "GET /deliveries (city)")["items"]
    resp = audit.request("GET", r.d.notify_url + "/deliveries", headers=officer(COUNTY), params={"page_size": 100})
    _expect(audit, resp, 200, "GET /deliveries (county)")
    for notice_id in sorted({item["notice_id"] for item in r.log}):
        resp = audit.request("GET", f"{r.d.notify_url}/notices/{notice_id}/deliveries", headers=city())
        _expect(audit, resp, 200, "GET /notices/{id}/deliveries")
    _expect(audit, audit.request("GET", r.d.notify_url + "/contacts", headers=city()), 200, "GET /contacts")
    resp = audit.request("GET", r.county_url + "/notices", headers=officer(COUNTY))
    r.county_notices = _expect(audit, resp, 200, "GET /notices at the county")
    return r


# (recipient, channel) -> how many; every one of them sent
EXPECTED_DELIVERIES = {
    # establishment accepted, change returned, change accepted, change late
    ("enterprise", "inbox"): 4, ("enterprise", "email"): 4,
    # the late record's SMS: none (the decision's went already)
    ("enterprise", "sms"): 3,
    # the decisions and the late record; a returned filing is the county's own doing
    ("county", "email"): 3,
}


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def notify_round(request, broker, postgres_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"notify-round-{request.param}")
    appointed, effective = today() - timedelta(days=150), today() - timedelta(days=60)
    change = filing_form(COUNTY, N, kind="change", person=NEW_CQO, appointed_on=effective, effective_on=effective)
    change["cqo"]["phone"] = NEW_CQO_PHONE
    establishment = filing_form(COUNTY, N, person=FIRST_CQO, appointed_on=appointed)
    with SmsGateway() as gateway, SmtpSink(_free_port(), workdir / "mail") as sink:
        d = Deployment(broker, postgres_url, workdir / "stack", counties=(COUNTY,), services=("registry", "notify"),
                       tag="notify", database=request.param, env={"LOG_LEVEL": "DEBUG"},
                       process_env={"notify": {
                           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": sink.port, "SMTP_FROM": "noreply@scjg.example.cn",
                           "SMS_GATEWAY_URL": gateway.url, "SMS_APP_KEY": "e2e-app-key",
                           "SMS_QUIET_HOURS": "off", "DELIVERY_INTERVAL_S": 0.3, "RETRY_BASE_S": 0.5}})
        try:
            d.start()
            cases = [IdCase("resident_id", establishment["cqo"]["id_number"], "the first CQO's", True),
                     IdCase("resident_id", change["cqo"]["id_number"], "the new CQO's", True),
                     IdCase("resident_id", mistyped(change["cqo"]["id_number"]), "the new CQO's, mistyped")]
            with PiiAudit(broker, d.vhost, log_files=lambda: d.workdir.glob("*.log"), cases=cases) as audit:
                r = Round(d, audit, sink, gateway, establishment["enterprise"]["name"],
                          establishment["enterprise"]["uscc"], establishment, change, effective_on=effective)
                try:
                    yield play(r)
                except BaseException:
                    # not tests/e2e/conftest's `deploy`: its logs would show the numbers
                    print(f"\n===== service logs (ID numbers masked) =====\n{audit.redact(d.log_tails())}")
                    raise
        finally:
            d.close()


# -- what each party has ---------------------------------------------------------------------

def _mails(r: Round) -> list:
    return r.sink.messages()


def _text(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def _html(mail) -> str:
    return mail.get_body(("html",)).get_content()


def test_each_party_has_exactly_its_notices(notify_round):
    r = notify_round
    name, est_id, change_id = r.name, r.establishment_id, r.change_id
    first_mail, new_mail = r.establishment["cqo"]["email"], r.change["cqo"]["email"]
    late = lateness("change", r.effective_on, r.submitted_on)
    assert late.late and late.days_late > 0
    accepted_est = f"首席质量官岗位设立备案备案通过：{name}"
    returned = f"首席质量官备案被退回补正：{name}"
    accepted_change = f"首席质量官变更备案备案通过：{name}"
    late_record = f"首席质量官变更逾期报告已记录：{name}"

    # e-mail: the enterprise at the contact of each filing, its county office; no one else
    mails = _mails(r)
    got = sorted((m["To"], str(m["Subject"])) for m in mails)
    county_mail = COUNTY_OFFICE["email"]
    assert got == sorted([
        (first_mail, accepted_est), (new_mail, returned), (new_mail, accepted_change), (new_mail, late_record),
        (county_mail, accepted_est), (county_mail, accepted_change), (county_mail, late_record)]), got
    by = {(m["To"], str(m["Subject"])): m for m in mails}
    for mail in mails:
        assert mail["From"].addresses[0].addr_spec == "noreply@scjg.example.cn"
        assert mail.get_content_type() == "multipart/alternative"
        assert "本通知由沧州市首席质量官备案管理系统自动发送" in _text(mail)

    text = _text(by[(first_mail, accepted_est)])
    assert text.startswith(f"{name}：") and f"统一社会信用代码 {r.uscc}" in text
    assert f"备案编号 {est_id}（第1版）" in text and "作出决定：备案通过" in text
    assert "下一步：已登记，企业无需其他操作" in text

    text = _text(by[(new_mail, returned)])
    assert f"备案编号 {change_id}（第1版）" in text and f"退回意见：{RETURN_COMMENT}" in text
    assert "第十二条" in text and "下一步：请按退回意见修改后" in text
    assert RETURN_COMMENT in _html(by[(new_mail, returned)])

    text = _text(by[(new_mail, accepted_change)])
    assert f"备案编号 {change_id}（第2版）" in text and "作出决定：备案通过" in text
    assert f"逾期{late.days_late}天（第十四条），予以备案并记录逾期" in text

    deadline = f"{late.deadline.year}年{late.deadline.month}月{late.deadline.day}日"
    submitted = f"{r.submitted_on.year}年{r.submitted_on.month}月{r.submitted_on.day}日"
    for to in (new_mail, county_mail):
        text = _text(by[(to, late_record)])
        assert f"备案编号 {change_id}（第2版）" in text and "第十四条" in text
        assert f"本次报告期限为{deadline}" in text and f"报送县级市场监管部门的日期为{submitted}" in text
        assert f"逾期{late.days_late}天，已记录逾期" in text
    county_text = _text(by[(county_mail, late_record)])
    assert county_text.startswith(f"{COUNTY_OFFICE['name']}：") and "计入年度考核" in county_text
    assert "供知悉" in _text(by[(county_mail, accepted_change)])

    # SMS: the enterprise's, at the phone of each filing, template code and parameters,
    # the delivery id as the idempotency key; the offices none (their plan has no SMS)
    sms = [(q["body"], q["headers"]) for q in r.gateway.requests]
    assert len(sms) == 3, sms
    got = sorted((b["phone"], b["template_code"], json.dumps(b["params"], ensure_ascii=False, sort_keys=True))
                 for b, _ in sms)
    short = name[:20]
    decided_code, returned_code = TEMPLATES["register.filing.decided"], TEMPLATES["filing.returned"]
    first_phone = r.establishment["cqo"]["phone"]
    assert got == sorted([
        (first_phone, decided_code, json.dumps({"kind": "岗位设立", "name": short, "result": "备案通过"},
                                               ensure_ascii=False, sort_keys=True)),
        (NEW_CQO_PHONE, returned_code, json.dumps({"date": submitted, "name": short},
                                                  ensure_ascii=False, sort_keys=True)),
        (NEW_CQO_PHONE, decided_code, json.dumps({"kind": "变更", "name": short, "result": "备案通过"},
                                                 ensure_ascii=False, sort_keys=True))]), got
    sms_log = {item["id"]: item for item in r.log if item["channel"] == "sms"}
    for body, headers in sms:
        key = headers["Idempotency-Key"]
        assert body["out_id"] == key and body["sign_name"] == "沧州市场监管"
        assert headers["Authorization"] == "Bearer e2e-app-key"
        delivery = sms_log[int(re.fullmatch(r"cqo-notify-(\d+)", key).group(1))]
        assert delivery["recipient"] == f"enterprise:{r.uscc}" and delivery["status"] == "sent"
        assert delivery["address_masked"] != body["phone"] and delivery["address_masked"].endswith(body["phone"][-4:])
        assert '"code": "OK"' in delivery["provider_answer"]
    assert len({h["Idempotency-Key"] for _, h in sms}) == 3 and len(r.gateway.delivered) == 3

    # inbox: the enterprise's four, unread, newest first
    inbox = r.inbox
    assert inbox["total"] == 4 and inbox["unread"] == 4, inbox
    assert sorted(i["subject"] for i in inbox["items"]) == sorted([accepted_est, returned, accepted_change,
                                                                   late_record])
    mine = {str(m["Subject"]): _text(m) for m in mails if m["To"] in (first_mail, new_mail)}
    for item in inbox["items"]:  # the same text as the e-mail's plain part
        assert item["body"].strip() == mine[item["subject"]].strip() and item["read_at"] is None

    # what notify heard: the appointment events too, which tell no one (the decision did)
    heard = sorted(t for (t,) in r.d.rows(r.d.db("notify"), "SELECT event_type FROM notify_consumed_events"))
    assert heard == ["filing.returned", "register.appointment.accepted", "register.appointment.accepted",
                     "register.appointment.ended", "register.filing.decided", "register.filing.decided",
                     "register.filing.late"], heard

    # the city's notices the county officer reads at the county service (cqo.notices):
    # none in this round (campaigns, recommendations and terms make them)
    assert r.county_notices["total"] == 0, r.county_notices

    # the delivery log: exactly the expected deliveries, all sent, none to the city office
    office = {f"office:{r.offices['county']}": "county", f"office:{r.offices['city']}": "city",
              f"enterprise:{r.uscc}": "enterprise"}
    counted: dict = {}
    for item in r.log:
        key = (office[item["recipient"]], item["channel"])
        counted[key] = counted.get(key, 0) + 1
        assert item["status"] == "sent" and item["attempts"] <= 1, item
    assert counted == EXPECTED_DELIVERIES
    # each e-mail is the one its delivery row says (Message-ID carries the delivery id)
    mail_ids = {int(re.search(r"notify-(\d+)", m["Message-ID"]).group(1)) for m in mails}
    assert mail_ids == {item["id"] for item in r.log if item["channel"] == "email"}


def test_no_id_number_in_clear_over_the_round(notify_round):
    r = notify_round
    audit, d = r.audit, r.d
    # every row of every table of every service (notify's notices, deliveries, inbox;
    # the county's and the city's filings hold the numbers encrypted only), each e-mail
    # as the server received it (raw and decoded), each request the SMS gateway received
    rows: dict[str, int] = {}
    for name in ("notify", "registry", f"filing_{COUNTY}"):
        db, tables = d.db(name), MetaData()
        db.read(lambda conn: tables.reflect(conn))
        for table in tables.sorted_tables:
            for row in db.read(lambda conn: conn.execute(select(table)).all()):
                audit.include(f"{name} table {table.name}", " | ".join(str(v) for v in row))
                rows[f"{name}.{table.name}"] = rows.get(f"{name}.{table.name}", 0) + 1
    for where, text in r.sink.texts():
        audit.include(f"the e-mail {where}", text)
    for n, request in enumerate(r.gateway.requests, start=1):
        audit.include(f"SMS gateway request #{n}", json.dumps(request, ensure_ascii=False))
    audit.assert_clean()

    # the audit saw what it vouches for
    assert rows["notify.deliveries"] == sum(EXPECTED_DELIVERIES.values()) and rows["notify.notices"] == 7
    assert rows["registry.filing_ledger"] == 2 and rows[f"filing_{COUNTY}.filing_versions"] == 3
    assert len(r.sink.files()) == 7 and len(r.gateway.requests) == 3
    routes = {(m.exchange, m.routing_key) for m in audit.tap.captured}
    assert {("cqo.events", f"filing.{COUNTY}.returned"), ("cqo.events", "register.filing.decided"),
            ("cqo.events", "register.filing.late")} <= routes, audit.summary()
    assert {"cqo.filings", "cqo.decisions"} <= {m.exchange for m in audit.tap.captured}, audit.summary()
    logs = {p.name for p in d.workdir.glob("*.log")}
    assert {"registry.log", "notify.log", f"filing_{COUNTY}.log"} <= logs
    assert "DEBUG" in (d.workdir / "notify.log").read_text(encoding="utf-8", errors="replace")
    assert sum(x.status == 422 for x in audit.received) == 1
