"""Intake schemas of the county filing service: strict input, Chinese messages."""
import re
from datetime import date, timedelta

import pytest
from marshmallow import ValidationError

from services.filing.domain import default_term_end
from shared.clock import today
from services.filing.schemas import BatchIn, FilingIn, FilingQuery, ReviewIn
from shared.http import field_errors
from tests.integration.filing_support import filing_payload, new_uscc

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def errors_of(data, schema=FilingIn) -> dict:
    with pytest.raises(ValidationError) as err:
        schema().load(data)
    errors = field_errors(err.value.messages)
    for messages in errors.values():
        assert all(CHINESE.search(m) for m in messages), errors  # every message is Chinese
    return errors


def test_a_complete_filing_loads_with_defaults():
    data = FilingIn().load(filing_payload(new_uscc()))
    appointed = data["appointment"]["appointed_on"]
    assert data["appointment"]["term_end"] == default_term_end(appointed)
    assert data["cqo"]["email"] == "cqo@example.cn"
    assert data["effective_on"] is None and data["end_reason"] is None


def test_missing_fields_are_listed_by_path():
    body = filing_payload(new_uscc(), cqo__name=None, appointment__appointed_on=None)
    del body["kind"]
    errors = errors_of(body)
    assert set(errors) == {"kind", "cqo.name", "appointment.appointed_on"}
    assert errors["kind"] == ["必填字段缺失"]


@pytest.mark.parametrize("override,field", [
    ({"cqo__years_quality_work": "8"}, "cqo.years_quality_work"),     # a string is not a number
    ({"cqo__years_quality_work": True}, "cqo.years_quality_work"),
    ({"cqo__is_decision_level": "yes"}, "cqo.is_decision_level"),     # an attestation is a boolean
    ({"cqo__attests_law_knowledge": 1}, "cqo.attests_law_knowledge"),
    ({"cqo__years_quality_work": 81}, "cqo.years_quality_work"),
    ({"cqo__name": "   "}, "cqo.name"),
    ({"cqo__name": "张" * 101}, "cqo.name"),
    ({"cqo__phone": "12345"}, "cqo.phone"),
    ({"cqo__email": "not-an-email"}, "cqo.email"),
    ({"cqo__education_level": "phd"}, "cqo.education_level"),
    ({"cqo__id_type": "driving_licence"}, "cqo.id_type"),
    ({"cqo__id_number": "130921198001011236"}, "cqo.id_number"),     # wrong check digit
    ({"cqo__unexpected": 1}, "cqo.unexpected"),
    ({"enterprise__uscc": "91130921MA0XXXXX00"}, "enterprise.uscc"),
    ({"enterprise__county": "110101"}, "enterprise.county"),           # not in the jurisdiction
    ({"enterprise__county": "13092"}, "enterprise.county"),
    ({"enterprise__category": "huge"}, "enterprise.category"),
    ({"appointment__appointed_on": "2026/03/01"}, "appointment.appointed_on"),
    ({"appointment__appointed_on": (today() + timedelta(days=1)).isoformat()},
     "appointment.appointed_on"),
    ({"appointment__letter_sha256": "abc"}, "appointment.letter_sha256"),
    ({"kind": "promotion"}, "kind"),
    ({"cqo__name": "张\x00三"}, "cqo.name"),                           # PostgreSQL refuses NUL
    ({"cqo__position": "\ud800"}, "cqo.position"),                     # a lone surrogate
    ({"cqo__email": "a\x00@example.cn"}, "cqo.email"),
    ({"enterprise__name": "沧州\n示例"}, "enterprise.name"),
    ({"enterprise": "not an object"}, "enterprise"),
])
def test_bad_values_are_refused(override, field):
    errors = errors_of(filing_payload(new_uscc(), **override))
    assert field in errors, errors


def test_multiline_text_keeps_line_breaks_only():
    data = FilingIn().load(filing_payload(new_uscc(), kind="end", end_reason="离职\n另有任用"))
    assert data["end_reason"] == "离职\n另有任用"
    assert "end_reason" in errors_of(filing_payload(new_uscc(), kind="end", end_reason="离职\x00"))


def test_term_end_must_follow_appointment():
    appointed = (today() - timedelta(days=30)).isoformat()
    errors = errors_of(filing_payload(new_uscc(), appointment__appointed_on=appointed,
                                      appointment__term_end=appointed))
    assert errors == {"appointment.term_end": ["任期届满日期应晚于任命日期"]}


def test_change_and_end_carry_their_effective_date():
    errors = errors_of(filing_payload(new_uscc(), kind="change", effective_on=None))
    assert "effective_on" in errors
    errors = errors_of(filing_payload(new_uscc(), kind="end", end_reason=None))
    assert "end_reason" in errors
    errors = errors_of(filing_payload(new_uscc(), effective_on="2026-01-01"))
    assert errors["effective_on"] == ["只有变更或岗位撤销备案填写生效日期"]
    future = (today() + timedelta(days=3)).isoformat()
    assert "effective_on" in errors_of(filing_payload(new_uscc(), kind="change", effective_on=future))


def test_id_number_and_uscc_are_normalised():
    uscc = new_uscc()
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in uscc.lower())  # typed with a Chinese IME
    body = filing_payload(full_width, cqo__id_type="passport", cqo__id_number=" e1234567 ",
                          appointment__letter_sha256="AB" * 32)
    data = FilingIn().load(body)
    assert data["enterprise"]["uscc"] == uscc
    assert data["cqo"]["id_number"] == "E1234567"
    assert data["appointment"]["letter_sha256"] == "ab" * 32


def test_unknown_top_level_field_and_wrong_type():
    assert errors_of({**filing_payload(new_uscc()), "extra": 1}) == {"extra": ["未知字段"]}
    assert "_schema" in errors_of(["not", "an", "object"])


def test_review_return_needs_a_comment():
    assert ReviewIn().load({"decision": "approve"})["comment"] is None
    assert "comment" in errors_of({"decision": "return", "comment": "  "}, ReviewIn)
    assert "decision" in errors_of({"decision": "maybe"}, ReviewIn)


def test_batch_ids_are_uuids_and_deduplicated():
    fid = "7f1d2c3e-1111-4222-8333-944455556666"
    assert BatchIn().load({"filing_ids": [fid, fid]})["filing_ids"] == [fid]
    assert BatchIn().load({})["filing_ids"] is None
    assert "filing_ids.0" in errors_of({"filing_ids": ["x"]}, BatchIn)
    assert "filing_ids" in errors_of({"filing_ids": []}, BatchIn)


def test_query_parameters():
    q = FilingQuery().load({"status": "submitted,approved", "page": "2", "late": "true",
                            "submitted_from": "2026-01-01", "campaign_year": ""})
    assert q["status"] == ["submitted", "approved"] and q["page"] == 2 and q["late"] is True
    assert q["submitted_from"] == date(2026, 1, 1) and "campaign_year" not in q
    assert "status" in errors_of({"status": "lost"}, FilingQuery)
    assert "page_size" in errors_of({"page_size": "1000"}, FilingQuery)
    assert "submitted_from" in errors_of({"submitted_from": "2026-02-01",
                                          "submitted_to": "2026-01-01"}, FilingQuery)
