"""The talent pool's plain rules: a member's status only moves forward, suspension
reasons stand and clear one by one, the list of expertise is data, contact details
are masked."""
from datetime import date

import pytest
from hypothesis import given, strategies as st

from services.talent.domain import pool as rules
from services.talent.pool.expertise import catalogue
from shared.errors import ValidationFailed
from shared.personal_data import mask_email, mask_phone

STATUSES = [rules.ACTIVE, rules.LAPSED, rules.ENDED]


@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=6))
def test_a_member_status_never_moves_back_whatever_the_order(seq):
    status = None
    for incoming in seq:
        after = rules.member_status_after(status, incoming)
        if status is not None:
            assert STATUSES.index(after) >= STATUSES.index(status)
        status = after
    assert status == max(seq, key=STATUSES.index)  # the order of arrival does not matter


def test_a_late_accepted_does_not_revive_an_ended_member():
    assert rules.member_status_after(rules.ENDED, rules.ACTIVE) == rules.ENDED
    assert rules.member_status_after(rules.LAPSED, rules.ENDED) == rules.ENDED
    assert rules.member_status_after(None, rules.ACTIVE) == rules.ACTIVE


def test_a_newer_appointment_supersedes():
    assert rules.supersedes(7, 5) and rules.supersedes(7, None)
    assert not rules.supersedes(5, 7) and not rules.supersedes(5, 5)
    assert not rules.supersedes(None, 5)


def test_reasons_are_added_once_and_cleared_by_what_caused_them():
    reasons = rules.add_reason([], rules.APPOINTMENT_ENDED, "42", date(2026, 3, 1))
    assert rules.add_reason(reasons, rules.APPOINTMENT_ENDED, 42, date(2026, 3, 2)) == reasons
    reasons = rules.add_reason(reasons, rules.REPLACEMENT_RECOMMENDED, "9", "2026-04-01")
    reasons = rules.add_reason(reasons, rules.REPLACEMENT_RECOMMENDED, "10", "2026-04-02")
    assert [r["since"] for r in reasons] == ["2026-03-01", "2026-04-01", "2026-04-02"]
    assert rules.expert_status("active", reasons) == "suspended"
    one_closed = rules.clear_reasons(reasons, rules.REPLACEMENT_RECOMMENDED, "9")
    assert [(r["code"], r["ref"]) for r in one_closed] == [
        (rules.APPOINTMENT_ENDED, "42"), (rules.REPLACEMENT_RECOMMENDED, "10")]
    left = rules.clear_reasons(one_closed, rules.APPOINTMENT_REASONS)
    assert rules.expert_status("suspended", left) == "suspended"
    assert rules.expert_status("suspended", rules.clear_reasons(left, rules.REPLACEMENT_RECOMMENDED)) == "active"
    assert rules.expert_status("ended", []) == "ended"


def test_describe_names_every_reason():
    [described] = rules.describe([{"code": rules.MANUAL, "ref": "manual", "since": "2026-01-01"}])
    assert described["name"] == "市局暂停"


def test_a_term_ends_after_it_starts():
    rules.check_term(date(2026, 1, 1), date(2028, 12, 31))
    with pytest.raises(ValidationFailed) as err:
        rules.check_term(date(2026, 1, 1), date(2026, 1, 1))
    assert err.value.code == "EXPERT_TERM_INVALID"


def test_contact_only_with_consent():
    assert rules.contactable(True, "active") and rules.contactable(True, "suspended")
    assert not rules.contactable(False, "active") and not rules.contactable(True, "ended")


def test_the_expertise_list_is_gbt4754_sections_and_divisions():
    fields = catalogue()
    sections = sorted(f.code for f in fields if f.level == "section")
    divisions = sorted(f.code for f in fields if f.level == "division")
    assert sections == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    assert divisions[0] == "01" and divisions[-1] == "97" and len(divisions) == 97
    assert all(f.section in sections for f in fields if f.level == "division")
    assert fields.check(["13", "c", "13"]) == ["C", "13"]  # list order, once each


@pytest.mark.parametrize("codes, code", [(["Z"], "EXPERTISE_UNKNOWN"), (["98"], "EXPERTISE_UNKNOWN"),
                                         (["C", "1"], "EXPERTISE_UNKNOWN"), ([], "EXPERTISE_MISSING")])
def test_an_unknown_field_of_expertise_has_its_own_code(codes, code):
    with pytest.raises(ValidationFailed) as err:
        catalogue().check(codes)
    assert err.value.code == code and err.value.status == 422


@pytest.mark.parametrize("phone, masked", [
    ("13800138000", "138****8000"), ("0317-1234567", "0317-*****67"),
    ("0317-1234567-89", "0317-*****67"), ("12345", "*****"), ("", ""), (None, "")])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("email, masked", [
    ("zhang.san@example.cn", "z***@example.cn"), ("a@b.cn", "a***@b.cn"), ("@b.cn", "***@b.cn"),
    ("nope", "****"), (None, "")])
def test_mask_email(email, masked):
    assert mask_email(email) == masked
    if email and "@" in email and len(email.split("@")[0]) > 1:
        assert email.split("@")[0] not in masked
