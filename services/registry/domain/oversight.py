"""Plain rules of term tracking (art. 5) and replacement recommendations (art. 10).

Nothing here touches a database or a broker; `terms.py`, `recommendations.py` and
`overdue.py` load the rows, ask these functions and write what they answer.

Terms: a term is in force up to and including its `term_end`; from the next day on it
has lapsed (`term_end < as_of`, the same test coverage uses). Reminders are raised 90
and 30 days before the end, each at most once per appointment and threshold; when the
check first sees a term already inside the shorter window (an appointment filed late,
a check that did not run for a while) it raises only the most urgent reminder.

Recommendations are advice, not orders (docs/architecture.md): there is no legal deadline,
only a response period (default one calendar month, "within one month" as in
section 4) after which a recommendation without answer or change shows as 未响应 —
computed as of a date, never stored, so it is right for any day one asks about.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from dateutil.relativedelta import relativedelta

DEFAULT_REMINDER_DAYS = (90, 30)


# -- terms (art. 5) ------------------------------------------------------------------------

def is_lapsed(term_end: date, as_of: date) -> bool:
    return term_end < as_of


def lapsed_on(term_end: date) -> date:
    """The first day without a term in force."""
    return term_end + timedelta(days=1)


def days_left(term_end: date, as_of: date) -> int:
    return (term_end - as_of).days


def reminder_due(term_end: date, as_of: date, thresholds: Iterable[int],
                 raised: Iterable[int] = ()) -> int | None:
    """The reminder threshold (days before the end) to raise today, or None.

    The most urgent threshold the term has reached is the one that counts: 40 days
    before the end only the 90-day reminder is due, 20 days before only the 30-day one
    (a 90-day reminder 20 days before the end would be noise)."""
    left = days_left(term_end, as_of)
    if left < 0:
        return None  # lapsed: the lapse notice takes over
    reached = sorted(t for t in set(thresholds) if left <= t)
    if not reached or reached[0] in set(raised):
        return None
    return reached[0]


def parse_thresholds(value) -> tuple[int, ...]:
    """TERM_REMINDER_DAYS from config: "90,30", [90, 30], 60 or empty (the default)."""
    if value in (None, "", [], ()):
        return DEFAULT_REMINDER_DAYS
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (int, float)):  # a single number, as YAML reads "60"
        items = [value]
    else:
        items = list(value)
    days = tuple(sorted({int(str(v).strip()) for v in items if str(v).strip()}, reverse=True))
    if not days or any(d <= 0 or d > 3650 for d in days):
        raise ValueError(f"TERM_REMINDER_DAYS must be positive day counts, got {value!r}")
    return days


# -- replacement recommendations (art. 10) -------------------------------------------------

PENDING, ANSWERED, WITHDRAWN, CLOSED, REPLACED = (
    "pending", "answered", "withdrawn", "closed", "replaced")
UNANSWERED = "unanswered"  # computed: pending past the response period
OPEN_STATUSES = (PENDING, ANSWERED)
STATUS_NAMES = {
    PENDING: "待答复",
    ANSWERED: "已答复",
    WITHDRAWN: "已撤回",
    CLOSED: "已关闭",
    REPLACED: "已更换",
    UNANSWERED: "未响应",
}
ACTION_NAMES = {
    "issued": "提出撤换建议",
    "answered": "企业答复",
    "withdrawn": "撤回建议",
    "closed": "关闭建议",
    "replaced": "企业已办理变更备案",
    "post_ended": "企业已办理岗位撤销备案",
}


def parse_response_days(value) -> int | None:
    """RECOMMENDATION_RESPONSE_DAYS from config; None (empty) = one calendar month."""
    if value in (None, ""):
        return None
    days = int(value)
    if not 1 <= days <= 3650:
        raise ValueError(f"RECOMMENDATION_RESPONSE_DAYS must be 1..3650, got {value!r}")
    return days


def respond_by(issued_on: date, response_days: int | None = None) -> date:
    """The last day of the response period. Default "within one month": the same day of
    the next month, or that month's last day (relativedelta clamps)."""
    if response_days is None:
        return issued_on + relativedelta(months=1)
    return issued_on + timedelta(days=response_days)


def effective_status(status: str, respond_by_day: date, as_of: date) -> str:
    """The status shown as of a day: a pending one past its period is 未响应."""
    if status == PENDING and as_of > respond_by_day:
        return UNANSWERED
    return status


def is_unanswered(status: str, respond_by_day: date, as_of: date) -> bool:
    return effective_status(status, respond_by_day, as_of) == UNANSWERED


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def may_conclude(role: str, county: str | None, issuer_role: str,
                 issuer_county: str | None) -> bool:
    """Who may withdraw or close: the issuer only (art. 10; docs/architecture.md) - the issuing
    county's officers for a county's recommendation, city officers for the city's (one an
    admin issued is the city's) - and an admin, as the operator's override."""
    if role == "admin":
        return True
    if issuer_role == "county_officer":
        return role == "county_officer" and county is not None and county == issuer_county
    return role == "city_officer"


def is_override(role: str, issuer_role: str) -> bool:
    """An admin concluding someone else's recommendation: allowed, but recorded as such."""
    return role == "admin" and issuer_role != "admin"
