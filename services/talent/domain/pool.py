"""Plain rules of the talent pool and its experts (art. 15 人才建设, art. 10 回避).

No database, no broker: the pool's use cases (services/talent/pool/) load rows, ask
these functions and write what they answer.

- A member's status only moves forward (active → lapsed → ended): the register's events
  may arrive twice or out of order, and the initial fill may read an appointment just
  before it ended, so a late "accepted" never revives a member that left.
- An expert is suspended while any reason stands (`suspensions`: a list of
  {code, ref, since, ...}); each reason is added and cleared by what caused it (the
  appointment's end, a replacement recommendation, an officer), so clearing one never
  clears another.
- The fields of expertise are a list kept as data (GB/T 4754-2017 sections and
  divisions by default, services/talent/data/).
"""
from __future__ import annotations

from datetime import date
from typing import Iterable, Mapping

from shared.errors import ValidationFailed

# member status, in the only order it may move
ACTIVE, LAPSED, ENDED = "active", "lapsed", "ended"
_MEMBER_ORDER = {ACTIVE: 0, LAPSED: 1, ENDED: 2}
MEMBER_STATUS_NAMES = {ACTIVE: "在任", LAPSED: "任期届满", ENDED: "已离任"}
SOURCE_NAMES = {"appointment": "备案任命", "nomination": "县局推荐"}

# expert status
EXPERT_ACTIVE, EXPERT_SUSPENDED, EXPERT_ENDED = "active", "suspended", "ended"
EXPERT_STATUS_NAMES = {EXPERT_ACTIVE: "在库", EXPERT_SUSPENDED: "暂停", EXPERT_ENDED: "已终止"}

# reasons of a suspension
APPOINTMENT_ENDED = "appointment_ended"
APPOINTMENT_LAPSED = "appointment_lapsed"
REPLACEMENT_RECOMMENDED = "replacement_recommended"
MANUAL = "manual"
SUSPENSION_NAMES = {
    APPOINTMENT_ENDED: "首席质量官任职已终止",
    APPOINTMENT_LAPSED: "首席质量官任期届满未续任",
    REPLACEMENT_RECOMMENDED: "所在企业收到撤换建议（第十条）",
    MANUAL: "市局暂停",
}
# reasons that belong to an appointment: a newer appointment of the same person clears them
APPOINTMENT_REASONS = frozenset({APPOINTMENT_ENDED, APPOINTMENT_LAPSED})


def member_status_after(current: str | None, incoming: str) -> str:
    """The status of a member once an event saying `incoming` is applied."""
    if current is None:
        return incoming
    return max(current, incoming, key=_MEMBER_ORDER.__getitem__)


def supersedes(new_appointment_id: int | None, current_appointment_id: int | None) -> bool:
    """Whether an appointment is later than the one an expert is linked to (appointment
    ids grow with acceptance: a renewal or change gets a higher one). An expert linked
    to a nomination (no appointment) follows any appointment of the same person."""
    if new_appointment_id is None:
        return False
    return current_appointment_id is None or new_appointment_id > current_appointment_id


# -- suspensions ---------------------------------------------------------------------------

def add_reason(suspensions: Iterable[Mapping], code: str, ref: str, since: date | str,
               **extra) -> list[dict]:
    """The reasons with (code, ref) added; unchanged when it stands already (a
    redelivered event, a second click)."""
    reasons = [dict(r) for r in suspensions]
    if any(r["code"] == code and str(r["ref"]) == str(ref) for r in reasons):
        return reasons
    since_text = since.isoformat() if isinstance(since, date) else str(since)
    reasons.append({"code": code, "ref": str(ref), "since": since_text, **extra})
    return reasons


def clear_reasons(suspensions: Iterable[Mapping], code: str | Iterable[str],
                  ref: str | None = None) -> list[dict]:
    """The reasons without those of `code` (one code or several), and of `ref` if given."""
    codes = {code} if isinstance(code, str) else set(code)
    return [dict(r) for r in suspensions
            if not (r["code"] in codes and (ref is None or str(r["ref"]) == str(ref)))]


def expert_status(current: str, suspensions: Iterable[Mapping]) -> str:
    """Suspended while a reason stands; an ended expert stays ended."""
    if current == EXPERT_ENDED:
        return EXPERT_ENDED
    return EXPERT_SUSPENDED if list(suspensions) else EXPERT_ACTIVE


def describe(suspensions: Iterable[Mapping]) -> list[dict]:
    """The reasons with their Chinese names, for display."""
    return [{**r, "name": SUSPENSION_NAMES.get(r["code"], r["code"])} for r in suspensions]


# -- a term and consent --------------------------------------------------------------------

def check_term(term_start: date, term_end: date) -> None:
    if term_end <= term_start:
        raise ValidationFailed("专家聘期的结束日期应晚于开始日期", code="EXPERT_TERM_INVALID",
                               field="term_end")


def contactable(consent_to_contact: bool, status: str) -> bool:
    """Contact details are given out only with the expert's recorded consent."""
    return bool(consent_to_contact) and status != EXPERT_ENDED
