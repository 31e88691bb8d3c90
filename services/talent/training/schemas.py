"""HTTP schemas of training (art. 6, art. 15 教育培训), documented in the talent OpenAPI."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.file_import import ImportCountsOut
from shared.paging import PageOut, page_query
from shared.validators import ID_TYPE_NAMES
from services.talent.domain.training import (CERTIFICATE_MAX, CERTIFICATE_PATTERN, COURSE_KINDS, ENTERPRISE_MAX, LEVELS, NAME_MAX,
                                             REASON_MAX, REVOCATION_CAUSES)

PageQuery = page_query(default=50, maximum=500)
KIND = validate.OneOf(list(COURSE_KINDS), error="培训类别应为 appointment（任职培训）、basic（基础培训）"
                                                "或 advanced（提升培训）")
LEVEL = validate.OneOf(list(LEVELS), error="组织层级应为 city（市级）或 county（县级）")
COUNTY = validate.Regexp(r"^\d{6}$", error="县级区划代码应为6位数字")
YEAR = validate.Range(min=2000, max=2100, error="年度应在2000到2100之间")


class CourseIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200, error="课程名称应为1到200个字符"))
    kind = fields.String(required=True, validate=KIND, metadata={"description": "appointment 任职培训、"
                                                                               "basic 基础培训、advanced 提升培训"})
    level = fields.String(required=True, validate=LEVEL, metadata={"description": "组织层级：city 市级、county 县级"})
    county = fields.String(load_default=None, allow_none=True, validate=COUNTY,
                           metadata={"description": "县级培训所属县（市、区）代码，县级培训必填"})
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    hours = fields.Float(required=True, allow_nan=False, validate=validate.Range(
        min=0.5, max=1000, error="学时应在0.5到1000之间"))
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=1, max=1_000_000, error="容量应在1到1000000人之间"))



class CourseOut(Schema):
    id = fields.Integer()
    title = fields.String()
    kind = fields.String()
    kind_name = fields.String()
    level = fields.String()
    level_name = fields.String()
    county = fields.String(allow_none=True)
    county_name = fields.String(allow_none=True)
    starts_on = fields.Date()
    ends_on = fields.Date()
    hours = fields.Float()
    capacity = fields.Integer()
    attendees = fields.Integer(metadata={"description": "已登记的学员数"})
    passed = fields.Integer(metadata={"description": "考核合格的学员数"})
    created_by = fields.String()
    created_at = fields.DateTime()


class CourseQuery(PageQuery):
    kind = fields.String(validate=KIND)
    level = fields.String(validate=LEVEL)
    county = fields.String(validate=COUNTY)
    year = fields.Integer(validate=YEAR, metadata={"description": "开始日期所在年度"})


class CoursePageOut(PageOut):
    items = fields.List(fields.Nested(CourseOut))


class AttendanceIn(Schema):
    person_name = fields.String(required=True, validate=validate.Length(
        min=1, max=NAME_MAX, error=f"姓名应为1到{NAME_MAX}个字符"))
    id_type = fields.String(load_default="resident_id", validate=validate.OneOf(
        list(ID_TYPE_NAMES), error="证件类型应为 resident_id、passport、hmt_permit 或 foreign_permanent"))
    id_number = fields.String(required=True, load_only=True, validate=validate.Length(
        min=1, max=40, error="证件号码应为1到40个字符"), metadata={"description": "证件号码（仅提交，不会返回）"})
    uscc = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=18, error="统一社会信用代码应为18位"))
    enterprise_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=ENTERPRISE_MAX, error=f"企业名称不能超过{ENTERPRISE_MAX}个字符"))
    passed = fields.Boolean(required=True, metadata={"description": "考核是否合格"})
    certificate_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=CERTIFICATE_MAX, error=f"证书编号不能超过{CERTIFICATE_MAX}个字符"))
    issued_on = fields.Date(load_default=None, allow_none=True)


class AttendanceOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    person_name = fields.String()
    id_type = fields.String()
    id_type_name = fields.String()
    id_masked = fields.String(metadata={"description": "脱敏的证件号码"})
    uscc = fields.String(allow_none=True)
    enterprise_name = fields.String(allow_none=True)
    passed = fields.Boolean()
    certificate_no = fields.String(allow_none=True)
    issued_on = fields.Date(allow_none=True)
    revision = fields.Integer(metadata={"description": "修改次数（首次登记为1）"})
    recorded_at = fields.DateTime()
    updated_at = fields.DateTime()


class AttendanceWrittenOut(AttendanceOut):
    result = fields.String(metadata={"description": "inserted 新增、updated 更新、unchanged 未变化"})


class AttendanceQuery(PageQuery):
    passed = fields.Boolean(metadata={"description": "只列出考核合格（true）或不合格（false）的学员"})


class AttendancePageOut(PageOut):
    items = fields.List(fields.Nested(AttendanceOut))


class ImportQuery(Schema):
    filename = fields.String(validate=validate.Length(max=300),
                             metadata={"description": "原始文件名（请求体直接上传文件时）"})


class RejectedRowOut(Schema):
    line = fields.Integer(metadata={"description": "行号（与在 Excel 中打开时的行号一致）"})
    person_name = fields.String()
    id_masked = fields.String(metadata={"description": "脱敏的证件号码"})
    reasons = fields.List(fields.String())


class ImportOut(ImportCountsOut):
    course_id = fields.Integer()
    certificates_announced = fields.Integer(metadata={"description": "本次发布的证书事件数"})
    certificates_revoked = fields.Integer(metadata={"description": "考核结果由合格更正为不合格而撤销的证书数"})
    rejected_rows = fields.List(fields.Nested(RejectedRowOut))


class RevocationIn(Schema):
    """Checked by the domain (`check_revocation`), so that each field's error has its own
    code; the bounds here document it."""

    certificate_no = fields.String(required=True, metadata={
        "description": "要撤销的证书编号", "minLength": 1, "maxLength": CERTIFICATE_MAX,
        "pattern": f"^{CERTIFICATE_PATTERN}$"})
    reason = fields.String(required=True, metadata={
        "description": f"撤销原因（1到{REASON_MAX}个字符）", "minLength": 1, "maxLength": REASON_MAX})


class RevocationOut(Schema):
    id = fields.Integer()
    certificate_no = fields.String()
    attendance_id = fields.Integer()
    course_id = fields.Integer()
    person_name = fields.String()
    id_masked = fields.String(metadata={"description": "脱敏的证件号码"})
    cause = fields.String(metadata={"description": "、".join(f"{k} {v}" for k, v in REVOCATION_CAUSES.items())})
    cause_name = fields.String()
    reason = fields.String()
    revoked_on = fields.Date()
    revoked_by = fields.String()
    revoked_at = fields.DateTime()
