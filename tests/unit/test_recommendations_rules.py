"""Art. 10 recommendation rules (services/registry/domain/oversight.py)."""
from datetime import date

import pytest

from services.registry.domain import oversight as rules


@pytest.mark.parametrize("issued, expected", [
    (date(2026, 1, 15), date(2026, 2, 15)),
    (date(2026, 1, 31), date(2026, 2, 28)),   # "within one month": that month's last day
    (date(2028, 1, 31), date(2028, 2, 29)),
    (date(2026, 12, 31), date(2027, 1, 31)),
])
def test_response_period_defaults_to_one_calendar_month(issued, expected):
    assert rules.respond_by(issued) == expected


def test_response_period_in_days_from_config():
    assert rules.respond_by(date(2026, 1, 31), 10) == date(2026, 2, 10)
    assert rules.parse_response_days("") is None
    assert rules.parse_response_days("20") == 20
    with pytest.raises(ValueError):
        rules.parse_response_days("-1")


def test_unanswered_is_computed_as_of_a_day():
    by = date(2026, 2, 15)
    assert rules.effective_status("pending", by, by) == "pending"          # the last day is in time
    assert rules.effective_status("pending", by, date(2026, 2, 16)) == "unanswered"
    assert rules.STATUS_NAMES["unanswered"] == "未响应"
    for status in ("answered", "withdrawn", "closed", "replaced"):
        assert rules.effective_status(status, by, date(2030, 1, 1)) == status
    assert [rules.STATUS_NAMES[s] for s in ("pending", "answered", "withdrawn", "closed", "replaced")] \
        == ["待答复", "已答复", "已撤回", "已关闭", "已更换"]


def test_open_statuses():
    assert rules.is_open("pending") and rules.is_open("answered")
    assert not any(rules.is_open(s) for s in ("withdrawn", "closed", "replaced"))


@pytest.mark.parametrize("role, county, issuer_role, issuer_county, allowed, override", [
    # only the issuer: the issuing county's officers for a county's recommendation ...
    ("county_officer", "130921", "county_officer", "130921", True, False),
    ("county_officer", "130922", "county_officer", "130921", False, False),
    ("city_officer", None, "county_officer", "130921", False, False),  # not the city
    # ... city officers for the city's (an admin-issued one is the city's)
    ("city_officer", None, "city_officer", None, True, False),
    ("city_officer", None, "admin", None, True, False),
    ("county_officer", "130921", "city_officer", None, False, False),
    # the operator's override, recorded as such
    ("admin", None, "county_officer", "130921", True, True),
    ("admin", None, "city_officer", None, True, True),
    ("admin", None, "admin", None, True, False),
    ("enterprise", None, "county_officer", "130921", False, False),
])
def test_who_may_withdraw_or_close(role, county, issuer_role, issuer_county, allowed, override):
    assert rules.may_conclude(role, county, issuer_role, issuer_county) is allowed
    assert rules.is_override(role, issuer_role) is override
