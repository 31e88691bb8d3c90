"""How the city decides one filing against the register (arts. 5, 6, 13, 14;
docs/architecture.md, "Ordering per enterprise").

Plain Python: the use case loads the enterprise's current appointment, asks `decide`,
and carries out the returned action. Nothing here touches a database or a broker.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Mapping

from shared.contracts import FILING_KINDS
from shared.domain.qualification import (CERT_UNVERIFIED, Certificate, Finding, RuleSet, blocking,
                                          certificate_number, check, check_certificate)
from services.registry.domain.deadlines import Lateness, lateness

ACCEPTED, REJECTED, WAITING = "accepted", "rejected", "waiting"
WITHDRAWN = "withdrawn"  # taken back at the county's request while it waited (never decided)

# what the use case does to the register when a filing is accepted
CREATE = "create"              # a new appointment (establishment)
REPLACE = "replace"            # end the current one, create the new one (change, renewal)
END = "end"                    # end the current one (end of the post)
UPDATE = "update"              # new details of the current CQO (audited, history kept)


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Current:
    """The enterprise's current appointment, as far as deciding needs it."""

    appointment_id: int
    id_hmac: str
    cqo_name: str
    appointed_on: date
    training_certificate: str | None = None


@dataclass
class Decision:
    outcome: str
    action: str | None = None
    reasons: list[Reason] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    lateness: Lateness = field(default_factory=Lateness.on_time)
    # the certificate number to check again when talent announces it (未核验)
    certificate_pending: str | None = None

    @classmethod
    def reject(cls, code: str, message: str, findings=()) -> "Decision":
        return cls(REJECTED, reasons=[Reason(code, message)], findings=list(findings))

    @classmethod
    def wait(cls, kind_name: str) -> "Decision":
        return cls(WAITING, reasons=[Reason(
            "WAITING_FOR_PREDECESSOR",
            f"尚未收到该企业的岗位设立备案，本{kind_name}备案待前序备案到达后处理")])


# what to file instead when there is no filed CQO because the establishment was refused
_INSTEAD_OF = {
    "change": "请将拟任首席质量官作为岗位设立备案提交（修改原岗位设立备案后重报，或提交新的岗位设立备案）",
    "renewal": "请将续任人员作为岗位设立备案提交（修改原岗位设立备案后重报，或提交新的岗位设立备案）",
    "update": "请先修改原岗位设立备案后重报（或提交新的岗位设立备案），备案通过后再提交信息更新",
    "end": "该企业没有已备案的首席质量官，无需提交岗位撤销备案；如设立该岗位，请提交岗位设立备案",
}


def ends_on(filing: dict) -> date:
    """The day a change, renewal or end ends the current appointment: the date it took
    effect (change, end) or the new appointment's date (renewal)."""
    return filing.get("effective_on") or filing["appointment"]["appointed_on"]


def predates_current(filing: dict, current: Current) -> Reason | None:
    """A change or renewal dated before the current appointment began would end it
    before it started (history is never rewritten, so it is refused, not reordered)."""
    kind, start = filing["kind"], current.appointed_on
    since = f"在任首席质量官（{current.cqo_name}）的任命日期{start:%Y年%m月%d日}"
    effective_on = filing.get("effective_on")
    if effective_on is not None and effective_on < start:
        return Reason("EFFECTIVE_BEFORE_APPOINTMENT",
                      f"生效日期{effective_on:%Y年%m月%d日}早于{since}，任职不能在开始之前结束，请核对生效日期")
    appointed_on = filing["appointment"]["appointed_on"]
    if kind in ("change", "renewal") and appointed_on < start:
        return Reason("APPOINTMENT_BEFORE_CURRENT",
                      f"{FILING_KINDS[kind]}备案的任命日期{appointed_on:%Y年%m月%d日}早于{since}，"
                      "任职不能在开始之前结束，请核对任命日期（任命书日期）")
    return None


