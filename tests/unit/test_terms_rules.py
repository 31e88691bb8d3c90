"""Art. 5 term rules (services/registry/domain/oversight.py): lapse and reminders."""
from datetime import date, timedelta

import pytest
from hypothesis import given, strategies as st

from services.registry.domain import oversight as rules
from services.registry.oversight.terms import OversightSettings

END = date(2029, 1, 5)


def test_a_term_is_in_force_up_to_and_including_its_end():
    assert not rules.is_lapsed(END, END)
    assert rules.is_lapsed(END, END + timedelta(days=1))
    assert rules.lapsed_on(END) == date(2029, 1, 6)


@pytest.mark.parametrize("as_of, raised, due", [
    (END - timedelta(days=91), (), None),      # not yet
    (END - timedelta(days=90), (), 90),        # the 90-day reminder, on the day
    (END - timedelta(days=60), (), 90),        # a check that ran late still raises it
    (END - timedelta(days=60), (90,), None),   # once
    (END - timedelta(days=30), (90,), 30),
    (END - timedelta(days=30), (90, 30), None),
    (END - timedelta(days=20), (), 30),        # first seen inside 30 days: only the 30-day one
    (END, (90,), 30),                          # the last day of the term still reminds
    (END + timedelta(days=1), (), None),       # lapsed: the lapse notice takes over
])
def test_reminder_due(as_of, raised, due):
    assert rules.reminder_due(END, as_of, (90, 30), raised) == due


@given(st.integers(min_value=-10, max_value=400), st.sets(st.sampled_from([90, 30])))
def test_a_raised_reminder_is_never_due_again(days_before, raised):
    due = rules.reminder_due(END, END - timedelta(days=days_before), (90, 30), raised)
    assert due is None or due not in raised
    if due is not None:
        assert 0 <= days_before <= due


@given(st.lists(st.integers(min_value=-5, max_value=200), min_size=1, max_size=40))
def test_daily_checks_raise_each_threshold_at_most_once(days):
    """Whatever days the check runs on, in order, no threshold is raised twice."""
    raised: list[int] = []
    for before in sorted(set(days), reverse=True):
        due = rules.reminder_due(END, END - timedelta(days=before), (90, 30), raised)
        if due is not None:
            raised.append(due)
    assert len(raised) == len(set(raised))


def test_thresholds_from_config():
    assert rules.parse_thresholds(None) == (90, 30)
    assert rules.parse_thresholds("30, 90,7") == (90, 30, 7)
    assert rules.parse_thresholds([60]) == rules.parse_thresholds(60) == (60,)
    with pytest.raises(ValueError):
        rules.parse_thresholds("0")
    with pytest.raises(ValueError):
        rules.parse_thresholds("x")


def test_settings_from_config():
    s = OversightSettings.from_config({})
    assert (s.reminder_days, s.response_days, s.check_interval_s) == ((90, 30), None, 3600.0)
    s = OversightSettings.from_config({"TERM_REMINDER_DAYS": "60,15", "TERM_CHECK_INTERVAL_S": "86400",
                                       "RECOMMENDATION_RESPONSE_DAYS": "45"})
    assert (s.reminder_days, s.response_days, s.check_interval_s) == ((60, 15), 45, 86400.0)
    with pytest.raises(ValueError):
        OversightSettings.from_config({"TERM_CHECK_INTERVAL_S": "0.01"})
    with pytest.raises(ValueError):
        OversightSettings.from_config({"RECOMMENDATION_RESPONSE_DAYS": "0"})
