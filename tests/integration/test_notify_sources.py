"""Events added at their sources for the notify service (issue 11), through the real
services and broker: each source writes its event through its outbox with the change,
and notify makes the expected notices of it. Both database backends."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.clock import today
from services.registry.campaigns import lifecycle
from services.registry.models import Appointment, RosterEntry
from services.registry.oversight import recommendations, terms
from tests.integration import filing_support as fs
from tests.integration.conftest import _own_database
from tests.integration.oversight_support import establish
from tests.integration.reporting_support import CAMPAIGN_YEAR, campaign_body
from tests.integration.registry_support import token
from tests.integration.test_notify_service import call, notify  # noqa: F401 - the fixture
from tests.support.factories import uscc_for
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def filing_db_config(db_config):
    yield from _own_database(db_config, "filing")


def test_a_filing_returned_by_the_county_reaches_its_enterprise(notify, amqp_uri, filing_db_config, tmp_path):  # noqa: F811
    base, sink = notify
    uscc = fs.new_uscc()
    with fs.FilingStack(amqp_uri, filing_db_config, tmp_path / "filing-keys") as county:
        filing = county.file(uscc, enterprise__name="沧州<渤海>钢管有限公司")
        county.review(filing["id"], "return", "任命书文号与附件不一致，请核对")
        (mail,) = wait_for(lambda: sink.messages() or None, 30, "the enterprise's e-mail")
    assert mail["To"] == "cqo@example.cn"
    assert mail["Subject"] == "首席质量官备案被退回补正：沧州<渤海>钢管有限公司"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert f"备案编号 {filing['id']}（第1版）" in text and "退回意见：任命书文号与附件不一致，请核对" in text
    assert "第十二条" in text and "下一步：请按退回意见修改后" in text
    assert "沧州&lt;渤海&gt;钢管有限公司" in html
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=uscc).json()
    assert [i["subject"] for i in inbox["items"]] == [mail["Subject"]]
    log = wait_for(lambda: (b := call("GET", base + "/deliveries?county=130921").json())["total"] == 3 and b,
                   10, "the delivery log")
    assert {(i["channel"], i["status"]) for i in log["items"]} == {
        ("inbox", "sent"), ("email", "sent"), ("sms", "skipped")}  # no SMS gateway in this test


def _post(base, path, body):
    import requests
    return requests.post(base + path, json=body, headers={"Authorization": token("city_officer")}, timeout=15)


def _mails(sink, word):
    return [m for m in sink.messages() if word in m["Subject"]]


def test_a_campaign_reaches_every_county_and_the_roster_enterprises_without_a_cqo(notify, registry):  # noqa: F811
    base, sink = notify
    county_side, registry_base, registry_db = registry
    for county, name, mail in (("130921", "沧县市场监管局", "cangxian@scjg.example.cn"),
                               ("130922", "青县市场监管局", "qingxian@scjg.example.cn")):
        assert call("POST", base + "/contacts", json={"level": "county", "county": county, "name": name,
                                                      "email": mail}).status_code == 201
    reached, unreachable, covered = (uscc_for("130921", n) for n in (11, 12, 13))
    establish(county_side, n=13, appointed_on=today() - timedelta(days=30))  # covered: told nothing
    with registry_db.unit_of_work() as uow:
        uow.session.add_all([
            RosterEntry(year=CAMPAIGN_YEAR, uscc=reached, name="沧州已联系制造有限公司", county="130921",
                        category="industrial_above_scale", contact_person="赵联系", phone="13800138011",
                        email="zhao@qiye.example.cn"),
            RosterEntry(year=CAMPAIGN_YEAR, uscc=unreachable, name="沧州无联系方式有限公司", county="130921",
                        category="industrial_above_scale"),
            RosterEntry(year=CAMPAIGN_YEAR, uscc=covered, name="沧州已备案有限公司", county="130921",
                        category="industrial_above_scale")])
        uow.commit()
    assert _post(registry_base, "/api/v1/campaigns", campaign_body()).status_code == 201
    opened = wait_for(lambda: len(m := _mails(sink, "集中备案已开始")) >= 3 and m, 30, "the campaign e-mails")
    assert sorted(m["To"] for m in opened) == sorted(
        ["cangxian@scjg.example.cn", "qingxian@scjg.example.cn", "zhao@qiye.example.cn"])
    office = next(m for m in opened if m["To"] == "cangxian@scjg.example.cn")
    text = office.get_body(("plain",)).get_content()
    assert "第十三条" in text and "尚无在任首席质量官的企业2家" in text
    enterprise = next(m for m in opened if m["To"] == "zhao@qiye.example.cn")
    assert enterprise["Subject"] == f"{CAMPAIGN_YEAR}年度首席质量官集中备案已开始：沧州已联系制造有限公司"
    # the enterprise without an address has its inbox; its e-mail is skipped, not failed
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=unreachable).json()
    assert inbox["total"] == 1 and "集中备案已开始" in inbox["items"][0]["subject"]
    told = call("GET", base + "/inbox", role="enterprise", uscc=covered).json()["items"]
    assert not [i for i in told if "集中备案" in i["subject"]]  # its CQO is active: not told
    log = call("GET", base + "/deliveries?county=130921&channel=email").json()["items"]
    assert any(i["status"] == "skipped" and i["last_error"] == "没有电子邮箱地址" for i in log), log

    # seven days before the close, once however often the check runs
    closes_on = today() + timedelta(days=60)
    assert lifecycle.check_closing(registry_db, as_of=closes_on - timedelta(days=8)) is None
    assert lifecycle.check_closing(registry_db, as_of=closes_on - timedelta(days=7)) == CAMPAIGN_YEAR
    assert lifecycle.check_closing(registry_db, as_of=closes_on - timedelta(days=6)) is None
    closing = wait_for(lambda: len(m := _mails(sink, "即将截止")) >= 3 and m, 30, "the closing e-mails")
    enterprise = next(m for m in closing if m["To"] == "zhao@qiye.example.cn")
    assert "还有7天" in enterprise.get_body(("plain",)).get_content()
    assert len(_mails(sink, "集中备案")) == 6


def test_a_change_reported_late_is_told_to_the_enterprise_and_its_county(notify, registry):  # noqa: F811
    base, sink = notify
    county_side, _, _ = registry
    assert call("POST", base + "/contacts", json={"level": "county", "county": "130921", "name": "沧县市场监管局",
                                                  "email": "cangxian@scjg.example.cn"}).status_code == 201
    establish(county_side, n=21, appointed_on=today() - timedelta(days=200))
    effective = today() - timedelta(days=100)
    change = county_side.filing("130921", n=21, kind="change", person=88, effective_on=effective,
                                appointed_on=effective, submitted=today() - timedelta(days=10),
                                cqo_overrides={"name": "新质量官"})
    county_side.publish(change)
    assert county_side.decision_of(change)["outcome"] == "accepted"
    late = wait_for(lambda: len(m := _mails(sink, "逾期报告已记录")) >= 2 and m, 30, "the late e-mails")
    assert sorted(m["To"] for m in late) == sorted(["cangxian@scjg.example.cn", change["cqo"]["email"]])
    text = next(m for m in late if m["To"] == change["cqo"]["email"]).get_body(("plain",)).get_content()
    assert f"备案编号 {change['filing_id']}（第1版）" in text and "第十四条" in text and "已记录逾期" in text
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=change["enterprise"]["uscc"]).json()
    assert sum("逾期报告已记录" in i["subject"] for i in inbox["items"]) == 1
    # the on-time establishment made no such notice
    assert len(_mails(sink, "逾期")) == 2


def test_a_term_ending_in_90_and_30_days_and_lapsed_is_told_once_each(notify, registry):  # noqa: F811
    base, sink = notify
    county_side, _, registry_db = registry
    for level, county, name, mail in (("county", "130921", "沧县市场监管局", "cangxian@scjg.example.cn"),
                                      ("city", None, "市局质量发展科", "city@scjg.example.cn")):
        assert call("POST", base + "/contacts", json={"level": level, "county": county, "name": name,
                                                      "email": mail}).status_code == 201
    filing = establish(county_side, n=31, appointed_on=today() - timedelta(days=30))
    with registry_db.unit_of_work() as uow:
        term_end = uow.session.query(Appointment).filter_by(uscc=filing["enterprise"]["uscc"]).one().term_end
    for days_before in (85, 84, 29, 28):  # each threshold once, however often the check runs
        terms.check_terms(registry_db, as_of=term_end - timedelta(days=days_before))
    terms.check_terms(registry_db, as_of=term_end + timedelta(days=1))
    mine = filing["cqo"]["email"]
    wait_for(lambda: len([m for m in sink.messages() if "任期" in m["Subject"]]) >= 7, 30, "the term e-mails")
    told = sorted((m["To"], m["Subject"].split("：")[0]) for m in sink.messages() if "任期" in m["Subject"])
    assert told == sorted([
        (mine, "首席质量官任期将于85天后届满"), ("cangxian@scjg.example.cn", "首席质量官任期将于85天后届满"),
        (mine, "首席质量官任期将于29天后届满"), ("cangxian@scjg.example.cn", "首席质量官任期将于29天后届满"),
        (mine, "首席质量官任期已届满"), ("cangxian@scjg.example.cn", "首席质量官任期已届满"),
        ("city@scjg.example.cn", "首席质量官任期已届满")])
    lapsed = next(m for m in sink.messages() if m["To"] == mine and "已届满" in m["Subject"])
    assert filing["enterprise"]["name"] in lapsed["Subject"]  # the event names the enterprise now
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=filing["enterprise"]["uscc"]).json()
    assert sum("任期" in i["subject"] for i in inbox["items"]) == 3


def test_a_recommendation_unanswered_at_its_deadline_is_told_once(notify, registry):  # noqa: F811
    base, sink = notify
    county_side, registry_base, registry_db = registry
    for level, county, name, mail in (("county", "130921", "沧县市场监管局", "cangxian@scjg.example.cn"),
                                      ("city", None, "市局质量发展科", "city@scjg.example.cn")):
        assert call("POST", base + "/contacts", json={"level": level, "county": county, "name": name,
                                                      "email": mail}).status_code == 201
    filing = establish(county_side, n=41, appointed_on=today() - timedelta(days=30))
    rec = _post(registry_base, "/api/v1/recommendations", {
        "uscc": filing["enterprise"]["uscc"], "incident": "批次性产品质量安全事件", "incident_on": today().isoformat(),
        "reason": "首席质量官未履行质量安全一票否决职责"}).json()
    respond_by = date.fromisoformat(rec["respond_by"])
    assert recommendations.check_unanswered(registry_db, as_of=respond_by) == 0  # still in time
    assert recommendations.check_unanswered(registry_db, as_of=respond_by + timedelta(days=2)) == 1
    assert recommendations.check_unanswered(registry_db, as_of=respond_by + timedelta(days=3)) == 0  # once
    late = wait_for(lambda: len(m := _mails(sink, "逾期未答复")) >= 3 and m, 30, "the unanswered e-mails")
    assert sorted(m["To"] for m in late) == sorted(
        [filing["cqo"]["email"], "cangxian@scjg.example.cn", "city@scjg.example.cn"])
    text = next(m for m in late if m["To"] == filing["cqo"]["email"]).get_body(("plain",)).get_content()
    assert "已逾期2天" in text and "第十条" in text and "首席质量官未履行质量安全一票否决职责" in text
    inbox = call("GET", base + "/inbox", role="enterprise", uscc=filing["enterprise"]["uscc"]).json()
    assert sum("逾期未答复" in i["subject"] for i in inbox["items"]) == 1
