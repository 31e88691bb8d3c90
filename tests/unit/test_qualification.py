import pytest

from shared.domain.qualification import BLOCKING, WARNING, RuleSet, blocking, check

QUALIFIED = {
    "years_quality_work": 5, "title_level": "intermediate", "education_level": "bachelor",
    "training_certificate": "CZ-2026-0001", "attests_law_knowledge": True,
    "attests_organisational_ability": True, "is_decision_level": True,
}
BY_TOP = {"appointed_by_top_manager": True}


def codes(findings):
    return {f.code: f.severity for f in findings}


def test_fully_qualified_cqo_has_no_findings():
    assert check(QUALIFIED, BY_TOP) == []


def test_under_three_years_is_blocking():
    found = check({**QUALIFIED, "years_quality_work": 2}, BY_TOP)
    assert codes(found) == {"QUAL_YEARS": BLOCKING}
    assert "2年" in found[0].message and found[0].article == "第六条"


def test_title_or_education_either_suffices():
    assert check({**QUALIFIED, "title_level": "none"}, BY_TOP) == []
    assert check({**QUALIFIED, "education_level": "secondary"}, BY_TOP) == []
    found = check({**QUALIFIED, "title_level": "junior", "education_level": "secondary"}, BY_TOP)
    assert codes(found) == {"QUAL_TITLE_OR_EDUCATION": BLOCKING}
    assert "初级" in found[0].message and "高中及以下" in found[0].message


def test_junior_college_without_title_is_a_warning_for_the_county():
    found = check({**QUALIFIED, "title_level": "none", "education_level": "junior_college"}, BY_TOP)
    assert codes(found) == {"QUAL_EDUCATION_CONFIRM": WARNING}
    assert "县局确认" in found[0].message


def test_missing_training_certificate_is_only_a_warning():
    found = check({**QUALIFIED, "training_certificate": " "}, BY_TOP)
    assert codes(found) == {"QUAL_TRAINING": WARNING}
    assert blocking(found) == []


def test_attestations_are_required():
    found = check({**QUALIFIED, "attests_law_knowledge": False,
                   "attests_organisational_ability": False}, BY_TOP)
    assert codes(found) == {"QUAL_ATTEST_LAW": BLOCKING, "QUAL_ATTEST_ORGANISATION": BLOCKING}


def test_appointment_warnings():
    found = check({**QUALIFIED, "is_decision_level": False}, {"appointed_by_top_manager": False})
    assert codes(found) == {"APPT_NOT_TOP_MANAGER": WARNING, "APPT_BELOW_DECISION_LEVEL": WARNING}


def test_rule_set_is_data():
    rules = RuleSet.from_mapping({"min_years": 5, "accepted_education": ["junior_college", "bachelor"],
                                  "severities": {"QUAL_TRAINING": "blocking"}})
    found = check({**QUALIFIED, "years_quality_work": 4, "title_level": "none",
                   "education_level": "junior_college", "training_certificate": ""}, BY_TOP, rules)
    assert codes(found) == {"QUAL_YEARS": BLOCKING, "QUAL_TRAINING": BLOCKING}


def test_rule_set_rejects_unknown_severity():
    with pytest.raises(ValueError):
        RuleSet.from_mapping({"severities": {"QUAL_YEARS": "fatal"}})
