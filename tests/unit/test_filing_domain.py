"""County filing rules (services/filing/domain.py): plain Python, no broker, no database."""
from datetime import date

import pytest

from services.filing import domain
from shared.domain.qualification import RuleSet
from shared.errors import Conflict

QUALIFIED = {"years_quality_work": 5, "title_level": "intermediate", "education_level": "bachelor",
             "training_certificate": "C-1", "attests_law_knowledge": True,
             "attests_organisational_ability": True, "is_decision_level": True}
TOP = {"appointed_by_top_manager": True}


@pytest.mark.parametrize("channel,expected", [("proactive", domain.FORWARDED),
                                              ("campaign", domain.APPROVED)])
def test_approval_forwards_proactive_filings_at_once(channel, expected):
    assert domain.after_review(domain.SUBMITTED, "approve", channel) == expected


def test_return_sends_back_for_correction():
    assert domain.after_review(domain.SUBMITTED, "return", "proactive") == domain.RETURNED


@pytest.mark.parametrize("status", [s for s in domain.STATUSES if s != domain.SUBMITTED])
def test_only_a_submitted_filing_is_reviewed(status):
    with pytest.raises(Conflict) as err:
        domain.after_review(status, "approve", "proactive")
    assert err.value.code == "FILING_INVALID_STATE" and domain.status_name(status) in err.value.message


@pytest.mark.parametrize("status,ok", [(domain.RETURNED, True), (domain.REJECTED, True),
                                       (domain.SUBMITTED, False), (domain.APPROVED, False),
                                       (domain.FORWARDED, False), (domain.ACCEPTED, False),
                                       (domain.WAITING, False), (domain.WITHDRAWN, False)])
def test_resubmission_only_after_return_or_refusal(status, ok):
    if ok:
        domain.check_resubmittable(status)
    else:
        with pytest.raises(Conflict):
            domain.check_resubmittable(status)


def test_withdraw_before_approval_or_ask_the_city_while_it_waits():
    assert domain.after_withdraw(domain.SUBMITTED) == domain.WITHDRAWN
    assert domain.after_withdraw(domain.RETURNED) == domain.WITHDRAWN
    # held by the city for its predecessor: only the city can withdraw it (issue 8)
    assert domain.after_withdraw(domain.WAITING) == domain.WITHDRAWING
    assert domain.after_withdraw(domain.WITHDRAWING) == domain.WITHDRAWING  # asked again
    assert domain.status_name(domain.WITHDRAWING) == "撤回申请中"
    for status in (domain.APPROVED, domain.FORWARDED, domain.ACCEPTED, domain.REJECTED,
                   domain.WITHDRAWN):
        with pytest.raises(Conflict) as err:
            domain.after_withdraw(status)
        assert err.value.code == "FILING_INVALID_STATE"


def test_batchable_means_approved_campaign_filing():
    assert domain.check_batchable(domain.APPROVED, "campaign") is None
    assert "主动备案" in domain.check_batchable(domain.FORWARDED, "proactive")
    assert "预审通过" in domain.check_batchable(domain.SUBMITTED, "campaign")


def test_open_statuses_cover_everything_not_final():
    assert set(domain.OPEN_STATUSES) | set(domain.FINAL_STATUSES) == set(domain.STATUSES)
    assert not set(domain.OPEN_STATUSES) & set(domain.FINAL_STATUSES)


def test_migration_uses_the_same_open_statuses():
    from services.filing.migrations.versions import f0004_withdrawing as migration
    from services.filing.models import OPEN_PREDICATE
    assert migration.OPEN_PREDICATE == OPEN_PREDICATE


def test_establishment_refused_when_a_cqo_is_filed():
    with pytest.raises(Conflict) as err:
        domain.check_kind_allowed("establishment", filed=True)
    assert err.value.code == "FILING_ALREADY_ESTABLISHED" and "变更" in err.value.message
    domain.check_kind_allowed("establishment", filed=False)
    domain.check_kind_allowed("change", filed=True)


@pytest.mark.parametrize("latest,filed", [(None, False), ("establishment", True), ("change", True),
                                          ("renewal", True), ("update", True), ("end", False)])
def test_filed_cqo_follows_the_latest_accepted_filing(latest, filed):
    assert domain.has_filed_cqo(latest) is filed


