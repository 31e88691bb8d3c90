"""Art. 14: a change of CQO (or the end of the post) is reported to the county within one month.

"Within one month" means by the same day of the next month, or that month's last day
when it has no such day (docs/architecture.md, "Dates and identifiers"). What counts is
the day the enterprise
first submitted the filing to the county, never the day the city received it: a
campaign batch is not late because the county batched it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta

from shared.contracts import EFFECTIVE_DATE_KINDS


def change_deadline(effective_on: date) -> date:
    return effective_on + relativedelta(months=1)  # clamps to the month's last day


@dataclass(frozen=True)
class Lateness:
    late: bool
    deadline: date | None
    days_late: int

    @classmethod
    def on_time(cls, deadline: date | None = None) -> "Lateness":
        return cls(False, deadline, 0)


def lateness(kind: str, effective_on: date | None, submitted_to_county_on: date) -> Lateness:
    # the effective date starts the one-month clock; updates of contact details and
    # establishments are never late
    if kind not in EFFECTIVE_DATE_KINDS or effective_on is None:
        return Lateness.on_time()
    deadline = change_deadline(effective_on)
    if submitted_to_county_on <= deadline:
        return Lateness.on_time(deadline)
    return Lateness(True, deadline, (submitted_to_county_on - deadline).days)
