"""An active CQO on a date (services/registry/domain/active_cqo.py): the one rule behind the
award check, coverage, campaign progress and completion and the assessment report."""
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import given, strategies as st

from services.registry import active_cqo as policy
from services.registry.domain import active_cqo as rules
from services.registry.domain import oversight

DAY = timedelta(days=1)


@dataclass
class T:
    appointed_on: date
    term_end: date
    ended_on: date | None = None


FIRST = T(date(2021, 6, 1), date(2024, 6, 1))


@pytest.mark.parametrize("on, active", [
    (date(2021, 5, 31), False),   # not yet appointed
    (date(2021, 6, 1), True),     # from the day of appointment
    (date(2024, 6, 1), True),     # up to and including the last day of the term
    (date(2024, 6, 2), False),    # lapsed: the day the term check marks
])
def test_an_appointment_is_active_from_appointment_to_term_end(on, active):
    assert rules.is_active(FIRST, on) is active


def test_a_lapsed_term_is_active_only_where_the_policy_counts_it():
    assert not rules.is_active(FIRST, date(2026, 1, 1))
    assert rules.is_active(FIRST, date(2026, 1, 1), lapsed_counts=True)
    ended = T(date(2021, 6, 1), date(2024, 6, 1), ended_on=date(2023, 3, 1))
    # an ended appointment never counts, whatever the policy
    assert not rules.is_active(ended, date(2023, 3, 1), lapsed_counts=True)
    assert rules.is_active(ended, date(2023, 2, 28), lapsed_counts=True)


def test_the_lapse_marker_agrees_with_term_end_for_every_day():
    """terms.py marks `lapsed_on = term_end + 1`: lapsed by D exactly when term_end < D."""
    for offset in range(-3, 4):
        on = FIRST.term_end + offset * DAY
        marked = oversight.lapsed_on(FIRST.term_end) <= on
        assert marked is (not rules.is_active(FIRST, on))


def test_since_runs_across_a_renewal_without_a_gap():
    renewed = [T(date(2021, 6, 1), date(2024, 6, 1), ended_on=date(2024, 6, 1)),
               T(date(2024, 6, 1), date(2027, 6, 1))]
    assert rules.active_since(renewed, date(2026, 12, 2)) == date(2021, 6, 1)
    assert rules.active_since(renewed, date(2022, 1, 1)) == date(2021, 6, 1)
    assert [t.appointed_on for t in rules.active_on(renewed, date(2026, 12, 2))] == [date(2024, 6, 1)]
    # renewed on the day after the last day of the term: still no day without a CQO
    next_day = [T(date(2021, 6, 1), date(2024, 6, 1), ended_on=date(2024, 6, 2)),
                T(date(2024, 6, 2), date(2027, 6, 2))]
    assert rules.active_since(next_day, date(2025, 1, 1)) == date(2021, 6, 1)


def test_since_starts_again_after_a_gap():
    lapsed_then_renewed = [T(date(2020, 1, 10), date(2023, 1, 10), ended_on=date(2023, 5, 1)),
                           T(date(2023, 5, 1), date(2026, 5, 1))]
    assert rules.active_since(lapsed_then_renewed, date(2024, 1, 1)) == date(2023, 5, 1)
    assert rules.active_since(lapsed_then_renewed, date(2023, 2, 1)) is None
    # where lapsed terms count there was no gap
    assert rules.active_since(lapsed_then_renewed, date(2024, 1, 1), lapsed_counts=True) == date(2020, 1, 10)
    ended_then_new = [T(date(2021, 1, 1), date(2024, 1, 1), ended_on=date(2022, 1, 1)),
                      T(date(2022, 6, 1), date(2025, 6, 1))]
    assert rules.active_since(ended_then_new, date(2023, 1, 1), lapsed_counts=True) == date(2022, 6, 1)


def test_no_active_cqo_no_since():
    assert rules.active_since([], date(2026, 1, 1)) is None
    assert rules.active_since([FIRST], date(2026, 1, 1)) is None
    assert rules.active_since([FIRST], date(2021, 5, 31)) is None
    assert rules.active_on([FIRST], date(2026, 1, 1)) == []


def test_an_unbounded_term_end_does_not_overflow():
    forever = [T(date(2020, 1, 1), date.max, ended_on=date(2021, 1, 1)), T(date(2021, 1, 1), date.max)]
    assert rules.active_since(forever, date(2030, 1, 1)) == date(2020, 1, 1)


_days = st.integers(min_value=0, max_value=60)


@st.composite
def histories(draw):
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        start = date(2024, 1, 1) + draw(_days) * DAY
        term_end = start + draw(st.integers(min_value=0, max_value=30)) * DAY
        ended = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=40)))
        out.append(T(start, term_end, None if ended is None else start + ended * DAY))
    return out


@given(histories(), _days, st.booleans())
def test_since_is_the_first_day_of_the_unbroken_run(history, offset, lapsed_counts):
    """Against a day-by-day walk back."""
    on = date(2024, 1, 1) + offset * DAY

    def any_active(day):
        return any(rules.is_active(t, day, lapsed_counts=lapsed_counts) for t in history)

    expected = None
    if any_active(on):
        expected = on
        while any_active(expected - DAY):
            expected -= DAY
    assert rules.active_since(history, on, lapsed_counts=lapsed_counts) == expected


@pytest.mark.parametrize("lapsed_counts, expected", [
    (False, "appointments.appointed_on <= :as_of AND (appointments.ended_on IS NULL OR "
            "appointments.ended_on > :as_of) AND appointments.term_end >= :as_of"),
    (True, "appointments.appointed_on <= :as_of AND (appointments.ended_on IS NULL OR "
           "appointments.ended_on > :as_of)"),
])
def test_the_sql_predicate_spells_the_same_rule(lapsed_counts, expected):
    assert policy.active_sql("appointments.", lapsed_counts=lapsed_counts) == expected


def test_the_policy_follows_the_setting():
    assert policy.policy_from_config({}) is False
    assert policy.policy_from_config({"LAPSED_COUNTS_AS_COVERAGE": "true"}) is True
    try:
        policy.set_policy(True)
        assert policy.resolve_policy(None) is True and policy.resolve_policy(False) is False
    finally:
        policy.set_policy(False)
    assert policy.resolve_policy(None) is False
