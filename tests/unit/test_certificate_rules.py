"""The training certificate of art. 6 as the city verifies it (shared/domain/qualification.py),
the read model's event rule (services/registry/domain/certificates.py) and how a decision
uses it (services/registry/domain/register.py), without I/O."""
from datetime import date, datetime, timedelta, timezone

import pytest

from services.registry.domain import certificates as model
from services.registry.domain.register import ACCEPTED, REJECTED, UPDATE, Current, decide
from shared.config import SettingError
from shared.domain.qualification import (BLOCKING, NOTE, WARNING, Certificate, RuleSet,
                                         certificate_verified, check_certificate,
                                         rules_from_config, unknown_certificate)

ME, OTHER = "a" * 64, "b" * 64
CQO = {"name": "张三", "id_hmac": ME, "years_quality_work": 5, "title_level": "intermediate",
       "education_level": "bachelor", "training_certificate": " CZ-RZ-1 ", "attests_law_knowledge": True,
       "attests_organisational_ability": True, "is_decision_level": True}
APPOINTMENT = {"appointed_by_top_manager": True, "appointed_on": date(2026, 1, 10)}
GOOD = Certificate("CZ-RZ-1", ME, course_kind="appointment", passed=True, issued_on=date(2025, 11, 3))


def codes(findings):
    return {f.code: f.severity for f in findings}


def filing(kind="establishment", **cqo):
    return {"kind": kind, "cqo": {**CQO, **cqo}, "appointment": APPOINTMENT, "effective_on": None,
            "submitted_to_county_on": date(2026, 2, 1)}


def test_a_passed_appointment_training_certificate_of_the_cqo_has_no_finding():
    assert check_certificate(CQO, GOOD) == []


def test_no_number_is_left_to_qual_training():
    assert check_certificate({**CQO, "training_certificate": "  "}, None) == []


def test_a_number_the_city_has_not_heard_of_is_unverified_and_always_a_warning():
    strict = RuleSet.from_mapping({"certificate_severity": "blocking"})
    [found] = check_certificate(CQO, None, strict)
    assert (found.code, found.severity, found.article) == ("TRAINING_CERTIFICATE_UNVERIFIED", WARNING, "第六条")
    assert "暂未核验" in found.message and "CZ-RZ-1" in found.message


@pytest.mark.parametrize("certificate, code", [
    (Certificate("CZ-RZ-1", OTHER, "appointment", True), "TRAINING_CERTIFICATE_OTHER_PERSON"),
    (Certificate("CZ-RZ-1", ME, "appointment", False), "TRAINING_CERTIFICATE_NOT_PASSED"),
    (Certificate("CZ-RZ-1", ME, "basic", True), "TRAINING_CERTIFICATE_WRONG_COURSE"),
    (Certificate("CZ-RZ-1", ME, revoked_on=date(2026, 1, 2), revoked_reason="考核舞弊"),
     "TRAINING_CERTIFICATE_REVOKED"),
])
def test_what_is_wrong_with_a_known_certificate_has_its_own_code(certificate, code):
    assert codes(check_certificate(CQO, certificate)) == {code: WARNING}


def test_every_problem_is_said_and_the_severity_comes_from_the_rule_set():
    rules = RuleSet.from_mapping({"certificate_severity": "blocking"})
    found = check_certificate(CQO, Certificate("CZ-RZ-1", OTHER, "advanced", False, revoked_on=date(2026, 1, 2)),
                              rules)
    assert codes(found) == {"TRAINING_CERTIFICATE_REVOKED": BLOCKING, "TRAINING_CERTIFICATE_OTHER_PERSON": BLOCKING,
                            "TRAINING_CERTIFICATE_WRONG_COURSE": BLOCKING, "TRAINING_CERTIFICATE_NOT_PASSED": BLOCKING}
    assert "提升培训" in next(f.message for f in found if f.code.endswith("WRONG_COURSE"))
    assert unknown_certificate("X-1", rules).severity == BLOCKING
    assert "14日" in unknown_certificate("X-1").message
    assert certificate_verified("X-1").severity == NOTE and not certificate_verified("X-1").blocking


def test_certificate_keys_of_the_rule_set_from_config():
    rules = rules_from_config({"QUALIFICATION_RULES": '{"certificate_severity": "blocking", '
                                                      '"certificate_grace_days": 3}'})
    assert (rules.certificate_severity, rules.certificate_grace_days) == (BLOCKING, 3)
    assert (RuleSet().certificate_severity, RuleSet().certificate_grace_days) == (WARNING, 14)
    for bad in ('{"certificate_severity": "fatal"}', '{"certificate_grace_days": -1}',
                '{"certificate_grace_days": true}'):
        with pytest.raises(SettingError):
            rules_from_config({"QUALIFICATION_RULES": bad})


# -- the decision -------------------------------------------------------------------

