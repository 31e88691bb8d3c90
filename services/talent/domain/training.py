"""Plain rules of training (art. 6 任职培训, art. 15 教育培训): the kinds of course, who may
manage a course, what one attendance row must hold, and the identity of a certificate
event. No database, no broker: the use cases in services/talent/training/ ask these.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field as dataclass_field
from datetime import date, datetime

from shared.auth import Principal
from shared.contracts.events import COURSE_KINDS, holds_id_number
from shared.errors import ValidationFailed
from shared.personal_data import mask_id
from shared.validators import ID_TYPE_NAMES, validate_person_id, validate_uscc
from shared.validators.uscc import uscc_is_valid

LEVELS = {"city": "市级", "county": "县级"}
CITY_KEY = "city"  # the summary's key of city-level courses

# how a course kind may be written in a file (after _key())
_KIND_SPELLINGS = {**{k: k for k in COURSE_KINDS}, **{v: k for k, v in COURSE_KINDS.items()},
                   "任职资格培训": "appointment", "岗前培训": "appointment", "基础": "basic",
                   "提升": "advanced", "提高培训": "advanced", "任职": "appointment"}
_ID_TYPE_SPELLINGS = {**{k: k for k in ID_TYPE_NAMES}, **{v: k for k, v in ID_TYPE_NAMES.items()},
                      "身份证": "resident_id", "居民身份证号码": "resident_id", "护照号码": "passport",
                      "港澳台居民居住证": "hmt_permit", "港澳居民来往内地通行证": "hmt_permit",
                      "台湾居民来往大陆通行证": "hmt_permit", "外国人永久居留证": "foreign_permanent"}
_PASSED = {"合格", "通过", "是", "已通过", "考核合格", "passed", "pass", "yes", "y", "true", "1", "√"}
_FAILED = {"不合格", "未通过", "否", "考核不合格", "failed", "fail", "no", "n", "false", "0", "×"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")

NAME_MAX, ENTERPRISE_MAX, CERTIFICATE_MAX = 100, 200, 64
CERTIFICATE_PATTERN = r"[0-9A-Za-z\u4e00-\u9fff（）()\-_/#.·]+"
_CERTIFICATE = re.compile(CERTIFICATE_PATTERN)


@functools.lru_cache(maxsize=4096)  # a file repeats its kinds, results and ID types
def _key(value) -> str:
    return "".join(unicodedata.normalize("NFKC", str(value)).split()).lower()


def _text(value) -> str:
    if value.__class__ is str:  # a CSV cell; ASCII is NFKC already
        return (value if value.isascii() else unicodedata.normalize("NFKC", value)).strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet's number cell
    return unicodedata.normalize("NFKC", str(value)).strip()


def kind_of(value) -> str | None:
    """The course kind a cell or a parameter names (code or Chinese), or None."""
    return _KIND_SPELLINGS.get(_key(value)) if value not in (None, "") else None


def id_type_of(value) -> str | None:
    return _ID_TYPE_SPELLINGS.get(_key(value))


def passed_of(value) -> bool | None:
    if isinstance(value, bool):
        return value
    return True if _key(value) in _PASSED else False if _key(value) in _FAILED else None


def date_of(value) -> date | None:
    """A date cell: a spreadsheet date, or text in the usual Chinese spellings."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    try:
        return date.fromisoformat(text)  # the usual spelling, without strptime's cost
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


_DIGIT_RUN = re.compile(r"[0-9]{6,}[0-9Xx]*")


def shown(value, limit: int = 20) -> str:
    """A cell as a reason may quote it: runs of digits masked (a number typed in the
    wrong column must not come back in clear), cut to `limit`."""
    return _DIGIT_RUN.sub(lambda m: mask_id(m.group()), _text(value))[:limit]


def looks_like_id_number(text: str) -> bool:
    """What the event contract would refuse to carry (a resident ID number: 18
    characters at least)."""
    return len(text) >= 18 and holds_id_number(text)


