"""The plain rules of training (services/talent/domain/training.py): kinds, who manages a
course, what one attendance row must hold, the certificate event's id."""
from datetime import date, datetime

import pytest

from services.talent.domain import training
from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.validators import make_resident_id

TODAY, START = date(2026, 12, 2), date(2026, 3, 2)
NUMBER = make_resident_id("130921", date(1985, 6, 1), 17)
CITY = Principal("c", "city_officer")
COUNTY = Principal("k", "county_officer", county="130921")


def row(**cells):
    base = {"person_name": "张三", "id_number": NUMBER, "passed": "合格", "certificate_no": "cz-1",
            "issued_on": "2026-03-05"}
    return training.check_attendance({**base, **cells}, course_kind="appointment",
                                     course_starts_on=START, today=TODAY)


def test_a_number_in_the_wrong_column_is_never_quoted_in_clear():
    checked, problems = row(kind=NUMBER, id_type=NUMBER, passed=NUMBER)
    assert checked is None and len(problems) == 3
    assert NUMBER[6:14] not in str(problems) and NUMBER[:6] in str(problems)
    assert training.shown(f"学员{NUMBER}", 100) == "学员" + NUMBER[:6] + "*" * 8 + NUMBER[-4:]


def test_a_good_row_is_normalised():
    checked, problems = row(id_number=NUMBER.lower() + " ", kind="任职培训", issued_on=datetime(2026, 3, 5))
    assert problems == {} and checked.id_number == NUMBER and checked.id_type == "resident_id"
    assert checked.certificate_no == "CZ-1" and checked.passed is True
    assert checked.issued_on == date(2026, 3, 5) and checked.id_masked == NUMBER[:6] + "*" * 8 + NUMBER[-4:]


@pytest.mark.parametrize("cells, field, words", [
    ({"id_number": NUMBER[:17] + ("0" if NUMBER[17] != "0" else "1")}, "id_number", "校验码"),
    ({"kind": "安全培训"}, "kind", "未知的培训类别"),
    ({"kind": "basic"}, "kind", "与课程（任职培训）不符"),
    ({"passed": ""}, "passed", "考核结果为空"),
    ({"passed": "良好"}, "passed", "无效"),
    ({"id_type": "驾驶证"}, "id_type", "证件类型"),
    ({"certificate_no": "CZ 1"}, "certificate_no", "不能有空格"),
    ({"certificate_no": NUMBER}, "certificate_no", "不能是证件号码"),
    ({"person_name": NUMBER}, "person_name", "像是证件号码"),
    ({"issued_on": "2027-01-01"}, "issued_on", "晚于今天"),
    ({"issued_on": "2026-01-01"}, "issued_on", "早于培训开始日期"),
    ({"issued_on": "2026-03-05", "certificate_no": ""}, "issued_on", "没有证书编号"),
    ({"uscc": "91130921MA0000001A"}, "uscc", "校验位"),
])
def test_a_bad_row_says_why_without_the_number(cells, field, words):
    checked, problems = row(**cells)
    assert checked is None and words in problems[field][0]
    assert NUMBER[:14] not in str(problems)


@pytest.mark.parametrize("value, expected", [("合格", True), ("是", True), (True, True), ("1", True),
                                             ("不合格", False), ("否", False), ("FALSE", False), ("?", None)])
def test_results(value, expected):
    assert training.passed_of(value) is expected


def test_kinds_and_id_types_in_any_spelling():
    assert [training.kind_of(v) for v in ("任职培训", "basic", " 提升培训 ", "x")] == \
        ["appointment", "basic", "advanced", None]
    assert training.id_type_of("身份证") == "resident_id" and training.id_type_of("护照") == "passport"
    assert [training.date_of(v) for v in ("2026/3/5", "2026年3月5日", "20260305", "3.5")] == \
        [date(2026, 3, 5)] * 3 + [None]


def test_who_manages_and_reads_a_course():
    assert training.may_manage(CITY, "county", "130922") and training.may_manage(CITY, "city", None)
    assert training.may_manage(COUNTY, "county", "130921")
    assert not training.may_manage(COUNTY, "county", "130922") and not training.may_manage(COUNTY, "city", None)
    assert training.may_read(COUNTY, "city", None) and not training.may_read(COUNTY, "county", "130922")
    enterprise = Principal("e", "enterprise", uscc="91130921MA0000001X")
    assert not training.may_manage(enterprise, "city", None) and not training.may_read(enterprise, "city", None)


def test_course_rules():
    training.check_course("county", "130921", START, START)
    for args, code in [(("county", None, START, START), "TRAINING_COUNTY_REQUIRED"),
                       (("city", "130921", START, START), "TRAINING_COUNTY_NOT_ALLOWED"),
                       (("city", None, START, date(2026, 3, 1)), "TRAINING_DATES")]:
        with pytest.raises(ValidationFailed) as caught:
            training.check_course(*args)
        assert caught.value.code == code


def test_a_correction_is_a_new_event_a_replay_the_same():
    assert training.certificate_event_id("CZ-1", 5, 1) == training.certificate_event_id("CZ-1", 5, 1)
    assert len({training.certificate_event_id("CZ-1", 5, r) for r in (1, 2)}
               | {training.certificate_event_id("CZ-1", 6, 1)}) == 3


# --- revoking a certificate ----------------------------------------------------------------
def test_a_revocation_names_a_valid_number_and_a_reason():
    assert training.check_revocation(" cz-2026-1 ", " 培训考核舞弊 ") == ("CZ-2026-1", "培训考核舞弊")
    for number in (None, "", "CZ 1", "X" * 65, NUMBER, 12):
        with pytest.raises(ValidationFailed) as caught:
            training.check_revocation(number, "舞弊")
        assert caught.value.code == "TRAINING_CERTIFICATE_NO_INVALID" and NUMBER not in caught.value.message
    for reason in (None, "", "   ", "因" * (training.REASON_MAX + 1), f"持证人{NUMBER}", 5):
        with pytest.raises(ValidationFailed) as caught:
            training.check_revocation("CZ-1", reason)
        assert caught.value.code == "TRAINING_REVOCATION_REASON_INVALID" and NUMBER not in caught.value.message
    assert training.check_revocation("CZ-1", "因" * training.REASON_MAX)[1] == "因" * training.REASON_MAX


@pytest.mark.parametrize("old_passed, old_certificate, new_passed, revokes", [
    (True, "CZ-1", False, True),     # passed -> failed: the certificate goes
    (True, "CZ-1", True, False),     # another correction of a passed row
    (False, "CZ-1", False, False),   # failed all along: no certificate in force to withdraw
    (False, "CZ-1", True, False),    # failed -> passed: issued, never revoked
    (True, None, False, False),      # no certificate to revoke
])
def test_only_a_correction_from_passed_to_failed_revokes(old_passed, old_certificate, new_passed, revokes):
    assert training.revoked_by_correction(old_passed, old_certificate, new_passed) is revokes


def test_a_revocation_is_one_event_ordered_after_the_certificates_issues():
    assert training.revocation_event_id("CZ-1") == training.revocation_event_id("CZ-1")
    assert training.revocation_event_id("CZ-1") > training.certificate_event_id("CZ-1", 987654, 99)