def decide(filing: dict, current: Current | None, *, has_history: bool,
           rules: RuleSet | None = None, establishment_rejected: bool = False,
           certificates: Mapping[str, Certificate] | None = None) -> Decision:
    """`filing` is a loaded FilingMessageSchema dict; `has_history`: the enterprise had
    appointments before (all ended), so a missing predecessor is not merely late;
    `establishment_rejected`: it never had one, and its ledger holds an establishment
    the city decided and refused, so there is no predecessor to wait for;
    `certificates`: the city's read model of training certificates (`.get(number)`), or
    None not to verify the filed certificate (art. 6)."""
    kind = filing["kind"]
    cqo, appointment = filing["cqo"], filing["appointment"]

    if kind == "establishment":
        if current is not None:
            return Decision.reject(
                "CQO_ALREADY_FILED",
                f"该企业已有在任首席质量官（{current.cqo_name}，自{current.appointed_on:%Y年%m月%d日}起），"
                "请提交变更备案")
        return _qualified(filing, CREATE, rules, certificates)

    if current is None:
        if has_history:
            return Decision.reject(
                "NO_CURRENT_CQO", "该企业当前没有在任的首席质量官，请提交岗位设立备案")
        if establishment_rejected:
            return Decision.reject(
                "ESTABLISHMENT_REJECTED",
                f"该企业的岗位设立备案未获市局备案通过（不予备案），目前没有已备案的首席质量官，"
                f"本{FILING_KINDS[kind]}备案不予备案。{_INSTEAD_OF[kind]}")
        # a change may overtake the establishment it replaces: hold it
        # (docs/architecture.md, "Ordering per enterprise")
        return Decision.wait(FILING_KINDS[kind])

    predates = predates_current(filing, current)
    if predates is not None:
        return Decision.reject(predates.code, predates.message)

    effective_on = filing.get("effective_on")
    same_person = cqo["id_hmac"] == current.id_hmac
    if kind in ("renewal", "update") and not same_person:
        return Decision.reject(
            "NOT_THE_CURRENT_CQO",
            f"{FILING_KINDS[kind]}备案的人员与在任首席质量官（{current.cqo_name}）不一致，请提交变更备案")
    if kind == "change" and same_person:
        return Decision.reject(
            "CHANGE_TO_SAME_PERSON", "变更后的首席质量官与在任人员相同，续任请提交续任备案，信息变化请提交信息更新")
    if kind == "end":
        decision = Decision(ACCEPTED, END)
    elif kind == "update":  # contact details: never late (art. 14)
        # a certificate filed after the appointment (training may follow it) is verified
        # like at appointment; one filed before was verified then
        new_number = certificate_number(cqo)
        if certificates is not None and new_number not in (None, (current.training_certificate or "").strip()):
            decision = _certified(Decision(ACCEPTED, UPDATE), filing, rules, certificates)
        else:
            decision = Decision(ACCEPTED, UPDATE)
    else:
        decision = _qualified(filing, REPLACE, rules, certificates)
    if decision.outcome == ACCEPTED:
        decision.lateness = lateness(kind, effective_on, filing["submitted_to_county_on"])
    return decision


def _qualified(filing: dict, action: str, rules: RuleSet | None,
               certificates: Mapping[str, Certificate] | None = None) -> Decision:
    decision = Decision(ACCEPTED, action, findings=check(filing["cqo"], filing["appointment"], rules))
    return _certified(decision, filing, rules, certificates)


def _certified(decision: Decision, filing: dict, rules: RuleSet | None,
               certificates: Mapping[str, Certificate] | None) -> Decision:
    """The decision with the filed certificate verified against the read model: blocking
    findings (art. 6 as configured) refuse the filing; an unknown number is 未核验 and
    left to be checked again, never waited for."""
    if certificates is not None:
        number = certificate_number(filing["cqo"])
        found = check_certificate(filing["cqo"], certificates.get(number) if number else None, rules)
        decision.findings.extend(found)
        if any(f.code == CERT_UNVERIFIED for f in found):
            decision.certificate_pending = number
    stops = blocking(decision.findings)
    if stops:
        return Decision.reject("QUALIFICATION_NOT_MET",
                               "首席质量官任职条件审核未通过：" + "；".join(f.message for f in stops),
                               decision.findings)
    return decision


def late_reason(decision: Decision) -> Reason | None:
    if not decision.lateness.late:
        return None
    return Reason("LATE_CHANGE",
                  f"变更应于{decision.lateness.deadline:%Y年%m月%d日}前向县级市场监管部门报告，"
                  f"逾期{decision.lateness.days_late}天（第十四条），予以备案并记录逾期")
