"""When a delivery is tried (again): exponential back-off with jitter, and SMS quiet
hours, which delay a message and never drop it."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Backoff:
    base_s: float = 30.0
    max_s: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 for the first): the
        exponential step capped at `max_s`, of which the upper half is random, so that
        deliveries that failed together do not all come back together."""
        step = min(self.max_s, self.base_s * (2 ** max(attempts - 1, 0)))
        jitter = (rng or random).uniform(0, step / 2)
        return timedelta(seconds=step / 2 + jitter)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time in which no SMS leaves; `start` > `end` spans midnight
    (22:00-08:00). start == end means no quiet hours."""

    start: time = time(22, 0)
    end: time = time(8, 0)
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")

    def _inside(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, now: datetime) -> datetime:
        """`now` if an SMS may leave now, else the end of the current quiet window (UTC)."""
        local = now.astimezone(self.tz)
        if not self._inside(local.time().replace(tzinfo=None)):
            return now
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(timezone.utc)


def parse_window(text: str, tz: str = "Asia/Shanghai") -> QuietHours:
    """`22:00-08:00` -> QuietHours; empty or `off` -> none. Raises ValueError."""
    text = (text or "").strip()
    if text.lower() in ("", "off", "none"):
        return QuietHours(time(0, 0), time(0, 0), ZoneInfo(tz))
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError("quiet hours must look like 22:00-08:00")
    return QuietHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), ZoneInfo(tz))
