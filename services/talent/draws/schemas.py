"""HTTP schemas of panel draws (documented in the talent service's OpenAPI)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.errors import ValidationFailed
from shared.schema_fields import COUNTY
from shared.validators.uscc import PATTERN as USCC_PATTERN

USCC = validate.Regexp(USCC_PATTERN, error="统一社会信用代码格式不正确（18位数字和大写字母）")
EXAMPLE_USCC = "91130921MA0CQ00188"
MAX_SIZE = MAX_ALTERNATES = 100


def _within(low: int, high: int, code: str, message: str):
    """A bound answered with the draw's own code (not the schema's generic one), and
    documented as minimum/maximum through the field's metadata."""
    def check(value: int) -> None:
        if not low <= value <= high:
            raise ValidationFailed(message, code=code, field=code.split("_")[1].lower())
    return check


class DrawIn(Schema):
    """Size, alternates and fields of expertise are checked by the draw's own rules
    (DRAW_SIZE_INVALID, DRAW_ALTERNATES_INVALID, DRAW_EXPERTISE_UNKNOWN)."""

    purpose = fields.String(required=True, validate=validate.Length(
        min=1, max=200, error="抽取事由应为 1 到 200 个字符"), metadata={"example": "质量诊断专家组"})
    size = fields.Integer(required=True, strict=True, validate=_within(
        1, MAX_SIZE, "DRAW_SIZE_INVALID", f"专家人数须在 1 到 {MAX_SIZE} 之间。"), metadata={
            "description": "专家人数", "example": 7, "minimum": 1, "maximum": MAX_SIZE})
    alternates = fields.Integer(load_default=0, strict=True, validate=_within(
        0, MAX_ALTERNATES, "DRAW_ALTERNATES_INVALID", f"备选专家人数须在 0 到 {MAX_ALTERNATES} 之间。"),
        metadata={"description": "备选专家人数", "example": 3, "minimum": 0,
                  "maximum": MAX_ALTERNATES})
    expertise = fields.List(fields.String(validate=validate.Length(min=1, max=8)),
                            load_default=list, validate=validate.Length(max=120), metadata={
                                "description": "所需专业领域（GB/T 4754 门类或大类代码；门类含其全部大类），"
                                               "为空则不限", "example": ["C"]})
    enterprises = fields.List(fields.String(validate=USCC), load_default=list,
                              validate=validate.Length(max=1000), metadata={
                                  "description": "涉及的企业（统一社会信用代码）：其员工和申明与之有利害关系的专家回避",
                                  "example": [EXAMPLE_USCC]})
    counties = fields.List(fields.String(validate=COUNTY), load_default=list,
                           validate=validate.Length(max=200), metadata={
                               "description": "涉及的县（市、区）", "example": ["130921"]})
    exclude_involved_counties = fields.Boolean(load_default=False, metadata={
        "description": "是否排除涉及县（市、区）的专家"})


class DeclineIn(Schema):
    expert_id = fields.String(required=True, validate=validate.Length(min=1, max=36),
                              metadata={"description": "拒绝参加的专家编号"})


class ExpertiseOut(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)


class PanelMemberOut(Schema):
    expert_id = fields.String()
    name = fields.String(allow_none=True)
    county = fields.String(allow_none=True)
    expertise = fields.List(fields.Nested(ExpertiseOut))
    role = fields.String(metadata={"description": "member 抽中专家；alternate 递补的备选专家"})


class MemberOut(PanelMemberOut):
    draw_id = fields.String()
    position = fields.Integer()
    state = fields.String(metadata={"description": "standby 备选待用、invited 已邀请、accepted 已接受、declined 已拒绝"})
    replaced_by = fields.String(allow_none=True)


class ExclusionOut(Schema):
    code = fields.String(metadata={"description": "suspended 暂停、out_of_term 不在聘期内、"
                                   "no_consent 未同意联系、employed_by_involved 受聘于涉及企业、"
                                   "declared_conflict 申明与涉及企业有利害关系、"
                                   "involved_county 属涉及县（市、区）、expertise_mismatch 专业领域不符"})
    name = fields.String()
    count = fields.Integer()


class DrawRunOut(Schema):
    id = fields.String()
    parent_draw_id = fields.String(allow_none=True)
    seed = fields.String()
    snapshot_hash = fields.String()
    eligible_count = fields.Integer()
    exclusions = fields.List(fields.Nested(ExclusionOut), metadata={
        "description": "未列入候选名单的专家人数，按排除原因（每名专家计首个原因）"})
    size = fields.Integer()
    alternates = fields.Integer()
    drawn_at = fields.DateTime()
    drawn_by = fields.String()
    chain_seq = fields.Integer()
    chain_hash = fields.String(allow_none=True)


class PublicPanelMemberOut(Schema):
    expert_id = fields.String()
    name = fields.String(allow_none=True)
    expertise = fields.List(fields.Nested(ExpertiseOut))
    role = fields.String()


class PublicDrawOut(Schema):
    id = fields.String()
    purpose = fields.String()
    status = fields.String()
    drawn_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    seed = fields.String()
    snapshot_hash = fields.String()
    panel = fields.List(fields.Nested(PublicPanelMemberOut))


class DrawOut(Schema):
    """A city officer's view; an enterprise or county officer gets the public view of a
    published panel (PublicDrawOut's fields)."""

    id = fields.String()
    purpose = fields.String()
    status = fields.String(metadata={"description": "drawn 已抽取（未公布）；published 已公布"})
    drawn_at = fields.DateTime()
    drawn_by = fields.String()
    published_at = fields.DateTime(allow_none=True)
    published_by = fields.String(allow_none=True)
    seed = fields.String()
    snapshot_hash = fields.String()
    parameters = fields.Dict()
    draws = fields.List(fields.Nested(DrawRunOut), metadata={"description": "首次抽取及其补充抽取"})
    members = fields.List(fields.Nested(MemberOut))
    panel = fields.List(fields.Nested(PanelMemberOut), metadata={"description": "当前专家组"})


class CheckOut(Schema):
    name = fields.String(metadata={"description": "snapshot、snapshot_hash、order、result、chain"})
    label = fields.String()
    ok = fields.Boolean()
    message = fields.String()
    differences = fields.Dict(metadata={"description": "快照不一致时：快照缺少（missing）和多出（extra）的专家编号（各至多 20 个）"})


class VerificationOut(Schema):
    draw_id = fields.String()
    ok = fields.Boolean()
    checks = fields.List(fields.Nested(CheckOut))
    drawn_at = fields.DateTime()
    seed = fields.String()
    snapshot_hash = fields.String()
    eligible_count = fields.Integer()
    exclusions = fields.List(fields.Nested(ExclusionOut), metadata={
        "description": "按抽取时的专家库历史重建时排除的专家人数，按原因"})
    chain_break_seq = fields.Integer(allow_none=True)
    chain_head = fields.String()
