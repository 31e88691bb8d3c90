"""The notices of the events added at their sources for the notify service (issue 11):
a filing returned by the county, the campaign opened and closing, a change reported
late, a term ending, a recommendation left unanswered; who hears of each,
and what the notice says."""
from datetime import date, datetime, timezone

from services.notify.domain import recipients as rules
from services.notify.notices.render import render
from shared.contracts import events
from tests.support.factories import uscc_for

USCC = uscc_for("130921", 1)
CITY = rules.Office(1, "city", None, "市局质量发展科", email="city@scjg.example.cn")
COUNTY = rules.Office(2, "county", "130921", "沧县市场监管局", phone="13900000001", email="cx@scjg.example.cn")
OTHER = rules.Office(3, "county", "130922", "青县市场监管局", email="qx@scjg.example.cn")
DIRECTORY = rules.Directory(offices=(CITY, COUNTY, OTHER))
NOON = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)
RETURNED = {"filing_id": "5f1c", "version": 1, "county": "130921", "uscc": USCC,
            "enterprise_name": "<沧州>钢管&公司", "comment": "任命书文号与附件不一致，请核对", "kind": "establishment",
            "returned_on": date(2026, 12, 3), "contact_name": "王联络", "contact_phone": "13800138000",
            "contact_email": "wang@qiye.example.cn"}


def routes_of(plans):
    return {(p.recipient.key, r.channel): (r.address, r.skip_reason) for p in plans for r in p.routes}


def envelope(event_type, data, subject="x"):
    built = events.build(event_type, subject, data, source="test", occurred_at=NOON)
    return events.load(built)


