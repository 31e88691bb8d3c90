"""The county's notices inbox: what a notice is, whom it is shown to (services/filing/notices.py)."""
import pytest

from services.filing import notices
from shared.errors import ValidationFailed
from tests.support.factories import uscc_for

USCC = uscc_for("130921", 5)


def test_enterprise_notices_are_addressed_by_uscc():
    parsed = notices.parse({"type": "term.expiring", "county": "130921", "uscc": USCC,
                            "title": "首席质量官任期即将届满", "message": "……", "days": 90}, "130921")
    assert (parsed["type"], parsed["audience"], parsed["uscc"], parsed["title"]) == (
        "term.expiring", "enterprise", USCC, "首席质量官任期即将届满")
    assert parsed["payload"]["days"] == 90


def test_unknown_types_are_kept_for_the_officers():
    parsed = notices.parse({"type": "inspection.scheduled", "when": "2027-03-01"}, "130921")
    assert (parsed["audience"], parsed["uscc"], parsed["title"]) == ("officers", None, "市局通知")
    assert notices.type_name("inspection.scheduled") == "市局通知"
    assert notices.parse({"type": "x.y", "audience": "all"}, "130921")["audience"] == "all"


def test_campaign_notices_are_for_everyone_with_a_chinese_summary():
    parsed = notices.parse({"type": "campaign.opened", "campaign": {
        "year": 2026, "title": "2026年度首席质量官集中备案", "notice_number": "沧市监〔2026〕8号",
        "opens_on": "2026-03-01", "closes_on": "2026-04-30"}}, "130921")
    assert parsed["audience"] == "all" and parsed["title"] == "2026年度首席质量官集中备案"
    assert "沧市监〔2026〕8号" in parsed["message"] and "2026-04-30" in parsed["message"]


@pytest.mark.parametrize("body, code", [
    ([1, 2], "NOTICE_INVALID"),
    ({"title": "no type"}, "NOTICE_INVALID"),
    ({"type": "Weather report!"}, "NOTICE_INVALID"),
    ({"type": "term.expiring", "uscc": "91130921M00000019Y"}, "NOTICE_INVALID"),   # bad check char
    ({"type": "x.y", "audience": "enterprise"}, "NOTICE_INVALID"),                  # to whom?
    ({"type": "term.lapsed", "county": "130922", "uscc": USCC}, "NOTICE_WRONG_COUNTY"),
])
def test_what_is_not_a_notice_for_this_county(body, code):
    with pytest.raises(ValidationFailed) as err:
        notices.parse(body, "130921")
    assert err.value.code == code
