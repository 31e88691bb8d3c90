"""Training figures of the assessment report (art. 16, art. 15 教育培训), asked of the
talent service, which owns courses and attendance.

Asked over nameko RPC with a deadline, outside any transaction: when the talent service
does not answer in time (stopped, not deployed, slow), the report says the training
columns are unavailable rather than showing zeros it cannot know.
"""
from __future__ import annotations

import logging
from typing import Callable

import eventlet

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
KEYS = ("training_courses", "training_attendees", "training_passed")
_FROM_TALENT = {"training_courses": "courses", "training_attendees": "attendees",
                "training_passed": "passed"}
CITY = "city"  # the talent service's key for city-level courses


def ask(call: Callable[[int], dict], year: int, timeout: float = DEFAULT_TIMEOUT_S) -> dict | None:
    """{county or "city": {courses, attendees, passed}}, or None when talent did not answer."""
    try:
        with eventlet.Timeout(timeout):
            answer = call(year)
    except eventlet.Timeout:
        log.warning("talent did not answer training_summary(%s) within %.1fs", year, timeout)
        return None
    except Exception as exc:  # an unknown service, a broken connection: the same for the report
        log.warning("talent could not give training figures for %s: %s", year, exc)
        return None
    return answer if isinstance(answer, dict) else None


def columns_of(summary: dict | None, county: str) -> dict:
    """The report's training columns for one county: None each when unavailable, 0 when
    talent answered and the county had no course."""
    if summary is None:
        return {key: None for key in KEYS}
    figures = summary.get(county) or {}
    return {key: int(figures.get(source) or 0) for key, source in _FROM_TALENT.items()}