# --- courses -----------------------------------------------------------------------------
def check_course(level: str, county: str | None, starts_on: date, ends_on: date) -> None:
    """A county-level course names its county, a city-level one none; it ends on or after
    its first day."""
    if level == "county" and not county:
        raise ValidationFailed("县级培训必须填写所属县（市、区）代码", field="county",
                               code="TRAINING_COUNTY_REQUIRED")
    if level == "city" and county:
        raise ValidationFailed("市级培训不填写县（市、区）代码", field="county",
                               code="TRAINING_COUNTY_NOT_ALLOWED")
    if ends_on < starts_on:
        raise ValidationFailed("结束日期不能早于开始日期", field="ends_on", code="TRAINING_DATES")


def may_manage(principal: Principal, level: str, county: str | None) -> bool:
    """Create a course, record or import its attendance: the city for every course, a
    county officer for their own county's county-level courses only."""
    if principal.city_wide:
        return True
    return principal.role == "county_officer" and level == "county" and county == principal.county


def may_read(principal: Principal, level: str, county: str | None) -> bool:
    """See a course: every officer sees the city's courses; a county's only its own."""
    if principal.city_wide:
        return True
    return principal.role == "county_officer" and (level == "city" or county == principal.county)


# --- one attendance ------------------------------------------------------------------------
@dataclass(slots=True)
class AttendanceRow:
    """An attendance that passed every check; `id_number` is normalised (never shown).
    Slotted, the mask kept in a slot rather than a cached_property: an import holds
    thousands of rows at once, and an instance dictionary each (and 3.11's locked
    cached_property) made the collector's passes and the mask cost more than the row."""

    person_name: str
    id_type: str
    id_number: str
    uscc: str | None
    enterprise_name: str | None
    passed: bool
    certificate_no: str | None
    issued_on: date | None
    _masked: str | None = dataclass_field(default=None, init=False, repr=False, compare=False)

    @property
    def id_masked(self) -> str:
        if self._masked is None:
            self._masked = mask_id(self.id_number)
        return self._masked


def check_attendance(cells: dict, *, course_kind: str, course_starts_on: date,
                     today: date) -> tuple[AttendanceRow | None, dict[str, list[str]]]:
    """Check one attendance (the cells by field: person_name, id_type, id_number, uscc,
    enterprise_name, passed, certificate_no, issued_on, kind): (row, {}) or (None,
    {field: reasons in Chinese}). No reason quotes the ID number."""
    problems: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    name = _text(cells.get("person_name"))
    if not name:
        fail("person_name", "姓名为空")
    elif len(name) > NAME_MAX:
        fail("person_name", f"姓名超过{NAME_MAX}个字符")
    elif looks_like_id_number(name):
        fail("person_name", "姓名栏填写的像是证件号码，请检查列的顺序")

    raw_type = _text(cells.get("id_type"))
    id_type = id_type_of(raw_type) if raw_type else "resident_id"
    if id_type is None:
        fail("id_type", f"证件类型“{shown(raw_type)}”无效，应为{'、'.join(ID_TYPE_NAMES.values())}之一")
    number = _text(cells.get("id_number"))
    if not number:
        fail("id_number", "证件号码为空")
    elif id_type is not None:
        try:
            number = validate_person_id(id_type, number, today)
        except ValidationFailed as exc:
            fail("id_number", exc.message)

    uscc = _text(cells.get("uscc")).upper() or None
    if uscc is not None and not uscc_is_valid(uscc):  # the full check only for its reason
        try:
            uscc = validate_uscc(uscc)
        except ValidationFailed as exc:
            fail("uscc", exc.message)
    enterprise = _text(cells.get("enterprise_name")) or None
    if enterprise is not None and len(enterprise) > ENTERPRISE_MAX:
        fail("enterprise_name", f"企业名称超过{ENTERPRISE_MAX}个字符")

    raw_kind = _text(cells.get("kind"))
    if raw_kind:
        kind = kind_of(raw_kind)
        if kind is None:
            fail("kind", f"未知的培训类别“{shown(raw_kind)}”，应为{'、'.join(COURSE_KINDS.values())}之一")
        elif kind != course_kind:
            fail("kind", f"培训类别（{COURSE_KINDS[kind]}）与课程（{COURSE_KINDS[course_kind]}）不符")

    passed = passed_of(cells.get("passed"))
    if passed is None:
        given = shown(cells.get("passed"))
        fail("passed", "考核结果为空，应填写“合格”或“不合格”" if not given
             else f"考核结果“{given}”无效，应填写“合格”或“不合格”")

    certificate, wrong = certificate_no_of(cells.get("certificate_no"))
    if wrong:
        fail("certificate_no", wrong)
    issued_on = None
    raw_issued = cells.get("issued_on")
    if raw_issued not in (None, ""):
        issued_on = date_of(raw_issued)
        if issued_on is None:
            fail("issued_on", "发证日期无效，应为 YYYY-MM-DD 格式")
        elif issued_on > today:
            fail("issued_on", "发证日期晚于今天")
        elif issued_on < course_starts_on:
            fail("issued_on", "发证日期早于培训开始日期")
        elif certificate is None:
            fail("issued_on", "填写了发证日期但没有证书编号")
    if problems:
        return None, problems
    return AttendanceRow(name, id_type, number, uscc, enterprise, passed, certificate, issued_on), {}


