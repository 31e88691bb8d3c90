"""Person identity numbers of a CQO.

The resident ID (公民身份号码, GB 11643-1999) is fully checked: check character and
a real birth date. Other documents are checked for format only, except where
they reuse the GB 11643 layout (HK/Macao/Taiwan residence permits, the 2023
foreign permanent-resident ID card), which get the full check too.

A refusal names the position and the expected form, never the number nor a part of
it (docs/architecture.md, "Identity protection"): these messages reach problem+json
bodies, logs, the city's
decisions and dead letters. Details hold positions and lengths only.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from shared import clock
from shared.errors import ValidationFailed

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(18-i) mod 11
_CHECK_CHARS = "10X98765432"
_EARLIEST_BIRTH = date(1900, 1, 1)

ID_TYPE_NAMES = {
    "resident_id": "居民身份证",
    "passport": "护照",
    "hmt_permit": "港澳台居民来往内地通行证或居住证",
    "foreign_permanent": "外国人永久居留身份证",
}

_HMT_RESIDENCE_PREFIXES = {"810000": "香港", "820000": "澳门", "830000": "台湾"}
# Home-return permit (card since 2013: H/M + 8 digits; older booklets add a 2-digit issue count).
_HOME_RETURN = re.compile(r"[HM]\d{8}(\d{2})?")
_TAIWAN_PERMIT = re.compile(r"\d{8}")  # 台胞证 card since 2015
_FOREIGN_OLD = re.compile(r"[A-Z]{3}\d{12}")  # 2004-2023 card: nationality + 12 digits


def _normalise(value: object, label: str, field: str | None) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{label}应为文本", code="ID_LENGTH", field=field)
    # NFKC folds full-width digits/letters typed with a Chinese IME; upper() turns x into X.
    return unicodedata.normalize("NFKC", value).strip().upper()


def gb11643_check_char(first17: str) -> str:
    """Check character of an 18-character GB 11643 number from its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need 17 digits: {first17!r}")
    return _CHECK_CHARS[sum(w * int(c) for w, c in zip(WEIGHTS, first17)) % 11]


def make_resident_id(division: str, birthdate: date | str, seq: int) -> str:
    """Build a valid 18-character number (test data and benchmark generators).

    `seq` is the 3-digit sequence code (odd for men, even for women).
    """
    if isinstance(birthdate, date):
        birthdate = birthdate.strftime("%Y%m%d")
    if len(division) != 6 or not (division.isascii() and division.isdigit()):
        raise ValueError(f"division must be 6 digits: {division!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"seq must be 0..999: {seq}")
    body = f"{division}{birthdate}{seq:03d}"
    return body + gb11643_check_char(body)


def _fail(message: str, code: str, field: str | None, **details) -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field, details=details)


def _check_gb11643(number: str, label: str, today: date | None, field: str | None) -> str:
    """Full check of an already normalised 18-character GB 11643-style number."""
    if len(number) != 18:
        hint = "（15位旧号码已停止使用，请填写18位号码）" if len(number) == 15 else ""
        raise _fail(f"{label}应为18位，实际为{len(number)}位{hint}", "ID_LENGTH", field,
                    expected=18, found=len(number))
    for pos, char in enumerate(number[:17], start=1):
        if char not in "0123456789":
            raise _fail(f"{label}第{pos}位字符无效：前17位应为数字", "ID_CHARACTER", field,
                        position=pos)
    if number[17] not in "0123456789X":
        raise _fail(f"{label}第18位校验码应为数字或X", "ID_CHARACTER", field, position=18)
    try:
        born = datetime.strptime(number[6:14], "%Y%m%d").date()
    except ValueError:
        raise _fail(f"{label}第7至14位应为有效的出生日期（年月日共8位数字）", "ID_BIRTH_DATE",
                    field, position=7) from None
    if born > (today or clock.today()):
        raise _fail(f"{label}第7至14位的出生日期晚于今天", "ID_BIRTH_DATE", field, position=7)
    if born < _EARLIEST_BIRTH:
        raise _fail(f"{label}第7至14位的出生日期早于1900年", "ID_BIRTH_DATE", field, position=7)
    if number[17] != gb11643_check_char(number[:17]):
        # the right check character is not told: it would help make up a number, and the
        # typing error is as likely among the first 17
        raise _fail(f"{label}第18位校验码与前17位不符，请逐位核对号码", "ID_CHECK", field,
                    position=18)
    return number


