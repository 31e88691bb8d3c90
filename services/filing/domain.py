"""County filing rules in the terms of the measures (arts. 5, 6, 12, 13, 14).

Plain Python: statuses and their transitions, the channel a filing travels by,
term and deadline defaults, which decisions of the city change a filing. No broker,
no database: the use-case layer asks these questions and acts on the answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, Iterator, Mapping, Sequence, TypeVar

from dateutil.relativedelta import relativedelta

from shared.contracts import CHANNELS, EFFECTIVE_DATE_KINDS, FILING_KINDS
from shared.domain import qualification
from shared.errors import Conflict

DEFAULT_TERM_YEARS = 3  # art. 5: "一般为三年"


# -- statuses -------------------------------------------------------------------------

SUBMITTED = "submitted"    # 待预审: the enterprise submitted it, the county has not reviewed
RETURNED = "returned"      # 退回: the county sent it back for correction
APPROVED = "approved"      # 预审通过: waits for the campaign's batch submission
FORWARDED = "forwarded"    # 已报送: handed to the city (in the outbox or delivered)
WAITING = "waiting"        # 等待前序备案: the city holds it until its predecessor arrives
WITHDRAWING = "withdrawing"  # 撤回申请中: the county asked the city to withdraw it (waiting there)
ACCEPTED = "accepted"      # 备案通过
REJECTED = "rejected"      # 不予备案
WITHDRAWN = "withdrawn"    # 已撤回: taken back before forwarding, or withdrawn by the city on request

STATUS_NAMES = {
    SUBMITTED: "待预审",
    RETURNED: "退回",
    APPROVED: "预审通过",
    FORWARDED: "已报送",
    WAITING: "等待前序备案",
    WITHDRAWING: "撤回申请中",
    ACCEPTED: "备案通过",
    REJECTED: "不予备案",
    WITHDRAWN: "已撤回",
}
STATUSES = tuple(STATUS_NAMES)

# "one open filing per enterprise at a time": everything not finally settled
# (the partial unique index of migration f0004 lists the same statuses)
OPEN_STATUSES = (SUBMITTED, RETURNED, APPROVED, FORWARDED, WAITING, WITHDRAWING)
FINAL_STATUSES = (ACCEPTED, REJECTED, WITHDRAWN)

# kinds whose CQO must meet art. 6; an update of contact details or the end of the
# post does not appoint anybody
QUALIFYING_KINDS = frozenset({"establishment", "change", "renewal"})

REVIEW_DECISIONS = {"approve": "预审通过", "return": "退回"}
CAMPAIGN, PROACTIVE = "campaign", "proactive"
assert set(CHANNELS) == {CAMPAIGN, PROACTIVE}


def status_name(status: str) -> str:
    return STATUS_NAMES.get(status, status)


def _invalid_state(status: str, action: str) -> Conflict:
    return Conflict(f"该备案当前状态为“{status_name(status)}”，不能{action}",
                    code="FILING_INVALID_STATE", details={"status": status})


def after_review(status: str, decision: str, channel: str) -> str:
    """Art. 12 pre-review. A proactive filing is forwarded the moment it is approved
    (art. 14 "及时报送"); a campaign filing waits for the batch submission (art. 13)."""
    if status != SUBMITTED:
        raise _invalid_state(status, "预审")
    if decision == "return":
        return RETURNED
    if decision != "approve":
        raise ValueError(f"unknown review decision {decision!r}")
    return FORWARDED if channel == PROACTIVE else APPROVED


def check_resubmittable(status: str) -> None:
    """A returned filing (or one the city refused) is corrected as a new version."""
    if status not in (RETURNED, REJECTED):
        raise _invalid_state(status, "修改后重新提交（仅“退回”或“不予备案”的备案可以修改重报）")


def after_withdraw(status: str) -> str:
    """The status a withdrawal leads to. Before pre-review approval the county withdraws
    it itself; a filing the city holds for its predecessor (等待前序备案) can only be
    withdrawn by the city: the county asks, shows 撤回申请中, and the city's answer (withdrawn,
    or the decision it had already made) settles it. Asking again changes nothing."""
    if status in (SUBMITTED, RETURNED):
        return WITHDRAWN
    if status in (WAITING, WITHDRAWING):
        return WITHDRAWING
    raise _invalid_state(status, "撤回（已预审通过或已报送的备案不能撤回；市局等待前序备案的可以申请撤回）")


def check_batchable(status: str, channel: str) -> str | None:
    """Why this filing cannot go into a batch submission, or None."""
    if channel != CAMPAIGN:
        return "主动备案在预审通过时已报送，不参加集中报送"
    if status != APPROVED:
        return f"当前状态为“{status_name(status)}”，只有“预审通过”的备案可以集中报送"
    return None


# -- consistency (one open filing; establishment vs change) ---------------------------------

def open_filing_conflict(existing_id: str, existing_status: str) -> Conflict:
    return Conflict(
        f"该企业已有一件未办结的备案（状态：{status_name(existing_status)}），"
        "请等待其办结，或在其被退回后修改重报，不能同时提交新的备案",
        code="FILING_OPEN_EXISTS",
        details={"filing_id": existing_id, "status": existing_status})


def has_filed_cqo(latest_accepted_kind: str | None) -> bool:
    """Whether the enterprise has a filed CQO, from its latest accepted filing."""
    return latest_accepted_kind is not None and latest_accepted_kind != "end"


def check_kind_allowed(kind: str, filed: bool) -> None:
    """An establishment when a CQO is already filed is a change in disguise."""
    if kind == "establishment" and filed:
        raise Conflict(
            "该企业在本县（市、区）已有备案通过的首席质量官，不能再次提交岗位设立备案："
            "更换首席质量官请提交“变更”备案，原人员任期届满续聘请提交“续任”备案，"
            "联系方式等信息变化请提交“信息更新”备案",
            code="FILING_ALREADY_ESTABLISHED", details={"suggested_kind": "change"})


NO_PRIOR_FINDING = qualification.Finding(
    "FILING_NO_PRIOR", "第十四条",
    "本县（市、区）未查到该企业备案通过的首席质量官，请县局核实其岗位设立情况（由市局最终核对）",
    qualification.WARNING)


def intake_findings(kind: str, cqo: Mapping, appointment: Mapping, filed: bool,
                    rules: qualification.RuleSet) -> list[qualification.Finding]:
    """Art. 6 (and art. 2/5) findings at the county's intake."""
    findings = (qualification.check(cqo, appointment, rules)
                if kind in QUALIFYING_KINDS else [])
    if kind != "establishment" and not filed:
        findings.append(NO_PRIOR_FINDING)
    return findings


