"""The one clock of every service: today's calendar date and the current instant.

The measures' dates (terms, deadlines, campaign windows) are local calendar dates in
Asia/Shanghai; instants are stored and compared in UTC. Call these through the module
(`clock.today()`), never bind them by name, so that a test can patch `shared.clock`
once for every service.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def today() -> date:
    """Today's calendar date in Asia/Shanghai: the measures' dates are local dates."""
    return datetime.now(TZ).date()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def aware(value):
    """A naive datetime read back from SQLite is UTC: attach UTC. Anything else (an
    aware datetime, None, a date, any other column value) is returned as it is."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def local_date(instant: datetime) -> date:
    """The Asia/Shanghai calendar date of a stored instant (a naive one is UTC): the
    date a term or deadline is compared with when something happened at `instant`."""
    return aware(instant).astimezone(TZ).date()