def validate_resident_id(number: str, today: date | None = None, *,
                         field: str | None = None) -> str:
    """Return the normalised number or raise ValidationFailed. `today` defaults to
    the current date in Asia/Shanghai."""
    label = "居民身份证号码"
    return _check_gb11643(_normalise(number, label, field), label, today, field)


def validate_passport(number: str, *, field: str | None = None) -> str:
    # Format only: the issuing country is unknown, so no country-specific shape
    # (a Chinese passport is E/G + 8 characters, others vary); ICAO allows up to 9
    # characters in the MRZ but some countries print longer numbers.
    label = "护照号码"
    number = _normalise(number, label, field)
    if not 5 <= len(number) <= 17:
        raise _fail(f"{label}应为5至17位，实际为{len(number)}位", "ID_LENGTH", field,
                    found=len(number))
    for pos, char in enumerate(number, start=1):
        if not (char.isascii() and char.isalnum()):
            raise _fail(f"{label}第{pos}位字符无效：只允许英文字母和数字", "ID_CHARACTER",
                        field, position=pos)
    if not any(c.isdigit() for c in number):
        raise _fail(f"{label}应包含数字：只有字母的不是护照号码", "ID_FORMAT", field)
    return number


def validate_hmt_permit(number: str, today: date | None = None, *,
                        field: str | None = None) -> str:
    label = "港澳台居民证件号码"
    number = _normalise(number, label, field)
    if len(number) == 18:  # 港澳台居民居住证: GB 11643 layout with a fixed prefix
        label = "港澳台居民居住证号码"
        if number[:6] not in _HMT_RESIDENCE_PREFIXES:
            raise _fail(f"{label}第1至6位应为810000（香港）、820000（澳门）或830000（台湾）",
                        "ID_FORMAT", field, position=1)
        return _check_gb11643(number, label, today, field)
    if _HOME_RETURN.fullmatch(number) or _TAIWAN_PERMIT.fullmatch(number):
        return number
    raise _fail(f"{label}格式不正确（共{len(number)}位）：港澳居民来往内地通行证为H或M加8位数字"
                "（旧版再加2位换证次数），台湾居民来往大陆通行证为8位数字，港澳台居民居住证为18位",
                "ID_FORMAT", field, found=len(number))


def validate_foreign_permanent(number: str, today: date | None = None, *,
                               field: str | None = None) -> str:
    label = "外国人永久居留身份证号码"
    number = _normalise(number, label, field)
    if len(number) == 15:
        if not _FOREIGN_OLD.fullmatch(number):
            pos = next(i for i, c in enumerate(number, start=1)
                       if not (c.isascii() and (c.isupper() if i <= 3 else c.isdigit())))
            raise _fail(f"{label}（旧版15位）第{pos}位不符：应为3位英文字母国籍代码加12位数字",
                        "ID_FORMAT", field, position=pos)
        return number
    if len(number) == 18:  # 2023 card: 9 + province + nationality + birth date + seq + check
        if number[0] != "9":
            raise _fail(f"{label}（2023版18位）第1位应为9", "ID_FORMAT", field, position=1)
        return _check_gb11643(number, label, today, field)
    raise _fail(f"{label}应为15位（旧版）或18位（2023版），实际为{len(number)}位", "ID_LENGTH",
                field, found=len(number))


def validate_person_id(id_type: str, number: str, today: date | None = None, *,
                       field: str | None = None) -> str:
    """Dispatch on `id_type` (a key of ID_TYPE_NAMES); return the normalised number."""
    if id_type == "resident_id":
        return validate_resident_id(number, today, field=field)
    if id_type == "passport":
        return validate_passport(number, field=field)
    if id_type == "hmt_permit":
        return validate_hmt_permit(number, today, field=field)
    if id_type == "foreign_permanent":
        return validate_foreign_permanent(number, today, field=field)
    allowed = "、".join(f"{k}（{v}）" for k, v in ID_TYPE_NAMES.items())
    raise _fail(f"未知的证件类型“{id_type}”，应为：{allowed}", "ID_TYPE_UNKNOWN", field,
                found=id_type)
