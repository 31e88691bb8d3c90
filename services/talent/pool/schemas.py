"""HTTP schemas of the talent pool and the city-level experts (Chinese messages; the
OpenAPI document shows every check). An ID number is accepted (load only) and never
answered; contact details are answered masked only, except by the consent-guarded
contact endpoint."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.errors import CqoError
from shared.paging import PageOut, page_query
from shared.schema_fields import COUNTY, DATE as _DATE, REQUIRED as _REQUIRED, USCC, StrictBool, text
from shared.schema_fields import one_of as _choices
from shared.validators import ID_TYPE_NAMES, validate_person_id, validate_uscc
from services.talent.domain.pool import EXPERT_STATUS_NAMES, MEMBER_STATUS_NAMES, SOURCE_NAMES

PHONE = r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$"


def _uscc_field(description: str, required: bool = True) -> fields.String:
    kwargs = {"required": True, "error_messages": _REQUIRED} if required else {"load_default": None}
    return fields.String(validate=USCC, metadata={"description": description}, **kwargs)


class _Normalised(Schema):
    @post_load
    def _uscc(self, data, **kwargs):
        if data.get("uscc"):
            try:
                data["uscc"] = validate_uscc(data["uscc"])
            except CqoError as exc:
                raise ValidationError(exc.message, "uscc") from None
        return data


# -- the pool --------------------------------------------------------------------------------

PageQuery = page_query(default=50, maximum=200)


class PoolQuery(PageQuery):
    county = fields.String(validate=COUNTY, metadata={"description": "县（市、区）代码；县级监管人员只能查本县"})
    status = fields.String(validate=_choices(MEMBER_STATUS_NAMES))
    source = fields.String(validate=_choices(SOURCE_NAMES))
    uscc = fields.String(validate=USCC, metadata={"description": "企业统一社会信用代码"})


class NominationIn(_Normalised):
    name = text(100, "姓名", metadata={"description": "被推荐人姓名"})
    id_type = fields.String(required=True, validate=_choices(ID_TYPE_NAMES), error_messages=_REQUIRED,
                            metadata={"description": "证件类型"})
    id_number = fields.String(required=True, load_only=True, error_messages=_REQUIRED,
                              validate=validate.Length(min=1, max=40, error="证件号码应为1到40个字符"),
                              metadata={"description": "证件号码（只用于计算匹配用的散列值，不保存、不返回明文）"})
    uscc = _uscc_field("所在企业统一社会信用代码")
    enterprise_name = text(200, "企业名称", required=False, load_default=None, allow_none=True, metadata={"description": "所在企业名称"})
    county = fields.String(load_default=None, allow_none=True, validate=COUNTY, metadata={
        "description": "县（市、区）代码；县级监管人员可省略（默认本县），市级推荐必填"})
    reason = text(2000, "推荐理由", multiline=True, metadata={"description": "推荐理由"})

    @validates_schema
    def _id_number(self, data, **kwargs):
        if data.get("id_type") and data.get("id_number"):
            try:  # the messages name the position and the form, never the number
                validate_person_id(data["id_type"], data["id_number"])
            except CqoError as exc:
                raise ValidationError(exc.message, "id_number") from None


class MemberOut(Schema):
    id = fields.Integer()
    name = fields.String()
    id_masked = fields.String(metadata={"description": "证件号码（遮蔽）"})
    uscc = fields.String()
    enterprise_name = fields.String(allow_none=True)
    county = fields.String()
    county_name = fields.String()
    appointment_id = fields.Integer(allow_none=True, metadata={"description": "登记中的任命编号（县局推荐的为空）"})
    source = fields.String(metadata={"description": "来源：appointment（备案任命）、nomination（县局推荐）"})
    source_name = fields.String()
    status = fields.String(metadata={"description": "active（在任）、lapsed（任期届满）、ended（已离任）"})
    status_name = fields.String()
    joined_on = fields.Date()
    left_on = fields.Date(allow_none=True)
    nominated_by = fields.String(allow_none=True)
    nomination_reason = fields.String(allow_none=True)


class MemberPageOut(PageOut):
    items = fields.List(fields.Nested(MemberOut))


# -- experts ---------------------------------------------------------------------------------

class ExpertQuery(PageQuery):
    county = fields.String(validate=COUNTY, metadata={"description": "县（市、区）代码；县级监管人员只能查本县"})
    status = fields.String(validate=_choices(EXPERT_STATUS_NAMES))
    expertise = fields.String(validate=validate.Length(min=1, max=10, error="专业领域代码应为1到10个字符"),
                              metadata={"description": "专业领域代码（GB/T 4754 门类或大类）"})
    uscc = fields.String(validate=USCC, metadata={"description": "所在企业统一社会信用代码"})


class ExpertIn(Schema):
    member_id = fields.Integer(required=True, strict=True, error_messages={**_REQUIRED, "invalid": "应为整数"},
                               validate=validate.Range(min=1, max=2**63 - 1, error="人才库成员编号无效"),
                               metadata={"description": "人才库成员编号（GET /pool）"})
    expertise = fields.List(
        fields.String(validate=validate.Length(min=1, max=10, error="专业领域代码应为1到10个字符")),
        required=True, error_messages=_REQUIRED,
        validate=validate.Length(min=1, max=30, error="专业领域应为1到30个"),
        metadata={"description": "专业领域代码（GET /expertise：GB/T 4754 门类 A～T 或大类 01～97）"})
    term_start = fields.Date(required=True, error_messages=_DATE, metadata={"description": "聘期开始"})
    term_end = fields.Date(required=True, error_messages=_DATE, metadata={"description": "聘期结束"})
    phone = fields.String(load_default=None, allow_none=True,
                          validate=validate.Regexp(PHONE, error="电话号码格式不正确：手机号为11位数字，"
                                                                "固定电话为区号加号码（如0317-1234567）"),
                          metadata={"description": "联系电话（加密保存，列表中遮蔽显示）"})
    email = fields.Email(load_default=None, allow_none=True,
                         error_messages={"invalid": "不是有效的电子邮箱地址"},
                         validate=[validate.Length(max=200, error="长度不能超过 200 个字符"),
                                   validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="包含不允许的控制字符")],
                         metadata={"description": "电子邮箱（加密保存，列表中遮蔽显示）"})
    consent_to_contact = StrictBool(required=True, metadata={
        "description": "专家是否同意被联系（记录登记人和时间；未同意的专家不提供联系方式）"})


class ReasonIn(Schema):
    reason = text(2000, "理由", multiline=True, metadata={"description": "暂停或恢复的理由"})


class ConsentIn(Schema):
    consent_to_contact = StrictBool(required=True, metadata={"description": "专家是否同意被联系"})


class ConflictIn(_Normalised):
    uscc = _uscc_field("存在利益冲突的企业统一社会信用代码")
    since = fields.Date(required=True, error_messages=_DATE, metadata={"description": "冲突自何时起"})
    note = text(2000, "说明", required=False, multiline=True, load_default=None, allow_none=True,
                metadata={"description": "说明"})


class WithdrawIn(Schema):
    note = text(2000, "说明", required=False, multiline=True, load_default=None, allow_none=True,
                metadata={"description": "撤销的说明"})


class ExpertiseItemOut(Schema):
    code = fields.String()
    name = fields.String()


class SuspensionOut(Schema):
    code = fields.String(metadata={"description": "appointment_ended、appointment_lapsed、"
                                                  "replacement_recommended、manual"})
    name = fields.String()
    ref = fields.String(metadata={"description": "原因的出处：任命编号、撤换建议编号"})
    since = fields.String()
    note = fields.String()
    by = fields.String()


class ConflictOut(Schema):
    id = fields.Integer()
    uscc = fields.String()
    since = fields.Date()
    note = fields.String(allow_none=True)
    recorded_at = fields.DateTime()
    recorded_by = fields.String()
    withdrawn_at = fields.DateTime(allow_none=True)


class ExpertOut(Schema):
    id = fields.String()
    member_id = fields.Integer(allow_none=True)
    name = fields.String()
    id_masked = fields.String()
    county = fields.String()
    county_name = fields.String()
    employer_uscc = fields.String()
    employer_name = fields.String(allow_none=True)
    expertise = fields.List(fields.Nested(ExpertiseItemOut))
    term_start = fields.Date()
    term_end = fields.Date()
    phone_masked = fields.String(allow_none=True)
    email_masked = fields.String(allow_none=True)
    consent_to_contact = fields.Boolean()
    consent_recorded_at = fields.DateTime(allow_none=True)
    consent_recorded_by = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "active（在库）、suspended（暂停）、ended（已终止）"})
    status_name = fields.String()
    suspensions = fields.List(fields.Nested(SuspensionOut))
    designated_at = fields.DateTime()
    designated_by = fields.String()
    updated_at = fields.DateTime()


class ExpertDetailOut(ExpertOut):
    conflicts = fields.List(fields.Nested(ConflictOut))


class ExpertPageOut(PageOut):
    items = fields.List(fields.Nested(ExpertOut))


class ContactOut(Schema):
    id = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class FieldOut(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String(metadata={"description": "section（门类）或 division（大类）"})
    section = fields.String(allow_none=True, metadata={"description": "大类所属门类"})


class ExpertiseOut(Schema):
    items = fields.List(fields.Nested(FieldOut))
