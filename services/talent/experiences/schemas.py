"""HTTP schemas of typical experiences and benchmark CQOs (Chinese messages; the OpenAPI
document shows every check). The public shapes carry what may be published and nothing
of the review, the consent's evidence or who recorded it."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.contracts import jurisdiction
from shared.errors import CqoError
from shared.paging import PageOut, page_query
from shared.schema_fields import COUNTY, DATE as _DATE, REQUIRED as _REQUIRED, USCC, YEAR as YEAR_RANGE, StrictBool
from shared.schema_fields import one_of as _choices, text as text_field
from shared.validators import validate_uscc
from services.talent.domain.experiences import ACTION_NAMES, STATUS_NAMES


class Int(fields.Integer):
    default_error_messages = {**_REQUIRED, "invalid": "应为整数", "too_large": "数字过大"}


class QueryBool(fields.Boolean):
    truthy = {"true", "1"}
    falsy = {"false", "0"}
    default_error_messages = {"invalid": "应为 true 或 false"}


class _Checked(Schema):
    """The USCC's check characters and the county's membership of the jurisdiction, after
    the fields' shapes passed (their messages name positions, never guesses)."""

    @post_load
    def _codes(self, data, **kwargs):
        errors = {}
        for name, check in (("uscc", validate_uscc), ("county", lambda c: jurisdiction().validate(c).code)):
            if data.get(name):
                try:
                    data[name] = check(data[name])
                except CqoError as exc:
                    errors[name] = [exc.message]
        if errors:
            raise ValidationError(errors)
        return data


PageQuery = page_query(default=20, maximum=100, integer=Int)


# -- typical experiences ---------------------------------------------------------------------

class ConsentIn(Schema):
    consented = StrictBool(required=True, metadata={"description": "企业是否同意公开（第十条：保守企业秘密）"})
    document_ref = text_field(200, "同意书编号", required=False, load_default=None, allow_none=True,
                        metadata={"description": "企业同意书的文号或存档编号（同意时与 consented_on 至少填一项）"})
    consented_on = fields.Date(load_default=None, allow_none=True, error_messages=_DATE,
                               metadata={"description": "企业同意的日期"})


class ExperienceIn(_Checked):
    title = text_field(200, "标题", metadata={"description": "典型经验标题"})
    text = text_field(20000, "正文", multiline=True, metadata={"description": "典型经验正文"})
    uscc = fields.String(required=True, validate=USCC, error_messages=_REQUIRED,
                         metadata={"description": "企业统一社会信用代码"})
    enterprise_name = text_field(200, "企业名称", metadata={"description": "企业名称"})
    county = fields.String(load_default=None, allow_none=True, validate=COUNTY, metadata={
        "description": "县（市、区）代码；可省略（默认本县），只能是本县"})
    consent = fields.Nested(ConsentIn, load_default=None, allow_none=True,
                            metadata={"description": "企业对公开的同意（可在提交后登记）"})


class ExperiencePatch(_Checked):
    title = text_field(200, "标题", required=False)
    text = text_field(20000, "正文", required=False, multiline=True)
    uscc = fields.String(validate=USCC, metadata={"description": "企业统一社会信用代码"})
    enterprise_name = text_field(200, "企业名称", required=False)

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("请至少修改一项：title、text、uscc、enterprise_name")


class ReviewIn(Schema):
    action = fields.String(required=True, validate=_choices(ACTION_NAMES), error_messages=_REQUIRED,
                           metadata={"description": "approve（审核通过）、return（退回修改，须填意见）、"
                                                    "publish（发布，须已登记企业同意）、unpublish（撤销发布）"})
    comment = text_field(2000, "意见", required=False, multiline=True, load_default=None, allow_none=True,
                   metadata={"description": "审核意见（退回时必填）"})


class ExperienceQuery(PageQuery):
    county = fields.String(validate=COUNTY, metadata={"description": "县（市、区）代码；县级监管人员只能查本县"})
    status = fields.String(validate=_choices(STATUS_NAMES))
    uscc = fields.String(validate=USCC, metadata={"description": "企业统一社会信用代码"})


