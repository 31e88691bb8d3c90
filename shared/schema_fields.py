"""The checks the services' HTTP schemas share, with their Chinese messages: the shape of
a county code, a USCC and a year, in query filters and bodies alike (the codes' full checks
run where a code is looked up; a filter only needs the right shape to match nothing
otherwise)."""
import re

from marshmallow import fields, validate

from shared.validators.uscc import PATTERN as USCC_PATTERN

COUNTY = validate.Regexp(r"^\d{6}$", error="县级区划代码应为6位数字")
USCC = [validate.Length(equal=18, error="统一社会信用代码应为18位"),
        validate.Regexp(USCC_PATTERN, flags=re.IGNORECASE,
                        error="统一社会信用代码只使用数字和英文字母（不使用I、O、Z、S、V）")]
YEAR = validate.Range(min=2000, max=2100, error="年度应在{min}到{max}之间")

REQUIRED = {"required": "必填字段缺失", "null": "不能为空（null）"}
DATE = {**REQUIRED, "invalid": "不是有效的日期（应为 YYYY-MM-DD）"}
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # not blank, no control characters
_MULTILINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\S[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def one_of(names: dict) -> validate.OneOf:
    """One of the codes of `names` (code -> Chinese name), the message listing both."""
    return validate.OneOf(list(names), error="取值应为 " + "、".join(
        f"{k}（{v}）" for k, v in names.items()) + " 之一")


def text(max_length: int, name: str, *, required: bool = True, multiline: bool = False,
         **kwargs) -> fields.String:
    """A text of 1 to `max_length` characters, not blank, without control characters."""
    checks = [validate.Length(min=1, max=max_length, error=f"{name}应为1到{max_length}个字符"),
              validate.Regexp(_MULTILINE if multiline else _NO_CONTROL,
                              error=f"{name}不能为空，也不能含控制字符")]
    if required:
        return fields.String(required=True, validate=checks, error_messages=REQUIRED, **kwargs)
    return fields.String(validate=checks, **kwargs)


class StrictBool(fields.Boolean):
    """Only JSON true/false: "yes" or 1 for a consent is a clerk's slip, not an answer."""

    truthy = {True}
    falsy = {False}
    default_error_messages = {**REQUIRED, "invalid": "应为 true 或 false"}