def certificate_no_of(value) -> tuple[str | None, str | None]:
    """A certificate number as stored (NFKC, upper case) and what is wrong with it:
    (number, None), (None, None) when blank, or (None, the reason in Chinese)."""
    certificate = _text(value).upper() or None
    if certificate is None:
        return None, None
    if len(certificate) > CERTIFICATE_MAX:
        return None, f"证书编号超过{CERTIFICATE_MAX}个字符"
    if not _CERTIFICATE.fullmatch(certificate):
        return None, "证书编号只能包含汉字、字母、数字和 - _ / # . ( ) 等符号，不能有空格"
    if looks_like_id_number(certificate):
        return None, "证书编号不能是证件号码"
    return certificate, None


def certificate_event_id(certificate_no: str, attendance_id: int, revision: int) -> str:
    """The same revision of the same attendance is one event however often it is
    announced; a correction (a new revision) is a new one."""
    return f"event:certificate:{certificate_no}:{attendance_id}.{revision}"


# --- revoking a certificate ----------------------------------------------------------------
# why a certificate was revoked: an officer withdrew it, or its attendance was corrected
# from passed to failed (a re-import or an HTTP correction)
OFFICER, RESULT_CHANGED = "officer", "result_changed"
REVOCATION_CAUSES = {OFFICER: "监管人员撤销", RESULT_CHANGED: "考核结果更正为不合格"}
REASON_MAX = 200


def check_revocation(certificate_no, reason) -> tuple[str, str]:
    """(number, reason) of an officer's revocation, or ValidationFailed with the code of
    the field that is wrong."""
    number, wrong = certificate_no_of(certificate_no if isinstance(certificate_no, str) else None)
    if number is None:
        raise ValidationFailed(wrong or "请填写要撤销的证书编号", field="certificate_no",
                               code="TRAINING_CERTIFICATE_NO_INVALID")
    text = _text(reason if isinstance(reason, str) else None)
    if not text or len(text) > REASON_MAX:
        raise ValidationFailed("请填写撤销原因" if not text else f"撤销原因不能超过{REASON_MAX}个字符",
                               field="reason", code="TRAINING_REVOCATION_REASON_INVALID")
    if looks_like_id_number(text):  # the reason travels in the event to every consumer
        raise ValidationFailed("撤销原因中不能出现证件号码", field="reason",
                               code="TRAINING_REVOCATION_REASON_INVALID")
    return number, text


def revoked_by_correction(old_passed: bool, old_certificate: str | None, new_passed: bool) -> bool:
    """A correction from passed to failed withdraws the certificate the row held (art. 6:
    the certificate attests a passed appointment training)."""
    return bool(old_certificate) and old_passed and not new_passed


def revocation_event_id(certificate_no: str) -> str:
    """A certificate is revoked once (final): one event whoever asks how often. The id
    sorts after the certificate's issue ids (`…:<digits>.<n>`), so a consumer that orders
    by (time, id) puts the revocation last when both carry the same instant."""
    return f"event:certificate:{certificate_no}:revoked"
