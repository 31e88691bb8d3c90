"""What "the enterprise has an active CQO on day D" means (arts. 4, 5, 16), in plain Python.

One rule for the award check, coverage, campaign progress and completion and the
assessment report (services/registry/active_cqo.py holds the policy setting and the SQL
that applies the same rule in the database). An appointment (every row of the register
is an accepted filing's) is active on D when:

- it had begun: `appointed_on <= D`;
- it had not ended: no `ended_on`, or `ended_on > D` (a change, renewal or end that
  takes effect on D ends it on D: from that day the successor, if any, is the CQO);
- its term had not lapsed: `term_end >= D` (`oversight.is_lapsed`, the test the term
  check marks lapses with), unless the deployment counts lapsed terms as coverage
  (LAPSED_COUNTS_AS_COVERAGE). The lapse marker the term check writes (`lapsed_on`) is
  always `term_end + 1` and `term_end` is never rewritten, so `term_end` answers for any
  day: a past day before the check ran, or a term whose lapse the check has not marked yet.

The enterprise has an active CQO on D when one of its appointments is; the period with an
active CQO runs on across a renewal or change that leaves no day without one.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable, Protocol

from services.registry.domain.oversight import is_lapsed


class Tenure(Protocol):
    """What the rule reads of an appointment (an ORM row or any object with these)."""

    appointed_on: date
    ended_on: date | None
    term_end: date


def is_active(tenure: Tenure, on: date, *, lapsed_counts: bool = False) -> bool:
    """The appointment is in post on `on`, and in term unless lapsed terms count."""
    if tenure.appointed_on > on:
        return False
    if tenure.ended_on is not None and tenure.ended_on <= on:
        return False
    return lapsed_counts or not is_lapsed(tenure.term_end, on)


def _last_day(tenure: Tenure, lapsed_counts: bool) -> date | None:
    """The last day the appointment is active (None: no end in sight)."""
    ends = []
    if tenure.ended_on is not None:
        ends.append(tenure.ended_on - timedelta(days=1))
    if not lapsed_counts:
        ends.append(tenure.term_end)
    return min(ends) if ends else None


def active_on(tenures: Iterable[Tenure], on: date, *, lapsed_counts: bool = False) -> list:
    """The enterprise's appointments active on `on`, the latest appointed first."""
    return sorted((t for t in tenures if is_active(t, on, lapsed_counts=lapsed_counts)),
                  key=lambda t: t.appointed_on, reverse=True)


def active_since(tenures: Iterable[Tenure], on: date, *, lapsed_counts: bool = False) -> date | None:
    """The first day of the unbroken period with an active CQO that includes `on`; None
    when none is active on `on`. A renewal or change that begins on (or before) the day
    after its predecessor's last active day continues the period; a day without an
    active CQO (a lapsed term under the default policy, an end before a new
    establishment) starts a new one."""
    candidates = [t for t in tenures if t.appointed_on <= on]
    if not any(is_active(t, on, lapsed_counts=lapsed_counts) for t in candidates):
        return None
    since = on
    changed = True
    while changed:  # a handful of appointments per enterprise: no need to be clever
        changed = False
        for tenure in candidates:
            if tenure.appointed_on >= since:
                continue
            last = _last_day(tenure, lapsed_counts)
            # active up to the day before `since` at least: no day without a CQO between
            if last is None or last >= since or (since - last).days == 1:
                since, changed = tenure.appointed_on, True
    return since
