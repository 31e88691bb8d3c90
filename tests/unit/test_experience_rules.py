"""The plain rules of typical experiences and benchmark CQOs (art. 17)."""
import io
import zipfile
from datetime import date

import pytest

from shared.errors import CqoError
from services.talent.domain import experiences as rules

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def _package(part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr(part, "<x/>")
    return buffer.getvalue()


def _code(fn, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(CqoError) as caught:
        fn(*args, **kwargs)
    return caught.value.code, caught.value.status


# -- review -----------------------------------------------------------------------------------
@pytest.mark.parametrize("status, action, target", [
    (rules.SUBMITTED, rules.APPROVE, rules.APPROVED),
    (rules.SUBMITTED, rules.RETURN, rules.RETURNED),
    (rules.APPROVED, rules.RETURN, rules.RETURNED),
    (rules.APPROVED, rules.PUBLISH, rules.PUBLISHED),
    (rules.PUBLISHED, rules.UNPUBLISH, rules.APPROVED),
])
def test_review_moves_an_experience_on(status, action, target):
    assert rules.review(status, action, consented=True, comment="意见") == target


@pytest.mark.parametrize("status, action", [
    (rules.SUBMITTED, rules.PUBLISH),     # the city approves before it publishes
    (rules.RETURNED, rules.APPROVE),      # the county corrects it first
    (rules.PUBLISHED, rules.APPROVE),
    (rules.APPROVED, rules.UNPUBLISH),
])
def test_review_refuses_a_step_from_the_wrong_status(status, action):
    assert _code(rules.review, status, action, consented=True, comment="x") == ("EXPERIENCE_STATE_CONFLICT", 409)


def test_publishing_needs_the_enterprises_consent():
    assert _code(rules.review, rules.APPROVED, rules.PUBLISH, consented=False, comment=None) == \
        ("EXPERIENCE_CONSENT_MISSING", 409)


def test_returning_needs_a_comment():
    assert _code(rules.review, rules.SUBMITTED, rules.RETURN, consented=False, comment="  ") == \
        ("REVIEW_COMMENT_REQUIRED", 422)


def test_unknown_action_is_refused():
    assert _code(rules.review, rules.SUBMITTED, "delete", consented=True, comment=None)[0] == \
        "EXPERIENCE_ACTION_INVALID"


def test_only_an_unapproved_experience_is_editable_and_a_returned_one_is_resubmitted():
    rules.require_editable(rules.SUBMITTED)
    rules.require_editable(rules.RETURNED)
    for status in (rules.APPROVED, rules.PUBLISHED):
        assert _code(rules.require_editable, status)[0] == "EXPERIENCE_STATE_CONFLICT"
    assert rules.status_after_edit(rules.RETURNED) == rules.SUBMITTED
    assert rules.status_after_edit(rules.SUBMITTED) == rules.SUBMITTED


def test_consent_needs_evidence_and_no_future_date():
    today = date(2026, 12, 3)
    rules.check_consent(True, "沧质同意〔2026〕1号", None, today)
    rules.check_consent(True, None, today, today)
    rules.check_consent(False, None, None, today)  # a refusal needs no document
    assert _code(rules.check_consent, True, None, None, today)[0] == "CONSENT_EVIDENCE_MISSING"
    assert _code(rules.check_consent, True, "x", date(2026, 12, 4), today)[0] == "CONSENT_DATE_IN_FUTURE"


# -- attachments --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, declared, expected", [
    ("经验.pdf", PDF, "application/pdf", "application/pdf"),
    ("图.PNG", PNG, "application/octet-stream", "image/png"),
    ("照片.jpeg", JPG, "image/jpeg", "image/jpeg"),
    ("照片.jpg", JPG, None, "image/jpeg"),
    ("材料.docx", _package("word/document.xml"), "",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("数据.xlsx", _package("xl/workbook.xml"), None,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
])
def test_allowed_kinds_are_recognised_by_content(name, content, declared, expected):
    assert rules.classify(name, declared, content).content_type == expected


@pytest.mark.parametrize("name, content, declared, code", [
    ("脚本.exe", b"MZ\x90\x00", None, "ATTACHMENT_TYPE_NOT_ALLOWED"),
    ("说明.txt", b"hello", "text/plain", "ATTACHMENT_TYPE_NOT_ALLOWED"),
    ("无扩展名", PDF, "application/pdf", "ATTACHMENT_TYPE_NOT_ALLOWED"),
    ("经验.pdf", PDF, "text/html", "ATTACHMENT_TYPE_NOT_ALLOWED"),          # declared otherwise
    ("经验.pdf", b"<html>not a pdf</html>", None, "ATTACHMENT_CONTENT_MISMATCH"),
    ("材料.docx", _package("xl/workbook.xml"), None, "ATTACHMENT_CONTENT_MISMATCH"),  # a renamed xlsx
    ("数据.xlsx", b"PK\x03\x04 broken zip", None, "ATTACHMENT_CONTENT_MISMATCH"),
    ("图.png", JPG, None, "ATTACHMENT_CONTENT_MISMATCH"),
])
def test_other_kinds_and_disguised_files_are_refused(name, content, declared, code):
    assert _code(rules.classify, name, declared, content) == (code, 415)


def test_size_and_count_limits():
    rules.check_size(5, 5)
    assert _code(rules.check_size, 6, 5) == ("ATTACHMENT_TOO_LARGE", 413)
    assert _code(rules.check_size, 0, 5) == ("ATTACHMENT_EMPTY", 422)
    rules.check_count(9, 10)
    assert _code(rules.check_count, 10, 10) == ("ATTACHMENT_COUNT_EXCEEDED", 409)
    assert "5 MiB" in rules.too_large(5 * 1024 * 1024).message


def test_file_names_lose_folders_and_unsafe_characters_and_keep_their_extension():
    assert rules.safe_filename("C:\\Users\\张三\\经验.pdf") == "经验.pdf"
    assert rules.safe_filename("../../etc/pass\r\nwd.png") == "passwd.png"
    assert rules.safe_filename('a"b<c>.pdf') == "abc.pdf"
    long = rules.safe_filename("长" * 300 + ".docx")
    assert len(long) == rules.NAME_MAX and long.endswith(".docx")
    for empty in (None, "", "  ", "../", "\x00"):
        assert _code(rules.safe_filename, empty)[0] == "ATTACHMENT_NAME_MISSING"


def test_benchmark_year_is_at_most_next_year():
    rules.check_benchmark_year(2027, date(2026, 6, 1))
    assert _code(rules.check_benchmark_year, 2028, date(2026, 6, 1))[0] == "BENCHMARK_YEAR"