class PublicExperienceQuery(PageQuery):
    county = fields.String(validate=COUNTY, metadata={"description": "县（市、区）代码"})
    year = Int(validate=YEAR_RANGE, metadata={"description": "发布年度"})


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer(metadata={"description": "字节数"})
    sha256 = fields.String(metadata={"description": "上传时内容的 SHA-256（十六进制）；下载时核对"})
    download = fields.String(metadata={"description": "下载地址"})


class OfficerAttachmentOut(AttachmentOut):
    uploaded_by = fields.String()
    uploaded_at = fields.DateTime()


class ConsentOut(Schema):
    consented = fields.Boolean()
    document_ref = fields.String(allow_none=True)
    consented_on = fields.Date(allow_none=True)
    recorded_by = fields.String(allow_none=True)
    recorded_at = fields.DateTime(allow_none=True)


class HistoryOut(Schema):
    action = fields.String()
    comment = fields.String(allow_none=True)
    actor = fields.String()
    at = fields.DateTime()


class ExperienceOut(Schema):
    id = fields.Integer()
    title = fields.String()
    text = fields.String()
    uscc = fields.String()
    enterprise_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    status = fields.String(metadata={"description": "submitted（待审核）、returned（已退回）、"
                                                    "approved（已审核）、published（已发布）"})
    status_name = fields.String()
    consent = fields.Nested(ConsentOut)
    submitted_by = fields.String()
    submitted_at = fields.DateTime()
    review_comment = fields.String(allow_none=True)
    reviewed_by = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    published_on = fields.Date(allow_none=True)
    attachments = fields.List(fields.Nested(OfficerAttachmentOut))
    history = fields.List(fields.Nested(HistoryOut))


class ExperienceSummaryOut(Schema):
    id = fields.Integer()
    title = fields.String()
    uscc = fields.String()
    enterprise_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    status = fields.String()
    status_name = fields.String()
    consented = fields.Boolean()
    submitted_at = fields.DateTime()
    published_on = fields.Date(allow_none=True)
    attachment_count = fields.Integer()


class ExperiencePageOut(PageOut):
    items = fields.List(fields.Nested(ExperienceSummaryOut))


class PublicExperienceOut(Schema):
    id = fields.Integer()
    title = fields.String()
    text = fields.String()
    enterprise_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    published_on = fields.Date()
    attachments = fields.List(fields.Nested(AttachmentOut))


class PublicExperiencePageOut(PageOut):
    items = fields.List(fields.Nested(PublicExperienceOut))


# -- benchmark CQOs --------------------------------------------------------------------------

class BenchmarkIn(_Checked):
    year = Int(required=True, strict=True, validate=YEAR_RANGE, metadata={"description": "年度"})
    name = text_field(100, "姓名", metadata={"description": "首席质量官姓名"})
    uscc = fields.String(required=True, validate=USCC, error_messages=_REQUIRED,
                         metadata={"description": "企业统一社会信用代码"})
    enterprise_name = text_field(200, "企业名称")
    county = fields.String(required=True, validate=COUNTY, error_messages=_REQUIRED,
                           metadata={"description": "县（市、区）代码"})
    citation = text_field(5000, "推荐事迹", multiline=True, metadata={"description": "评定理由、主要事迹"})


class WithdrawIn(Schema):
    reason = text_field(2000, "撤销理由", multiline=True)


class BenchmarkQuery(PageQuery):
    year = Int(validate=YEAR_RANGE)
    county = fields.String(validate=COUNTY)
    include_withdrawn = QueryBool(load_default=False, metadata={"description": "是否包含已撤销的（默认否）"})


class PublicBenchmarkQuery(PageQuery):
    year = Int(validate=YEAR_RANGE, metadata={"description": "年度（不填为所有年度）"})
    county = fields.String(validate=COUNTY)


class PublicBenchmarkOut(Schema):
    id = fields.Integer()
    year = fields.Integer()
    name = fields.String()
    enterprise_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    citation = fields.String()
    designated_on = fields.Date()


class BenchmarkOut(PublicBenchmarkOut):
    uscc = fields.String()
    designated_by = fields.String()
    designated_at = fields.DateTime()
    withdrawn = fields.Boolean()
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_by = fields.String(allow_none=True)
    withdrawal_reason = fields.String(allow_none=True)


class BenchmarkPageOut(PageOut):
    items = fields.List(fields.Nested(BenchmarkOut))


class PublicBenchmarkPageOut(PageOut):
    items = fields.List(fields.Nested(PublicBenchmarkOut))
