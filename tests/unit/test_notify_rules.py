"""The notify service's plain rules: who hears of which event on which channel, the
back-off, the SMS quiet hours and the Chinese notices."""
import random
from datetime import date, datetime, time, timedelta, timezone

import pytest

from services.notify.delivery.dispatch import scrub
from services.notify.domain import recipients as rules
from services.notify.domain.schedule import Backoff, QuietHours, parse_window
from services.notify.notices.render import render
from shared.contracts.events import EventRefused
from tests.support.factories import uscc_for

USCC = uscc_for("130921", 1)
CITY = rules.Office(1, "city", None, "市局质量发展科", phone="0317-2345678", email="city@scjg.example.cn")
COUNTY = rules.Office(2, "county", "130921", "沧县市场监管局", phone="13900000001", email="cx@scjg.example.cn")
OTHER = rules.Office(3, "county", "130922", "青县市场监管局", email="qx@scjg.example.cn")
DIRECTORY = rules.Directory(offices=(CITY, COUNTY, OTHER))
DECIDED = {"filing_id": "5f1c", "version": 2, "county": "130921", "uscc": USCC, "enterprise_name": "沧州钢管有限公司",
           "kind": "change", "outcome": "accepted", "reasons": [], "late": False, "days_late": 0,
           "contact_name": "王联络", "contact_phone": "13800138000", "contact_email": "wang@qiye.example.cn"}
TEMPLATES = frozenset({"register.filing.decided", "register.recommendation.issued"})


def routes_of(plans):
    return {(p.recipient.key, r.channel): (r.address, r.skip_reason) for p in plans for r in p.routes}


def test_a_decision_goes_to_the_enterprise_on_every_channel_and_to_its_county_by_mail():
    got = routes_of(rules.plan("register.filing.decided", DECIDED, DIRECTORY, TEMPLATES))
    assert got == {
        (f"enterprise:{USCC}", "inbox"): (f"enterprise:{USCC}", None),
        (f"enterprise:{USCC}", "email"): ("wang@qiye.example.cn", None),
        (f"enterprise:{USCC}", "sms"): ("13800138000", None),
        ("office:2", "email"): ("cx@scjg.example.cn", None),
    }  # not the city (it decided), not another county


def test_a_recommendation_reaches_the_city_too_and_a_landline_gets_no_sms():
    data = {"recommendation_id": 4, "uscc": USCC, "county": "130921", "appointment_id": 1, "cqo_name": "李四",
            "issuer_role": "county_officer", "issuer_county": "130921", "reason": "抽检不合格",
            "issued_on": date(2026, 12, 1), "respond_by": date(2027, 1, 1)}
    directory = rules.Directory(offices=DIRECTORY.offices, enterprise=rules.EnterpriseAddress(
        "王联络", "0317-1234567", None, "沧州钢管有限公司"))
    got = routes_of(rules.plan("register.recommendation.issued", data, directory, TEMPLATES))
    assert got[(f"enterprise:{USCC}", "email")] == (None, "没有电子邮箱地址")
    assert got[(f"enterprise:{USCC}", "sms")] == (None, "没有可接收短信的手机号码")
    assert got[("office:2", "sms")] == ("13900000001", None)
    assert got[("office:1", "email")] == ("city@scjg.example.cn", None)
    assert ("office:3", "email") not in got


def test_an_event_without_an_sms_template_skips_the_sms_and_accepted_appointments_tell_no_one():
    data = {"recommendation_id": 4, "uscc": USCC, "county": "130921", "appointment_id": 1, "status": "closed"}
    got = routes_of(rules.plan("register.recommendation.closed", {**data, "contact_phone": "13800138000"},
                               DIRECTORY, TEMPLATES))
    assert (f"enterprise:{USCC}", "sms") not in got  # closing is not urgent: no SMS planned
    lapsed = {"appointment_id": 1, "uscc": USCC, "county": "130921", "cqo_name": "李四",
              "term_end": date(2026, 1, 1), "lapsed_on": date(2026, 1, 2)}
    enterprise = rules.Directory(DIRECTORY.offices, rules.EnterpriseAddress(phone="13800138000"))
    got = routes_of(rules.plan("register.appointment.lapsed", lapsed, enterprise, TEMPLATES))
    assert got[(f"enterprise:{USCC}", "sms")] == (None, "该事件没有登记短信模板")
    assert rules.plan("register.appointment.accepted", lapsed, DIRECTORY, TEMPLATES) == []
    # no gateway configured at all is another fix for the operator, so another reason
    got = routes_of(rules.plan("register.appointment.lapsed", lapsed, enterprise, None))
    assert got[(f"enterprise:{USCC}", "sms")] == (None, "未配置短信网关")


def test_an_expert_without_known_contact_is_skipped_not_dropped():
    data = {"draw_id": "d1", "purpose": "质量诊断", "expert_id": "e-1", "role": "member"}
    got = routes_of(rules.plan("talent.draw.invited", data, DIRECTORY, TEMPLATES))
    assert got == {("expert:e-1", "inbox"): ("expert:e-1", None),
                   ("expert:e-1", "email"): (None, "没有电子邮箱地址"),
                   ("expert:e-1", "sms"): (None, "没有可接收短信的手机号码")}


