"""Art. 6 qualification check (and the art. 2/5 appointment warnings) as data-driven rules.

The rule set is data (years, accepted title and education levels, severities) so a
county or a later amendment changes it without code. The county runs the check at
intake (blocking findings stop submission); the city re-runs it when deciding and its
findings are the authoritative ones.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Mapping

from shared.contracts.events import APPOINTMENT_TRAINING, COURSE_KINDS

BLOCKING = "blocking"
WARNING = "warning"
# a note the city adds to its record after deciding (a certificate verified later); it is
# never part of a decision sent to a county, whose findings are blocking or warning only
NOTE = "note"

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
    """The defaults are those of docs/architecture.md, "The rules as the code reads them";
    every field can come from config."""

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
    # the training certificate as the city's read model of talent's certificates knows it
    # (docs/architecture.md, "The rules as the code reads them"): one severity for what is
    # wrong with it (warning: at go-live no historic certificates exist); 未核验 is always a
    # warning, since it only says the read model has not heard of the number yet
    certificate_severity: str = WARNING
    # days after the decision before a number talent never announced counts as unknown
    # (the attendance may be entered after the enterprise wrote the number down)
    certificate_grace_days: int = 14

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "RuleSet":
        """A rule set from data (the QUALIFICATION_RULES setting); what is absent keeps
        its default. Anything that would silently mean something else (an unknown key, a
        level or finding code that does not exist, a wrong type) raises ValueError
        (Chinese, English)."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("规则集应为映射（JSON 对象）", "the rule set must be a mapping (a JSON object)")
        unknown = sorted(set(data) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"未知的规则项：{'、'.join(map(str, unknown))}（可用：{'、'.join(sorted(_RULE_KEYS))}）",
                             f"unknown key(s) {', '.join(map(str, unknown))} "
                             f"(known: {', '.join(sorted(_RULE_KEYS))})")
        base = cls()
        years = data.get("min_years", base.min_years)
        if isinstance(years, bool) or not isinstance(years, int) or years < 0:
            raise ValueError(f"min_years 应为非负整数，而不是 {years!r}",
                             f"min_years must be a non-negative integer, not {years!r}")
        levels = {name: _levels(data, name, getattr(base, name), known)
                  for name, known in (("accepted_titles", TITLE_LEVELS),
                                      ("accepted_education", EDUCATION_LEVELS),
                                      ("confirm_education", EDUCATION_LEVELS))}
        given = data.get("severities") or {}
        if not isinstance(given, Mapping):
            raise ValueError("severities 应为“检查代码: blocking|warning”的映射",
                             "severities must map finding codes to blocking or warning")
        severities = dict(base.severities)
        for code, severity in given.items():
            if code not in severities:
                raise ValueError(f"severities 中的检查代码“{code}”不存在",
                                 f"unknown finding code {code!r} in severities")
            if severity not in (BLOCKING, WARNING):
                raise ValueError(f"{code} 的严重程度应为 blocking 或 warning，而不是 {severity!r}",
                                 f"severity of {code} must be blocking or warning, not {severity!r}")
            severities[code] = severity
        certificate_severity = data.get("certificate_severity", base.certificate_severity)
        if certificate_severity not in (BLOCKING, WARNING):
            raise ValueError(f"certificate_severity 应为 blocking 或 warning，而不是 {certificate_severity!r}",
                             f"certificate_severity must be blocking or warning, not {certificate_severity!r}")
        grace = data.get("certificate_grace_days", base.certificate_grace_days)
        if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
            raise ValueError(f"certificate_grace_days 应为非负整数，而不是 {grace!r}",
                             f"certificate_grace_days must be a non-negative integer, not {grace!r}")
        return cls(min_years=years, severities=severities, certificate_severity=certificate_severity,
                   certificate_grace_days=grace, **levels)


_RULE_KEYS = frozenset({"min_years", "accepted_titles", "accepted_education",
                        "confirm_education", "severities", "certificate_severity",
                        "certificate_grace_days"})


def _levels(data: Mapping[str, Any], name: str, default: tuple[str, ...],
            known: Mapping[str, str]) -> tuple[str, ...]:
    values = data.get(name, default)
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} 应为列表，而不是 {values!r}", f"{name} must be a list, not {values!r}")
    wrong = [v for v in values if v not in known]
    if wrong:
        raise ValueError(f"{name} 含有不存在的级别：{wrong}（可用：{'、'.join(known)}）",
                         f"{name} holds unknown level(s) {wrong} (known: {', '.join(known)})")
    return tuple(values)