# field of the intake form that each finding is about (for problem+json `errors`)
FINDING_FIELDS = {
    "QUAL_YEARS": "cqo.years_quality_work",
    "QUAL_TITLE_OR_EDUCATION": "cqo.title_level",
    "QUAL_EDUCATION_CONFIRM": "cqo.education_level",
    "QUAL_TRAINING": "cqo.training_certificate",
    "QUAL_ATTEST_LAW": "cqo.attests_law_knowledge",
    "QUAL_ATTEST_ORGANISATION": "cqo.attests_organisational_ability",
    "APPT_NOT_TOP_MANAGER": "appointment.appointed_by_top_manager",
    "APPT_BELOW_DECISION_LEVEL": "cqo.is_decision_level",
}


# -- dates ----------------------------------------------------------------------------------

def default_term_end(appointed_on: date, years: int = DEFAULT_TERM_YEARS) -> date:
    """Art. 5: appointment date + 3 years (29 February falls back to 28 February)."""
    return appointed_on + relativedelta(years=years)


def first_submission_day(existing: date | None, now: date) -> date:
    """Art. 14 counts from the day the enterprise *first* submitted the filing to the
    county: a corrected resubmission does not move it (nor does the city's receipt)."""
    return existing or now


# -- campaigns (art. 13) --------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignWindow:
    year: int
    opens_on: date
    closes_on: date
    closed: bool = False

    def is_open_on(self, day: date) -> bool:
        return not self.closed and self.opens_on <= day <= self.closes_on


def current_campaign(campaigns: Iterable[CampaignWindow], day: date) -> CampaignWindow | None:
    """The open campaign whose window includes `day` (the latest year if several)."""
    open_ones = [c for c in campaigns if c.is_open_on(day)]
    return max(open_ones, key=lambda c: c.year) if open_ones else None


def channel_for(campaign: CampaignWindow | None) -> tuple[str, int | None]:
    """Filings made in an open campaign's window belong to it (art. 13); the others are
    proactive filings (art. 14)."""
    return (CAMPAIGN, campaign.year) if campaign else (PROACTIVE, None)


# -- the city's decisions --------------------------------------------------------------------

OUTCOME_STATUS = {"accepted": ACCEPTED, "rejected": REJECTED, "waiting": WAITING,
                  "withdrawn": WITHDRAWN}


def status_after_decision(status: str, current_version: int, version: int,
                          outcome: str) -> str | None:
    """The filing's new status, or None when the decision does not change it.

    Decisions arrive at least once and in any order: one about an older version (the
    filing was corrected since), a second copy, or "waiting" after the final answer
    are kept in the history but change nothing. The final outcome is never overturned.
    While a withdrawal is asked for (撤回申请中) the city's answer wins: withdrawn, or the
    decision it made first.
    """
    if version != current_version:
        return None
    if status not in (FORWARDED, WAITING, WITHDRAWING):
        return None
    new = OUTCOME_STATUS[outcome]
    if new == WAITING and status == WITHDRAWING:
        return None  # a late copy of "waiting" does not cancel the request
    return None if new == status else new


# -- batches -------------------------------------------------------------------------------

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def filing_message_id(filing_id: str, version: int) -> str:
    """One filing version = one message identity (docs/architecture.md, Outbox and inbox)."""
    return f"filing:{filing_id}:v{version}"


def batch_message_id(batch_id: str, chunk: int) -> str:
    return f"batch:{batch_id}:{chunk}"


BATCH_ROUTING_KIND = "batch"  # filing.<county>.batch: the intake binding filing.*.* takes it
assert BATCH_ROUTING_KIND not in FILING_KINDS
assert EFFECTIVE_DATE_KINDS <= set(FILING_KINDS)
