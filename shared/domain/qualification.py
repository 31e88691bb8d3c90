"""Art. 6 qualification check (and the art. 2/5 appointment warnings) as data-driven rules.

The rule set is data (years, accepted title and education levels, severities) so a
county or a later amendment changes it without code. The county runs the check at
intake (blocking findings stop submission); the city re-runs it when deciding and its
findings are the authoritative ones.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

BLOCKING = "blocking"
WARNING = "warning"

TITLE_LEVELS = {
    "none": "无职称",
    "junior": "初级",
    "intermediate": "中级",
    "associate_senior": "副高级",
    "senior": "正高级",
}
EDUCATION_LEVELS = {
    "secondary": "高中及以下",
    "junior_college": "大学专科",
    "bachelor": "大学本科",
    "master": "硕士研究生",
    "doctor": "博士研究生",
}


@dataclass(frozen=True)
class Finding:
    code: str
    article: str
    message: str
    severity: str

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RuleSet:
    """The defaults follow DESIGN.md section 1; every field can come from config."""

    min_years: int = 3
    accepted_titles: tuple[str, ...] = ("intermediate", "associate_senior", "senior")
    accepted_education: tuple[str, ...] = ("bachelor", "master", "doctor")
    # 大学专科 without the title: the text is ambiguous, so the county confirms it
    confirm_education: tuple[str, ...] = ("junior_college",)
    severities: Mapping[str, str] = field(default_factory=lambda: {
        "QUAL_YEARS": BLOCKING,
        "QUAL_TITLE_OR_EDUCATION": BLOCKING,
        "QUAL_EDUCATION_CONFIRM": WARNING,
        "QUAL_TRAINING": WARNING,  # training may follow appointment (art. 14 is not blocked)
        "QUAL_ATTEST_LAW": BLOCKING,
        "QUAL_ATTEST_ORGANISATION": BLOCKING,
        "APPT_NOT_TOP_MANAGER": WARNING,
        "APPT_BELOW_DECISION_LEVEL": WARNING,
    })

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "RuleSet":
        if not data:
            return cls()
        base = cls()
        severities = dict(base.severities)
        severities.update(data.get("severities") or {})
        for code, severity in severities.items():
            if severity not in (BLOCKING, WARNING):
                raise ValueError(f"severity of {code} must be blocking or warning, not {severity!r}")
        return cls(
            min_years=int(data.get("min_years", base.min_years)),
            accepted_titles=tuple(data.get("accepted_titles", base.accepted_titles)),
            accepted_education=tuple(data.get("accepted_education", base.accepted_education)),
            confirm_education=tuple(data.get("confirm_education", base.confirm_education)),
            severities=severities,
        )


def check(cqo: Mapping[str, Any], appointment: Mapping[str, Any],
          rules: RuleSet | None = None) -> list[Finding]:
    """Findings for one CQO and appointment; an empty list means fully qualified.

    `cqo` keys: years_quality_work, title_level, education_level, training_certificate,
    attests_law_knowledge, attests_organisational_ability, is_decision_level.
    `appointment` keys: appointed_by_top_manager.
    """
    rules = rules or RuleSet()
    findings: list[Finding] = []

    def add(code: str, article: str, message: str) -> None:
        findings.append(Finding(code, article, message, rules.severities.get(code, BLOCKING)))

    years = cqo.get("years_quality_work") or 0
    if years < rules.min_years:
        add("QUAL_YEARS", "第六条",
            f"从事质量管理工作年限应不少于{rules.min_years}年，申报为{_years(years)}年")

    title_ok = cqo.get("title_level") in rules.accepted_titles
    education = cqo.get("education_level")
    if not title_ok and education not in rules.accepted_education:
        if education in rules.confirm_education:
            add("QUAL_EDUCATION_CONFIRM", "第六条",
                f"学历为{EDUCATION_LEVELS.get(education, education)}且无中级及以上职称，"
                "“大学以上学历”是否包含大学专科由县局确认")
        else:
            add("QUAL_TITLE_OR_EDUCATION", "第六条",
                "应具有中级及以上职称或大学以上学历，申报为"
                f"{TITLE_LEVELS.get(cqo.get('title_level'), '未填写职称')}、"
                f"{EDUCATION_LEVELS.get(education, '未填写学历')}")

    if not (cqo.get("training_certificate") or "").strip():
        add("QUAL_TRAINING", "第六条",
            "未填写首席质量官任职培训合格证书编号，请在任职后尽快参加任职培训")
    if not cqo.get("attests_law_knowledge"):
        add("QUAL_ATTEST_LAW", "第六条",
            "企业未承诺该首席质量官熟悉质量相关法律法规")
    if not cqo.get("attests_organisational_ability"):
        add("QUAL_ATTEST_ORGANISATION", "第六条",
            "企业未承诺该首席质量官具备相应的组织协调能力")
    if not appointment.get("appointed_by_top_manager"):
        add("APPT_NOT_TOP_MANAGER", "第五条",
            "首席质量官应由企业最高管理者任命，申报的任命人不是最高管理者")
    if not cqo.get("is_decision_level"):
        add("APPT_BELOW_DECISION_LEVEL", "第五条",
            "首席质量官应进入企业决策层，申报的职务不在决策层")
    return findings


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


def _years(value: float) -> str:
    return f"{value:g}"
