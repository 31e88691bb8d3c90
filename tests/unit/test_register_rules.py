"""The city's decision rules (services/registry/domain/register.py), without I/O."""
from datetime import date

import pytest

from services.registry.domain.register import (
    ACCEPTED, CREATE, END, REJECTED, REPLACE, UPDATE, WAITING, Current, decide, ends_on,
    late_reason)

CQO = {"name": "张三", "id_hmac": "a" * 64, "years_quality_work": 5, "title_level": "intermediate",
       "education_level": "bachelor", "training_certificate": "T-1", "attests_law_knowledge": True,
       "attests_organisational_ability": True, "is_decision_level": True}
APPOINTMENT = {"appointed_by_top_manager": True, "appointed_on": date(2026, 1, 10)}
CURRENT = Current(appointment_id=1, id_hmac="a" * 64, cqo_name="张三", appointed_on=date(2025, 1, 1))


def filing(kind, *, cqo=None, effective_on=None, submitted=date(2026, 2, 1), appointed_on=None):
    appointment = APPOINTMENT if appointed_on is None else {**APPOINTMENT, "appointed_on": appointed_on}
    return {"kind": kind, "cqo": {**CQO, **(cqo or {})}, "appointment": appointment,
            "effective_on": effective_on, "submitted_to_county_on": submitted}


def test_establishment_creates_an_appointment():
    d = decide(filing("establishment"), None, has_history=False)
    assert (d.outcome, d.action) == (ACCEPTED, CREATE)


def test_establishment_when_a_cqo_is_filed_asks_for_a_change():
    d = decide(filing("establishment"), CURRENT, has_history=True)
    assert d.outcome == REJECTED and d.reasons[0].code == "CQO_ALREADY_FILED"
    assert "变更" in d.reasons[0].message


def test_establishment_failing_qualification_is_rejected_with_findings():
    d = decide(filing("establishment", cqo={"years_quality_work": 1}), None, has_history=False)
    assert d.outcome == REJECTED and d.reasons[0].code == "QUALIFICATION_NOT_MET"
    assert [f.code for f in d.findings] == ["QUAL_YEARS"]


def test_change_before_its_predecessor_waits():
    d = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5)),
               None, has_history=False)
    assert d.outcome == WAITING and d.reasons[0].code == "WAITING_FOR_PREDECESSOR"


def test_change_after_the_post_ended_is_rejected_not_held():
    d = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5)),
               None, has_history=True)
    assert d.outcome == REJECTED and d.reasons[0].code == "NO_CURRENT_CQO"


def test_change_replaces_and_is_late_by_the_county_submission_date():
    on_time = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5),
                            submitted=date(2026, 2, 5)), CURRENT, has_history=True)
    assert (on_time.outcome, on_time.action, on_time.lateness.late) == (ACCEPTED, REPLACE, False)
    late = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5),
                         submitted=date(2026, 2, 15)), CURRENT, has_history=True)
    assert late.outcome == ACCEPTED and late.lateness.days_late == 10
    assert "逾期10天" in late_reason(late).message


def test_change_to_the_same_person_is_refused():
    d = decide(filing("change", effective_on=date(2026, 1, 5)), CURRENT, has_history=True)
    assert d.reasons[0].code == "CHANGE_TO_SAME_PERSON"


def test_renewal_and_update_need_the_same_person():
    assert decide(filing("renewal"), CURRENT, has_history=True).action == REPLACE
    assert decide(filing("update"), CURRENT, has_history=True).action == UPDATE
    other = decide(filing("renewal", cqo={"id_hmac": "c" * 64}), CURRENT, has_history=True)
    assert other.reasons[0].code == "NOT_THE_CURRENT_CQO"


def test_end_of_post_is_accepted_late_if_reported_late():
    d = decide(filing("end", effective_on=date(2025, 12, 1), submitted=date(2026, 2, 1)),
               CURRENT, has_history=True)
    assert (d.outcome, d.action) == (ACCEPTED, END) and d.lateness.days_late == 31