def test_a_returned_filing_goes_to_its_enterprise_only_on_every_channel():
    env, data = envelope("filing.returned", RETURNED)
    got = routes_of(rules.plan(env["type"], data, DIRECTORY, frozenset({"filing.returned"})))
    assert got == {(f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
                   (f"enterprise:{USCC}", "email"): ("wang@qiye.example.cn", None),
                   (f"enterprise:{USCC}", "sms"): ("13800138000", None)}  # the county returned it itself


def test_a_returned_filing_notice_cites_the_pre_review_and_says_what_to_do():
    env, data = envelope("filing.returned", RETURNED)
    r = render(env["type"], env, data, "enterprise", "x")
    assert r.subject == "首席质量官备案被退回补正：<沧州>钢管&公司"
    assert "岗位设立备案（备案编号 5f1c（第1版））" in r.text and "2026年12月3日" in r.text
    assert "沧县市场监管部门" in r.text and "第十二条" in r.text
    assert "退回意见：任命书文号与附件不一致，请核对" in r.text and "下一步：请按退回意见修改后" in r.text
    assert "&lt;沧州&gt;钢管&amp;公司" in r.html and "<沧州>" not in r.html
    assert r.sms_params == {"name": "<沧州>钢管&公司", "date": "2026年12月3日"}


def test_an_older_returned_event_without_the_new_fields_still_makes_a_notice():
    old = {k: RETURNED[k] for k in ("filing_id", "version", "county", "uscc", "enterprise_name")}
    env, data = envelope("filing.returned", old)
    r = render(env["type"], env, data, "enterprise", "x")
    assert "退回意见：（未填写）" in r.text and "2026年12月3日" in r.text
    directory = rules.Directory(offices=DIRECTORY.offices, enterprise=rules.EnterpriseAddress(email="k@q.example.cn"))
    assert routes_of(rules.plan(env["type"], data, directory, None))[(f"enterprise:{USCC}", "email")] == (
        "k@q.example.cn", None)  # the contact known from an earlier filing


def test_filing_contact_takes_only_name_phone_and_email():
    assert events.filing_contact({"cqo": {"name": "张", "phone": "138", "email": None, "id_number": "x"}}) == {
        "contact_name": "张", "contact_phone": "138", "contact_email": None}
    assert events.filing_contact(None) == {"contact_name": None, "contact_phone": None, "contact_email": None}


CAMPAIGN = {"year": 2027, "title": "关于开展2027年度首席质量官集中备案的通知", "notice_number": "沧市监〔2027〕1号",
            "opens_on": date(2027, 3, 1), "closes_on": date(2027, 4, 30)}


def test_a_campaign_goes_to_every_county_office_by_mail_and_not_the_city():
    for stage in ("opened", "closing"):
        env, data = envelope(f"register.campaign.{stage}", {**CAMPAIGN, "enterprises": 12, "days_left": 7})
        plans = rules.plan(env["type"], data, DIRECTORY, frozenset())
        assert routes_of(plans) == {("office:2", "email"): ("cx@scjg.example.cn", None),
                                    ("office:3", "email"): ("qx@scjg.example.cn", None)}
        assert {(p.recipient.audience, p.recipient.county) for p in plans} == {("county", "130921"),
                                                                                 ("county", "130922")}
        assert rules.needs_every_county(env["type"])
    assert not rules.needs_every_county("register.campaign.due")


def test_a_campaign_notice_for_offices_and_for_an_enterprise_says_when_and_what_to_do():
    env, data = envelope("register.campaign.closing", {**CAMPAIGN, "enterprises": 12, "days_left": 7})
    r = render(env["type"], env, data, "county", "沧县市场监管局")
    assert r.subject == "2027年度首席质量官集中备案即将截止"
    assert "2027年3月1日至2027年4月30日（依据：第十三条），将于2027年4月30日截止，还有7天" in r.text
    assert "企业12家" in r.text and "下一步：请督促本辖区尚未备案的企业在2027年4月30日（还有7天）前报送" in r.text
    due = {**CAMPAIGN, "stage": "opened", "uscc": USCC, "county": "130921", "enterprise_name": "沧州<钢管>公司",
           "contact_name": "王联络", "contact_phone": "13800138000", "contact_email": None}
    env, data = envelope("register.campaign.due", due)
    r = render(env["type"], env, data, "enterprise", "x")
    assert r.subject == "2027年度首席质量官集中备案已开始：沧州<钢管>公司"
    assert "没有在任的已备案首席质量官" in r.text and "截止" not in r.text.split("下一步")[0]
    assert "下一步：请在2027年4月30日前任命首席质量官" in r.text and "沧州&lt;钢管&gt;公司" in r.html
    got = routes_of(rules.plan(env["type"], data, DIRECTORY, frozenset({"register.campaign.due"})))
    assert got == {(f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
                   (f"enterprise:{USCC}", "email"): (None, "没有电子邮箱地址"),  # the roster has none
                   (f"enterprise:{USCC}", "sms"): ("13800138000", None)}


LATE = {"filing_id": "5f1c", "version": 1, "county": "130921", "uscc": USCC, "enterprise_name": "沧州钢管有限公司",
        "kind": "change", "deadline": date(2026, 4, 1), "submitted_on": date(2026, 4, 11), "days_late": 10,
        "contact_name": "王联络", "contact_phone": "13800138000", "contact_email": "wang@qiye.example.cn"}


def test_a_late_change_goes_to_the_enterprise_without_sms_and_to_its_county():
    env, data = envelope("register.filing.late", LATE)
    got = routes_of(rules.plan(env["type"], data, DIRECTORY, frozenset({"register.filing.late"})))
    assert got == {(f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
                   (f"enterprise:{USCC}", "email"): ("wang@qiye.example.cn", None),
                   ("office:2", "email"): ("cx@scjg.example.cn", None)}  # the decision's SMS told it already
    r = render(env["type"], env, data, "enterprise", "x")
    assert r.subject == "首席质量官变更逾期报告已记录：沧州钢管有限公司"
    assert "一个月内向县级市场监管部门报告（依据：第十四条）" in r.text
    assert "报告期限为2026年4月1日" in r.text and "日期为2026年4月11日，逾期10天" in r.text
    assert "下一步：今后首席质量官发生变更的" in r.text
    county = render(env["type"], env, data, "county", "沧县市场监管局")
    assert county.text.startswith("沧县市场监管局：") and "计入年度考核" in county.text


EXPIRING = {"appointment_id": 7, "uscc": USCC, "county": "130921", "cqo_name": "李质量", "id_hmac": "a" * 64,
            "id_masked": "1309**********1234", "enterprise_name": "沧州钢管有限公司", "appointed_on": date(2024, 3, 1),
            "term_end": date(2027, 2, 28), "days": 90, "days_left": 87}


def test_a_term_ending_goes_to_the_enterprise_on_every_channel_and_to_its_county():
    env, data = envelope("register.appointment.expiring", EXPIRING)
    directory = rules.Directory(offices=DIRECTORY.offices, enterprise=rules.EnterpriseAddress(
        "王联络", "13800138000", "wang@qiye.example.cn"))
    got = routes_of(rules.plan(env["type"], data, directory, frozenset({"register.appointment.expiring"})))
    assert got == {(f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
                   (f"enterprise:{USCC}", "email"): ("wang@qiye.example.cn", None),
                   (f"enterprise:{USCC}", "sms"): ("13800138000", None),
                   ("office:2", "email"): ("cx@scjg.example.cn", None)}
    r = render(env["type"], env, data, "enterprise", "x")
    assert r.subject == "首席质量官任期将于87天后届满：沧州钢管有限公司"
    assert "李质量（2024年3月1日任命）任期将于2027年2月28日届满，还有87天" in r.text and "第五条" in r.text
    assert "下一步：请在2027年2月28日前办理续任备案" in r.text and "1234" not in r.text  # no ID mask either
    assert r.sms_params == {"name": "沧州钢管有限公司", "date": "2027年2月28日"}


UNANSWERED = {"recommendation_id": 4, "uscc": USCC, "county": "130921", "appointment_id": 7, "cqo_name": "李质量",
              "id_hmac": "a" * 64, "enterprise_name": "沧州<钢管>公司", "issuer_role": "county_officer",
              "issuer_county": "130921", "reason": "未履行质量安全一票否决职责", "issued_on": date(2026, 10, 9),
              "respond_by": date(2026, 11, 9), "days_overdue": 3}


def test_an_unanswered_recommendation_goes_to_the_enterprise_its_county_and_the_city():
    env, data = envelope("register.recommendation.unanswered", UNANSWERED)
    directory = rules.Directory(offices=DIRECTORY.offices, enterprise=rules.EnterpriseAddress(
        "王联络", "13800138000", "wang@qiye.example.cn"))
    got = routes_of(rules.plan(env["type"], data, directory, frozenset()))
    assert got == {(f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
                   (f"enterprise:{USCC}", "email"): ("wang@qiye.example.cn", None),
                   (f"enterprise:{USCC}", "sms"): (None, "该事件没有登记短信模板"),
                   ("office:2", "email"): ("cx@scjg.example.cn", None),
                   ("office:1", "email"): ("city@scjg.example.cn", None)}
    r = render(env["type"], env, data, "enterprise", "x")
    assert r.subject == "撤换首席质量官建议逾期未答复：沧州<钢管>公司"
    assert "沧县市场监管部门于2026年10月9日" in r.text and "（依据：第十条）" in r.text
    assert "答复期限为2026年11月9日，至今未收到答复，已逾期3天" in r.text and "下一步：请尽快答复" in r.text
    assert "&lt;钢管&gt;" in r.html
    city = render(env["type"], env, data, "city", "市局质量发展科")
    assert "由提出单位决定" in city.text