def rules_from_config(config: Mapping[str, Any]) -> RuleSet:
    """The QUALIFICATION_RULES setting (JSON, @file or a mapping), checked: a bad rule set
    raises shared.config.SettingError, and the service does not start."""
    from shared.config import structured  # the domain stays importable without the loader

    return structured(config, "QUALIFICATION_RULES", RuleSet.from_mapping)


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


# -- the training certificate, verified at the city ------------------------------------

CERT_UNVERIFIED = "TRAINING_CERTIFICATE_UNVERIFIED"
CERT_UNKNOWN = "TRAINING_CERTIFICATE_UNKNOWN"
CERT_NOT_PASSED = "TRAINING_CERTIFICATE_NOT_PASSED"
CERT_OTHER_PERSON = "TRAINING_CERTIFICATE_OTHER_PERSON"
CERT_REVOKED = "TRAINING_CERTIFICATE_REVOKED"
CERT_WRONG_COURSE = "TRAINING_CERTIFICATE_WRONG_COURSE"
CERT_VERIFIED = "TRAINING_CERTIFICATE_VERIFIED"


@dataclass(frozen=True)
class Certificate:
    """A training certificate as the city knows it from talent's events. A certificate
    heard of only through its revocation has no course kind and no result."""

    certificate_no: str
    id_hmac: str
    course_kind: str | None = None
    passed: bool | None = None
    issued_on: date | None = None
    revoked_on: date | None = None
    revoked_reason: str | None = None


def certificate_number(cqo: Mapping[str, Any]) -> str | None:
    """The filed certificate number as the read model is keyed, or None if there is none."""
    return (cqo.get("training_certificate") or "").strip() or None


def check_certificate(cqo: Mapping[str, Any], certificate: Certificate | None,
                      rules: RuleSet | None = None) -> list[Finding]:
    """Findings on the filed certificate number against what the city knows of it;
    [] when there is no number (QUAL_TRAINING says so) or the certificate is in order.
    `certificate` None: the read model has not heard of the number (未核验)."""
    rules = rules or RuleSet()
    number = certificate_number(cqo)
    if number is None:
        return []
    if certificate is None:
        return [Finding(CERT_UNVERIFIED, "第六条",
                        f"培训证书暂未核验：市级培训记录中暂无证书编号{number}，收到后自动核验并补记结果",
                        WARNING)]
    found: list[Finding] = []

    def add(code: str, message: str) -> None:
        found.append(Finding(code, "第六条", message, rules.certificate_severity))

    if certificate.revoked_on is not None:
        because = f"（{certificate.revoked_reason}）" if certificate.revoked_reason else ""
        add(CERT_REVOKED, f"培训证书{number}已于{certificate.revoked_on:%Y年%m月%d日}撤销{because}")
    if certificate.id_hmac != cqo.get("id_hmac"):
        add(CERT_OTHER_PERSON, f"培训证书{number}的持证人不是申报的首席质量官")
    if certificate.course_kind not in (None, APPOINTMENT_TRAINING):
        add(CERT_WRONG_COURSE, f"培训证书{number}为"
            f"{COURSE_KINDS.get(certificate.course_kind, certificate.course_kind)}证书，"
            "不是首席质量官任职培训合格证书")
    if certificate.passed is False:
        add(CERT_NOT_PASSED, f"培训证书{number}对应的任职培训考核未合格")
    return found


def unknown_certificate(number: str, rules: RuleSet | None = None) -> Finding:
    """The number is still not among talent's certificates after the grace period."""
    rules = rules or RuleSet()
    return Finding(CERT_UNKNOWN, "第六条",
                   f"培训证书编号{number}在市级培训记录中不存在（决定后{rules.certificate_grace_days}日仍未收到）",
                   rules.certificate_severity)


def certificate_verified(number: str) -> Finding:
    return Finding(CERT_VERIFIED, "第六条", f"培训证书{number}已核验：任职培训考核合格", NOTE)


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


def _years(value: float) -> str:
    return f"{value:g}"
