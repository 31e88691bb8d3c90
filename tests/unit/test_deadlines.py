from datetime import date, timedelta

from hypothesis import given, strategies as st

from services.registry.domain.deadlines import change_deadline, lateness


def test_same_day_next_month():
    assert change_deadline(date(2026, 3, 15)) == date(2026, 4, 15)


def test_month_without_that_day_ends_on_its_last_day():
    assert change_deadline(date(2026, 1, 31)) == date(2026, 2, 28)
    assert change_deadline(date(2028, 1, 31)) == date(2028, 2, 29)
    assert change_deadline(date(2026, 8, 31)) == date(2026, 9, 30)


def test_submitted_on_the_deadline_is_on_time_and_a_day_after_is_late():
    on_time = lateness("change", date(2026, 1, 31), date(2026, 2, 28))
    assert not on_time.late and on_time.days_late == 0
    late = lateness("change", date(2026, 1, 31), date(2026, 3, 1))
    assert late.late and late.days_late == 1 and late.deadline == date(2026, 2, 28)


def test_end_of_post_counts_and_updates_and_establishments_never_do():
    assert lateness("end", date(2026, 1, 1), date(2026, 3, 1)).days_late == 28
    assert not lateness("update", date(2026, 1, 1), date(2027, 1, 1)).late
    assert not lateness("establishment", date(2020, 1, 1), date(2027, 1, 1)).late


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
       st.integers(min_value=0, max_value=400))
def test_days_late_is_the_distance_past_the_deadline(effective, offset):
    submitted = change_deadline(effective) + timedelta(days=offset)
    result = lateness("change", effective, submitted)
    assert result.days_late == offset and result.late == (offset > 0)