def test_an_expert_is_reached_only_with_consent():
    data = {"draw_id": "d1", "purpose": "质量诊断", "expert_id": "e-1", "role": "member"}
    consenting = rules.Directory(DIRECTORY.offices, expert=rules.ExpertAddress(
        "张专家", consent=True, phone="13912345678", email="zhang@example.cn"))
    got = routes_of(rules.plan("talent.draw.invited", data, consenting, TEMPLATES | {"talent.draw.invited"}))
    assert got == {("expert:e-1", "inbox"): ("expert:e-1", None),
                   ("expert:e-1", "email"): ("zhang@example.cn", None),
                   ("expert:e-1", "sms"): ("13912345678", None)}
    # a contact kept without consent (never announced so, but a bug must not leak it)
    refusing = rules.Directory(DIRECTORY.offices, expert=rules.ExpertAddress(
        "张专家", consent=False, phone="13912345678", email="zhang@example.cn"))
    got = routes_of(rules.plan("talent.draw.invited", data, refusing, TEMPLATES | {"talent.draw.invited"}))
    assert got[("expert:e-1", "email")] == (None, "专家未同意被联系")
    assert got[("expert:e-1", "sms")] == (None, "专家未同意被联系")
    assert rules.plan("talent.expert.updated", {"expert_id": "e-1"}, consenting, TEMPLATES) == []


def test_mobile_numbers_are_normalised():
    assert rules.is_mobile("+86 138-0013-8000") and rules.normal_phone("+86 138-0013-8000") == "13800138000"
    assert not rules.is_mobile("0317-2345678") and not rules.is_mobile(None)


# -- back-off and quiet hours ------------------------------------------------------------

def test_backoff_doubles_is_capped_and_jittered_in_its_upper_half():
    b = Backoff(base_s=30, max_s=600, max_attempts=5)
    rng = random.Random(7)
    for attempts, step in ((1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)):
        delays = {b.delay(attempts, rng).total_seconds() for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays) and len(delays) > 1
    assert not b.exhausted(4) and b.exhausted(5)


SH = timezone(timedelta(hours=8))


@pytest.mark.parametrize("local, expected", [
    (datetime(2026, 12, 3, 21, 59, tzinfo=SH), datetime(2026, 12, 3, 21, 59, tzinfo=SH)),
    (datetime(2026, 12, 3, 22, 0, tzinfo=SH), datetime(2026, 12, 4, 8, 0, tzinfo=SH)),
    (datetime(2026, 12, 4, 3, 30, tzinfo=SH), datetime(2026, 12, 4, 8, 0, tzinfo=SH)),
    (datetime(2026, 12, 4, 8, 0, tzinfo=SH), datetime(2026, 12, 4, 8, 0, tzinfo=SH)),
])
def test_quiet_hours_delay_an_sms_to_their_end(local, expected):
    assert QuietHours().next_allowed(local.astimezone(timezone.utc)) == expected


def test_quiet_hours_within_a_day_and_off():
    q = parse_window("12:00-13:30")
    assert q.start == time(12) and q.next_allowed(datetime(2026, 12, 3, 12, 10, tzinfo=SH)) == \
        datetime(2026, 12, 3, 13, 30, tzinfo=SH)
    now = datetime(2026, 12, 3, 23, 0, tzinfo=SH)
    assert parse_window("off").next_allowed(now) == now
    with pytest.raises(ValueError):
        parse_window("22点到8点")


# -- notices -------------------------------------------------------------------------------

ENVELOPE = {"event_id": "event:filing:5f1c:v2:decided", "occurred_at": datetime(2026, 12, 2, 17, 0, tzinfo=timezone.utc)}


def test_a_rejection_cites_its_articles_and_says_what_to_do_next():
    data = {**DECIDED, "outcome": "rejected", "enterprise_name": "<沧州>钢管&公司", "reasons": [
        {"code": "QUALIFICATION_NOT_MET", "message": "从事质量管理工作不满3年"},
        {"code": "LATE_CHANGE", "message": "逾期5天（第十四条）"}]}
    r = render("register.filing.decided", ENVELOPE, data, "enterprise", "x")
    assert r.subject == "首席质量官变更备案不予备案：<沧州>钢管&公司"
    assert "2026年12月3日" in r.text  # the decision's local date (Asia/Shanghai)
    assert "从事质量管理工作不满3年（依据：第六条）" in r.text and "逾期5天（第十四条）" in r.text
    assert "（依据：第十四条）" not in r.text  # a message citing its article is not cited twice
    assert "下一步：请按上述原因补正后" in r.text and "5f1c（第2版）" in r.text
    assert "&lt;沧州&gt;钢管&amp;公司" in r.html and "<沧州>" not in r.html  # autoescaped
    assert r.sms_params == {"name": "<沧州>钢管&公司", "kind": "变更", "result": "不予备案"}


def test_an_office_is_told_what_it_must_do_and_sms_parameters_are_short():
    data = {**DECIDED, "enterprise_name": "沧" * 40, "late": True, "days_late": 3}
    r = render("register.filing.decided", ENVELOPE, data, "county", "沧县市场监管局")
    assert r.text.startswith("沧县市场监管局：") and "逾期情况已记录" in r.text
    assert len(r.sms_params["name"]) == 20


def test_a_notice_never_carries_an_id_number():
    from tests.support.factories import make_resident_id
    number = make_resident_id("130921", date(1980, 1, 1), 12)
    data = {**DECIDED, "outcome": "rejected", "reasons": [{"code": "X", "message": f"证件{number}有误"}]}
    with pytest.raises(EventRefused):
        render("register.filing.decided", ENVELOPE, data, "enterprise", "x")


def test_answers_echoing_addresses_are_masked():
    assert scrub("550 <zhang.san@example.cn> unknown; 13800138000") == "550 <z***@example.cn> unknown; 138****8000"


def test_every_event_with_a_template_has_its_facts_and_no_other():
    from services.notify.domain.recipients import TEMPLATES
    from services.notify.notices.render import FACTS

    assert set(FACTS) == set(TEMPLATES)