def test_effective_date_before_the_current_appointment_is_rejected():
    d = decide(filing("end", effective_on=date(2024, 6, 1)), CURRENT, has_history=True)
    assert d.reasons[0].code == "EFFECTIVE_BEFORE_APPOINTMENT"


# -- issue 8, defect 4: nothing ends before it began ------------------------------------------

CURRENT_2023 = Current(appointment_id=1, id_hmac="a" * 64, cqo_name="张三",
                       appointed_on=date(2023, 12, 20))


def test_renewal_dated_before_the_current_appointment_is_rejected_citing_both_dates():
    d = decide(filing("renewal", appointed_on=date(2023, 1, 1)), CURRENT_2023, has_history=True)
    assert (d.outcome, d.action) == (REJECTED, None)
    [reason] = d.reasons
    assert reason.code == "APPOINTMENT_BEFORE_CURRENT"
    assert "2023年01月01日" in reason.message and "2023年12月20日" in reason.message
    assert "续任" in reason.message and "张三" in reason.message


def test_change_whose_new_appointment_predates_the_current_one_is_rejected():
    d = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2024, 2, 1),
                      appointed_on=date(2023, 6, 1)), CURRENT_2023, has_history=True)
    assert d.outcome == REJECTED and d.reasons[0].code == "APPOINTMENT_BEFORE_CURRENT"
    assert "2023年06月01日" in d.reasons[0].message and "2023年12月20日" in d.reasons[0].message


def test_change_effective_before_the_current_appointment_is_rejected_citing_both_dates():
    d = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2023, 12, 19),
                      appointed_on=date(2024, 1, 1)), CURRENT_2023, has_history=True)
    assert d.outcome == REJECTED and d.reasons[0].code == "EFFECTIVE_BEFORE_APPOINTMENT"
    assert "2023年12月19日" in d.reasons[0].message and "2023年12月20日" in d.reasons[0].message


@pytest.mark.parametrize("kind, effective_on", [("renewal", None), ("change", date(2023, 12, 20)),
                                                ("end", date(2023, 12, 20))])
def test_ending_on_the_day_it_began_is_allowed(kind, effective_on):
    cqo = {"id_hmac": "b" * 64} if kind == "change" else None
    f = filing(kind, cqo=cqo, effective_on=effective_on, appointed_on=date(2023, 12, 20))
    d = decide(f, CURRENT_2023, has_history=True)
    assert d.outcome == ACCEPTED and ends_on(f) >= CURRENT_2023.appointed_on


def test_an_update_is_not_dated_against_the_current_appointment():
    d = decide(filing("update", appointed_on=date(2023, 1, 1)), CURRENT_2023, has_history=True)
    assert (d.outcome, d.action) == (ACCEPTED, UPDATE)


# -- issue 8, defect 2: no waiting for an establishment the city refused ------------------------

@pytest.mark.parametrize("kind, instead", [("change", "岗位设立备案"), ("renewal", "岗位设立备案"),
                                           ("update", "岗位设立备案"), ("end", "无需提交岗位撤销备案")])
def test_filing_after_a_rejected_establishment_is_rejected_at_once(kind, instead):
    d = decide(filing(kind, cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5)),
               None, has_history=False, establishment_rejected=True)
    assert (d.outcome, d.action) == (REJECTED, None)
    [reason] = d.reasons
    assert reason.code == "ESTABLISHMENT_REJECTED"
    assert "岗位设立备案未获市局备案通过" in reason.message and instead in reason.message


def test_a_rejected_establishment_does_not_matter_once_the_enterprise_had_a_cqo():
    d = decide(filing("change", cqo={"id_hmac": "b" * 64}, effective_on=date(2026, 1, 5)),
               None, has_history=True, establishment_rejected=True)
    assert d.reasons[0].code == "NO_CURRENT_CQO"
    assert decide(filing("establishment"), None, has_history=False,
                  establishment_rejected=True).action == CREATE
