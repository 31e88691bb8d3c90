"""Field types of the county's HTTP schemas: every message Chinese, and the OpenAPI
document states each check (length, pattern, range) the field makes."""
from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.contracts import jurisdiction
from shared.errors import CqoError
from shared.validators import validate_uscc

BASE_MESSAGES = {"required": "必填字段缺失", "null": "不能为空（null）", "validator_failed": "取值无效"}


def _choices(mapping: dict) -> str:
    return "、".join(f"{k}（{v}）" for k, v in mapping.items())


# JSON allows "\u0000" and lone surrogates ("\ud800"); PostgreSQL and UTF-8 do not
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# the same rules as the OpenAPI document states them (JSON Schema `pattern`)
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_NO_CONTROL_MULTILINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class Text(fields.String):
    """A trimmed string; blank is refused unless `allow_blank` (then it becomes None)."""

    default_error_messages = {**BASE_MESSAGES, "invalid": "应为文本", "invalid_utf8": "不是有效的 UTF-8 文本",
                              "blank": "不能为空", "too_long": "长度不能超过 {max} 个字符",
                              "control": "包含不允许的控制字符或无效字符"}

    def __init__(self, *, max_length: int = 200, allow_blank: bool = False,
                 multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.allow_blank = max_length, allow_blank
        self.control = _CONTROL_MULTILINE if multiline else _CONTROL
        # documented (OpenAPI) as checked; a validator's own pattern (metadata) wins
        self.metadata = {"maxLength": max_length, **({} if allow_blank else {"minLength": 1}),
                         "pattern": _NO_CONTROL_MULTILINE if multiline else _NO_CONTROL,
                         **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if self.control.search(text):
            raise self.make_error("control")
        if not text:
            if self.allow_blank:
                return None
            raise self.make_error("blank")
        if len(text) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        return text

    def _validate(self, value):
        if value is not None:  # a blank allowed as absent (None) has nothing to check
            super()._validate(value)


class Choice(Text):
    default_error_messages = {**Text.default_error_messages, "choice": "取值必须为以下之一：{choices}"}

    def __init__(self, mapping: dict, **kwargs):
        super().__init__(max_length=64, **kwargs)
        self.mapping = mapping
        self.metadata = {**self.metadata, "enum": list(mapping)}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is not None and text not in self.mapping:
            raise self.make_error("choice", choices=_choices(self.mapping))
        return text


class Bool(fields.Boolean):
    """Only JSON true/false: "yes" or 1 for an attestation is not an attestation."""

    default_error_messages = {**BASE_MESSAGES, "invalid": "应为布尔值 true 或 false"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Number(fields.Float):
    default_error_messages = {**BASE_MESSAGES, "invalid": "应为数字", "special": "不允许 NaN 或无穷大",
                              "too_large": "数字过大"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Int(fields.Integer):
    default_error_messages = {**BASE_MESSAGES, "invalid": "应为整数", "too_large": "数字过大"}


class Day(fields.Date):
    """A calendar date written YYYY-MM-DD; responses also accept stored ISO strings."""

    default_error_messages = {**BASE_MESSAGES, "invalid": "不是有效的日期（应为 YYYY-MM-DD）",
                              "format": "无法格式化为日期"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise self.make_error("invalid")
        return super()._deserialize(value.strip(), attr, data, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class Moment(fields.DateTime):
    default_error_messages = {**BASE_MESSAGES, "invalid": "不是有效的日期时间（应为 ISO 8601 格式）",
                              "invalid_awareness": "日期时间须带时区", "format": "无法格式化为日期时间"}


class Obj(fields.Nested):
    default_error_messages = {**BASE_MESSAGES, "type": "应为 JSON 对象"}


class Items(fields.List):
    default_error_messages = {**BASE_MESSAGES, "invalid": "应为列表"}


class Identifier(fields.UUID):
    default_error_messages = {**BASE_MESSAGES, "invalid_uuid": "不是有效的备案编号（UUID）"}


def count_limit(min_: int | None = None, max_: int | None = None) -> validate.Length:
    if min_ is not None and max_ is not None:
        message = f"数量应在 {min_} 到 {max_} 之间"
    elif max_ is not None:
        message = f"数量不能超过 {max_}"
    else:
        message = f"数量不能少于 {min_}"
    return validate.Length(min=min_, max=max_, error=message)


def between(min_, max_) -> validate.Range:
    return validate.Range(min=min_, max=max_, error=f"应在 {min_} 到 {max_} 之间")


class StrictSchema(Schema):
    error_messages = {"type": "应为 JSON 对象", "unknown": "未知字段"}

    class Meta:
        unknown = RAISE


def _message_of(exc: CqoError) -> ValidationError:
    return ValidationError(exc.message)


def check_uscc(value: str) -> None:
    try:
        validate_uscc(value)
    except CqoError as exc:
        raise _message_of(exc) from None


def check_county(value: str) -> None:
    try:
        jurisdiction().validate(value)
    except CqoError as exc:
        raise _message_of(exc) from None


PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$")


def check_phone(value: str) -> None:
    if not PHONE.match(value):
        raise ValidationError("电话号码格式不正确：手机号为11位数字，固定电话为区号加号码（如0317-1234567）")


class CommaList(fields.Field):
    """`a,b` or repeated query parameters -> list of allowed values."""

    default_error_messages = {**BASE_MESSAGES, "choice": "取值必须为以下之一：{choices}"}

    def __init__(self, mapping: dict, **kwargs):
        super().__init__(**kwargs)
        self.mapping = mapping
        one = "(" + "|".join(re.escape(k) for k in mapping) + ")"
        self.metadata = {"type": "string", "pattern": f"^{one}(,{one})*$", **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        values = value if isinstance(value, list) else [value]
        items = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
        bad = [v for v in items if v not in self.mapping]
        if bad or not items:
            raise self.make_error("choice", choices=_choices(self.mapping))
        return items


class QueryBool(fields.Boolean):
    default_error_messages = {**BASE_MESSAGES, "invalid": "应为 true 或 false"}


class QueryInt(fields.Integer):
    default_error_messages = {**BASE_MESSAGES, "invalid": "应为整数", "too_large": "数字过大"}


class QueryDay(fields.Date):
    default_error_messages = {**BASE_MESSAGES, "invalid": "不是有效的日期（应为 YYYY-MM-DD）"}