def test_the_decision_verifies_the_certificate_only_when_given_the_read_model():
    assert decide(filing(), None, has_history=False).findings == []  # the county's check
    known = decide(filing(), None, has_history=False, certificates={"CZ-RZ-1": GOOD})
    assert known.findings == [] and known.certificate_pending is None
    unknown = decide(filing(), None, has_history=False, certificates={})
    assert unknown.outcome == ACCEPTED and unknown.certificate_pending == "CZ-RZ-1"
    assert [f.code for f in unknown.findings] == ["TRAINING_CERTIFICATE_UNVERIFIED"]


def test_a_blocking_certificate_finding_refuses_the_filing_but_unverified_never_does():
    strict = RuleSet.from_mapping({"certificate_severity": "blocking"})
    other = {"CZ-RZ-1": Certificate("CZ-RZ-1", OTHER, "appointment", True)}
    refused = decide(filing(), None, has_history=False, rules=strict, certificates=other)
    assert refused.outcome == REJECTED and refused.reasons[0].code == "QUALIFICATION_NOT_MET"
    assert "持证人" in refused.reasons[0].message
    assert decide(filing(), None, has_history=False, rules=strict, certificates={}).outcome == ACCEPTED


def test_an_update_verifies_a_newly_filed_certificate_only():
    current = Current(1, ME, "张三", date(2025, 1, 1), training_certificate=None)
    added = decide(filing("update"), current, has_history=True, certificates={})
    assert added.action == UPDATE and added.certificate_pending == "CZ-RZ-1"
    same = Current(1, ME, "张三", date(2025, 1, 1), training_certificate="CZ-RZ-1")
    assert decide(filing("update"), same, has_history=True, certificates={}).findings == []


# -- the read model ---------------------------------------------------------------------

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
ISSUED = {"certificate_no": "CZ-RZ-1", "course_id": 1, "course_kind": "appointment", "id_hmac": ME,
          "passed": True, "issued_on": date(2026, 11, 30)}
REVOKED = {"certificate_no": "CZ-RZ-1", "id_hmac": ME, "revoked_on": date(2026, 12, 2), "reason": "撤销"}


def test_a_revocation_before_its_issue_stays_revoked_and_learns_the_course():
    state = model.apply(None, model.REVOKED, T0 + timedelta(hours=2), "e2", REVOKED)
    state = model.apply(state, model.ISSUED, T0, "e1", ISSUED)
    assert state.revoked_on == date(2026, 12, 2) and state.course_kind == "appointment"
    assert state.last_event_id == "e2"


def test_the_newest_event_wins_and_repeats_change_nothing():
    issued = model.apply(None, model.ISSUED, T0, "e1", ISSUED)
    revoked = model.apply(issued, model.REVOKED, T0 + timedelta(hours=1), "e2", REVOKED)
    assert revoked.revoked_on is not None
    assert model.apply(revoked, model.ISSUED, T0, "e1", ISSUED) == revoked  # the old issue again
    reissued = model.apply(revoked, model.ISSUED, T0 + timedelta(hours=3), "e3", {**ISSUED, "passed": False})
    assert reissued.revoked_on is None and reissued.passed is False
    assert model.apply(reissued, model.REVOKED, T0 + timedelta(hours=1), "e2", REVOKED) == reissued


def test_a_correction_to_failed_taken_after_its_revocation_still_sets_the_result():
    passed = model.apply(None, model.ISSUED, T0, "e1", ISSUED)
    # talent announces the failed result, then the revocation; the registry takes them reversed
    revoked = model.apply(passed, model.REVOKED, T0 + timedelta(hours=2), "e3", REVOKED)
    failed = model.apply(revoked, model.ISSUED, T0 + timedelta(hours=1), "e2", {**ISSUED, "passed": False})
    assert failed.passed is False and failed.revoked_on == date(2026, 12, 2) and failed.last_event_id == "e3"
    # the first issue again (a resend) is older than the failed one: changes nothing
    assert model.apply(failed, model.ISSUED, T0, "e1", ISSUED) == failed


def test_a_revocation_superseded_by_a_newer_issue_is_not_in_force():
    revoked = model.apply(None, model.REVOKED, T0 + timedelta(hours=1), "e2", REVOKED)
    assert model.revoked_in_force(revoked)
    newer = model.apply(model.apply(None, model.ISSUED, T0 + timedelta(hours=2), "e3", ISSUED),
                        model.REVOKED, T0 + timedelta(hours=1), "e2", REVOKED)
    assert not model.revoked_in_force(newer)


def test_a_revocation_is_noted_on_an_appointment_once():
    at_decision = check_certificate(CQO, Certificate("CZ-RZ-1", ME, revoked_on=date(2026, 12, 2)))
    noted = {"code": "TRAINING_CERTIFICATE_REVOKED", "message": "…", "certificate_no": "CZ-RZ-1"}
    code = "TRAINING_CERTIFICATE_REVOKED"
    assert model.revocation_noted([[f.to_dict() for f in at_decision]], "CZ-RZ-1", code)
    assert model.revocation_noted([[], [noted]], "CZ-RZ-1", code)
    assert not model.revocation_noted([[noted]], "CZ-RZ-10", code)  # another number
    assert not model.revocation_noted([[{"code": "TRAINING_CERTIFICATE_VERIFIED", "message": "CZ-RZ-1"}]],
                                      "CZ-RZ-1", code)