def test_intake_findings_only_for_appointing_kinds():
    weak = {**QUALIFIED, "years_quality_work": 1}
    codes = [f.code for f in domain.intake_findings("establishment", weak, TOP, False, RuleSet())]
    assert codes == ["QUAL_YEARS"]
    # an update of contact details or the end of the post appoints nobody
    for kind in ("update", "end"):
        assert [f.code for f in domain.intake_findings(kind, weak, TOP, True, RuleSet())] == []


def test_change_without_a_filed_cqo_is_a_warning_for_the_county():
    findings = domain.intake_findings("change", QUALIFIED, TOP, False, RuleSet())
    assert [(f.code, f.severity) for f in findings] == [("FILING_NO_PRIOR", "warning")]


def test_rules_are_data():
    strict = RuleSet.from_mapping({"severities": {"QUAL_TRAINING": "blocking"}})
    no_training = {**QUALIFIED, "training_certificate": None}
    findings = domain.intake_findings("establishment", no_training, TOP, False, strict)
    assert [(f.code, f.blocking) for f in findings] == [("QUAL_TRAINING", True)]
    assert all(code in domain.FINDING_FIELDS for code in RuleSet().severities)


@pytest.mark.parametrize("appointed,term_end", [(date(2026, 3, 15), date(2029, 3, 15)),
                                                (date(2024, 2, 29), date(2027, 2, 28))])
def test_term_defaults_to_three_years(appointed, term_end):
    assert domain.default_term_end(appointed) == term_end


def test_first_submission_day_is_kept_across_versions():
    assert domain.first_submission_day(None, date(2026, 5, 1)) == date(2026, 5, 1)
    assert domain.first_submission_day(date(2026, 4, 1), date(2026, 5, 1)) == date(2026, 4, 1)


def test_campaign_window():
    c = domain.CampaignWindow(2026, date(2026, 3, 1), date(2026, 4, 30))
    assert c.is_open_on(date(2026, 3, 1)) and c.is_open_on(date(2026, 4, 30))
    assert not c.is_open_on(date(2026, 5, 1)) and not c.is_open_on(date(2026, 2, 28))
    closed = domain.CampaignWindow(2026, date(2026, 3, 1), date(2026, 4, 30), closed=True)
    assert not closed.is_open_on(date(2026, 3, 10))
    older = domain.CampaignWindow(2025, date(2026, 1, 1), date(2026, 12, 31))
    assert domain.current_campaign([older, c], date(2026, 3, 10)) is c
    assert domain.current_campaign([closed], date(2026, 3, 10)) is None
    assert domain.channel_for(c) == ("campaign", 2026)
    assert domain.channel_for(None) == ("proactive", None)


@pytest.mark.parametrize("status,current,version,outcome,expected", [
    (domain.FORWARDED, 1, 1, "accepted", domain.ACCEPTED),
    (domain.FORWARDED, 1, 1, "rejected", domain.REJECTED),
    (domain.FORWARDED, 1, 1, "waiting", domain.WAITING),
    (domain.WAITING, 1, 1, "accepted", domain.ACCEPTED),
    (domain.WAITING, 1, 1, "waiting", None),        # a second "waiting"
    (domain.ACCEPTED, 1, 1, "waiting", None),       # "waiting" overtaken by the final answer
    (domain.ACCEPTED, 1, 1, "rejected", None),      # a final outcome is never overturned
    (domain.SUBMITTED, 2, 1, "rejected", None),     # about a version since corrected
    (domain.APPROVED, 1, 1, "accepted", None),      # not forwarded: cannot be decided
    (domain.WITHDRAWING, 1, 1, "withdrawn", domain.WITHDRAWN),  # the city withdrew it
    (domain.WITHDRAWING, 1, 1, "accepted", domain.ACCEPTED),    # decided first: the city wins
    (domain.WITHDRAWING, 1, 1, "rejected", domain.REJECTED),
    (domain.WITHDRAWING, 1, 1, "waiting", None),    # a late "waiting" keeps the request
    (domain.ACCEPTED, 1, 1, "withdrawn", None),     # a final outcome is never overturned
])
def test_decisions_change_only_what_they_may(status, current, version, outcome, expected):
    assert domain.status_after_decision(status, current, version, outcome) == expected


def test_chunks_and_message_ids():
    assert [list(c) for c in domain.chunked(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
    assert list(domain.chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(domain.chunked([1], 0))
    assert domain.filing_message_id("abc", 2) == "filing:abc:v2"
    assert domain.batch_message_id("b", 3) == "batch:b:3"
