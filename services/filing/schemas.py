"""HTTP request and response schemas of the county filing service.

Input is strict: unknown fields, strings where numbers belong and "yes" for a boolean
are refused (a clerk's mistake must not turn into a wrong filing), and every message
is Chinese (the field types are in fields.py). Responses go through the *Out schemas,
which also document the API.
"""
from __future__ import annotations

from datetime import date

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from shared import clock
from shared.contracts import CATEGORIES, CHANNELS, FILING_KINDS, OUTCOMES
from shared.domain.qualification import EDUCATION_LEVELS, TITLE_LEVELS
from shared.errors import CqoError
from shared.paging import PageOut, page_query
from shared.validators import ID_TYPE_NAMES, validate_person_id, validate_uscc
from shared.validators.uscc import PATTERN as USCC_PATTERN

from services.filing import domain, notices
from services.filing.fields import (BASE_MESSAGES, PHONE, Bool, Choice, CommaList, Day, Identifier,
                                    Int, Items, Moment, Number, Obj, QueryBool, QueryDay, QueryInt,
                                    StrictSchema, Text, between, check_county, check_phone,
                                    check_uscc, count_limit)

MAX_PAGE_SIZE = 200
MAX_BATCH_IDS = 20_000

# -- intake ----------------------------------------------------------------------------------

class EnterpriseIn(StrictSchema):
    uscc = Text(required=True, max_length=40, validate=check_uscc,
                metadata={"description": "统一社会信用代码（18位）", "pattern": USCC_PATTERN})
    name = Text(required=True, max_length=200, validate=validate.Length(
        min=2, error="企业名称至少 2 个字符"), metadata={"description": "企业名称"})
    county = Text(required=True, max_length=20, validate=check_county,
                  metadata={"description": "企业所在县（市、区）代码（GB/T 2260，6位）",
                            "pattern": r"^[0-9]{6}$"})
    category = Choice(CATEGORIES, required=True, metadata={"description": "企业类别"})

    @post_load
    def _normalise(self, data, **kwargs):
        data["uscc"] = validate_uscc(data["uscc"])  # NFKC (full-width input), upper case
        return data


class CqoIn(StrictSchema):
    name = Text(required=True, max_length=100, metadata={"description": "首席质量官姓名"})
    id_type = Choice(ID_TYPE_NAMES, required=True, metadata={"description": "证件类型"})
    id_number = Text(required=True, max_length=40, load_only=True,
                     metadata={"description": "证件号码（仅在本县加密保存，不向外传输明文）"})
    phone = Text(required=True, max_length=30, validate=check_phone,
                 metadata={"description": "联系电话", "pattern": PHONE.pattern})
    email = fields.Email(load_default=None, allow_none=True,
                         error_messages={**BASE_MESSAGES, "invalid": "不是有效的电子邮箱地址"},
                         validate=[validate.Length(max=200, error="长度不能超过 200 个字符"),
                                   validate.Regexp(r"^[^\x00-\x1f\x7f\ud800-\udfff]*$",
                                                   error="包含不允许的控制字符或无效字符")])
    position = Text(required=True, max_length=100, metadata={"description": "职务"})
    is_decision_level = Bool(required=True, metadata={"description": "是否进入企业决策层（第五条）"})
    education_level = Choice(EDUCATION_LEVELS, required=True, metadata={"description": "学历"})
    title_level = Choice(TITLE_LEVELS, required=True,
                         metadata={"description": "职称级别（无职称填 none）"})
    years_quality_work = Number(required=True, validate=between(0, 80),
                                metadata={"description": "从事质量管理工作年限"})
    training_certificate = Text(load_default=None, allow_none=True, allow_blank=True,
                                max_length=100,
                                metadata={"description": "首席质量官任职培训合格证书编号"})
    attests_law_knowledge = Bool(required=True,
                                 metadata={"description": "企业承诺其熟悉质量相关法律法规（第六条）"})
    attests_organisational_ability = Bool(
        required=True, metadata={"description": "企业承诺其具备组织协调能力（第六条）"})

    @validates_schema(skip_on_field_errors=False)  # report every field at once
    def _id_number(self, data, **kwargs):
        if data.get("id_type") and data.get("id_number"):
            try:
                validate_person_id(data["id_type"], data["id_number"])
            except CqoError as exc:
                raise ValidationError(exc.message, "id_number") from None

    @post_load
    def _normalise(self, data, **kwargs):
        data["id_number"] = validate_person_id(data["id_type"], data["id_number"])
        if data.get("email"):
            data["email"] = data["email"].strip()
        return data


class AppointmentIn(StrictSchema):
    appointed_by = Text(required=True, max_length=100, metadata={"description": "任命人"})
    appointed_by_top_manager = Bool(
        required=True, metadata={"description": "任命人是否为企业最高管理者（法定代表人）"})
    appointed_on = Day(required=True, metadata={"description": "任命日期"})
    letter_number = Text(required=True, max_length=100, metadata={"description": "任命书文号"})
    letter_date = Day(required=True, metadata={"description": "任命书日期"})
    letter_sha256 = Text(load_default=None, allow_none=True, allow_blank=True, max_length=64,
                         validate=validate.Regexp(r"^[0-9a-fA-F]{64}$",
                                                  error="应为64位十六进制的 SHA-256 摘要"),
                         metadata={"description": "任命书文件的 SHA-256（可选）"})
    term_end = Day(load_default=None, allow_none=True,
                   metadata={"description": "任期届满日期（默认任命日期加三年）"})

    @validates_schema(skip_on_field_errors=False)  # report every field at once
    def _dates(self, data, **kwargs):
        errors, now = {}, clock.today()
        for name, label in (("appointed_on", "任命日期"), ("letter_date", "任命书日期")):
            if data.get(name) and data[name] > now:
                errors[name] = [f"{label}不能晚于今天"]
        if data.get("term_end") and data.get("appointed_on") and data["term_end"] <= data["appointed_on"]:
            errors["term_end"] = ["任期届满日期应晚于任命日期"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _defaults(self, data, **kwargs):
        if data.get("term_end") is None:
            data["term_end"] = domain.default_term_end(data["appointed_on"])
        if data.get("letter_sha256"):
            data["letter_sha256"] = data["letter_sha256"].lower()
        return data


class FilingIn(StrictSchema):
    """An enterprise's filing (and the corrected resubmission of a returned one)."""

    kind = Choice(FILING_KINDS, required=True, metadata={"description": "备案类型"})
    enterprise = Obj(EnterpriseIn, required=True)
    cqo = Obj(CqoIn, required=True)
    appointment = Obj(AppointmentIn, required=True)
    effective_on = Day(load_default=None, allow_none=True,
                       metadata={"description": "变更或岗位撤销的生效日期（第十四条）"})
    end_reason = Text(load_default=None, allow_none=True, allow_blank=True, max_length=500,
                      multiline=True,
                      metadata={"description": "岗位撤销原因"})

    @validates_schema(skip_on_field_errors=False)  # report every field at once
    def _kind_fields(self, data, **kwargs):
        kind, errors = data.get("kind"), {}
        if kind in domain.EFFECTIVE_DATE_KINDS:
            if not data.get("effective_on"):
                errors["effective_on"] = ["变更或岗位撤销备案必须填写生效日期"]
            elif data["effective_on"] > clock.today():
                errors["effective_on"] = ["生效日期不能晚于今天：请在变更生效后再备案"]
        elif kind and data.get("effective_on"):
            errors["effective_on"] = ["只有变更或岗位撤销备案填写生效日期"]
        if kind == "end" and not data.get("end_reason"):
            errors["end_reason"] = ["岗位撤销备案必须填写撤销原因"]
        elif kind and kind != "end" and data.get("end_reason"):
            errors["end_reason"] = ["只有岗位撤销备案填写撤销原因"]
        if errors:
            raise ValidationError(errors)


class ReviewIn(StrictSchema):
    decision = Choice(domain.REVIEW_DECISIONS, required=True,
                      metadata={"description": "approve 预审通过，return 退回"})
    comment = Text(load_default=None, allow_none=True, allow_blank=True, max_length=2000,
                   multiline=True,
                   metadata={"description": "预审意见（退回时必填）"})

    @validates_schema
    def _comment(self, data, **kwargs):
        if data.get("decision") == "return" and not data.get("comment"):
            raise ValidationError("退回时必须填写退回理由，告诉企业需要改正什么", "comment")


class BatchIn(StrictSchema):
    filing_ids = Items(Identifier(), load_default=None, allow_none=True,
                       validate=count_limit(1, MAX_BATCH_IDS),
                       metadata={"description": "要报送的备案编号；不填则报送全部“预审通过”的集中报送备案"})
    campaign_year = Int(load_default=None, allow_none=True, strict=True,
                        validate=between(2000, 2100),
                        metadata={"description": "只报送该年度集中报送活动的备案"})

    @post_load
    def _unique(self, data, **kwargs):
        if data.get("filing_ids"):
            data["filing_ids"] = list(dict.fromkeys(str(i) for i in data["filing_ids"]))
        return data


# the county's listings (filings, notices): 50 a page, at most 200
PageQuery = page_query(default=50, maximum=MAX_PAGE_SIZE, integer=QueryInt,
                       range_error="应在 {min} 到 {max} 之间")


class QuerySchema(StrictSchema, PageQuery):
    """A listing's query string: blank parameters are absent, a USCC is normalised, and
    it pages with `page` and `page_size`."""

    error_messages = {"type": "查询参数无效", "unknown": "未知的查询参数"}

    @pre_load
    def _blank_is_absent(self, data, **kwargs):
        return {k: v for k, v in data.items() if v not in ("", None)} if isinstance(data, dict) else data

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("uscc"):
            data["uscc"] = validate_uscc(data["uscc"])
        return data


class FilingQuery(QuerySchema):
    status = CommaList(domain.STATUS_NAMES, metadata={"description": "状态，可用逗号分隔多个"})
    kind = CommaList(FILING_KINDS, metadata={"description": "备案类型，可用逗号分隔多个"})
    channel = Choice(CHANNELS)
    campaign_year = QueryInt(validate=between(2000, 2100))
    category = Choice(CATEGORIES)
    uscc = Text(max_length=40, validate=check_uscc, metadata={"pattern": USCC_PATTERN})
    submitted_from = QueryDay(metadata={"description": "首次提交日期起（含）"})
    submitted_to = QueryDay(metadata={"description": "首次提交日期止（含）"})
    late = QueryBool(metadata={"description": "市局认定逾期的备案"})
    batch_id = fields.UUID(error_messages={**BASE_MESSAGES, "invalid_uuid": "不是有效的批次编号"})

    @validates_schema
    def _range(self, data, **kwargs):
        if (data.get("submitted_from") and data.get("submitted_to")
                and data["submitted_from"] > data["submitted_to"]):
            raise ValidationError("起始日期不能晚于截止日期", "submitted_from")


class NoticeQuery(QuerySchema):
    type = Text(max_length=notices.TYPE_MAX, metadata={
        "description": "通知类型，如 recommendation.issued；以“.”结尾表示该类全部，如 term."})
    uscc = Text(max_length=40, validate=check_uscc, metadata={"description": "企业（县级监管人员）",
                                                              "pattern": USCC_PATTERN})


# -- responses -------------------------------------------------------------------------------

class Out(Schema):
    pass


class FindingOut(Out):
    code = fields.String()
    article = fields.String()
    message = fields.String()
    severity = fields.String(metadata={"enum": ["blocking", "warning"]})


class EnterpriseOut(Out):
    uscc = fields.String()
    name = fields.String()
    county = fields.String()
    category = fields.String()
    category_name = fields.String()


class CqoOut(Out):
    """The CQO as the county shows it: the ID number masked, never in clear."""

    name = fields.String()
    id_type = fields.String()
    id_type_name = fields.String()
    id_masked = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    position = fields.String()
    is_decision_level = fields.Boolean()
    education_level = fields.String()
    title_level = fields.String()
    years_quality_work = fields.Float()
    training_certificate = fields.String(allow_none=True)
    attests_law_knowledge = fields.Boolean()
    attests_organisational_ability = fields.Boolean()


class AppointmentOut(Out):
    appointed_by = fields.String()
    appointed_by_top_manager = fields.Boolean()
    appointed_on = Day()
    letter_number = fields.String()
    letter_date = Day()
    letter_sha256 = fields.String(allow_none=True)
    term_end = Day()


class VersionOut(Out):
    version = fields.Integer()
    submitted_at = Moment()
    submitted_by = fields.String()
    enterprise = fields.Nested(EnterpriseOut)
    cqo = fields.Nested(CqoOut)
    appointment = fields.Nested(AppointmentOut)
    effective_on = Day(allow_none=True)
    end_reason = fields.String(allow_none=True)
    findings = fields.List(fields.Nested(FindingOut))


class ReviewOut(Out):
    version = fields.Integer()
    decision = fields.String()
    decision_name = fields.String()
    comment = fields.String(allow_none=True)
    reviewer = fields.String()
    reviewed_at = Moment()


class ReasonOut(Out):
    code = fields.String()
    message = fields.String()


class DecisionOut(Out):
    version = fields.Integer()
    outcome = fields.String(metadata={"enum": list(OUTCOMES)})
    outcome_name = fields.String()
    reasons = fields.List(fields.Nested(ReasonOut))
    findings = fields.List(fields.Nested(FindingOut), metadata={"description": "市局复核的任职条件结论（以此为准）"})
    late = fields.Boolean()
    days_late = fields.Integer()
    deadline = Day(allow_none=True)
    decided_at = Moment()
    received_at = Moment()
    applied = fields.Boolean(metadata={"description": "是否改变了备案状态（重复或过期版本的决定只记录）"})


class FilingSummaryOut(Out):
    id = fields.String()
    county = fields.String()
    uscc = fields.String()
    enterprise_name = fields.String()
    category = fields.String()
    category_name = fields.String()
    kind = fields.String()
    kind_name = fields.String()
    channel = fields.String()
    channel_name = fields.String()
    campaign_year = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": list(domain.STATUS_NAMES)})
    status_name = fields.String()
    version = fields.Integer()
    cqo_name = fields.String()
    cqo_id_masked = fields.String()
    submitted_to_county_on = Day()
    created_at = Moment()
    updated_at = Moment()
    approved_on = Day(allow_none=True)
    forwarded_at = Moment(allow_none=True)
    batch_id = fields.String(allow_none=True)
    decision_outcome = fields.String(allow_none=True)
    decided_at = Moment(allow_none=True)
    late = fields.Boolean(allow_none=True)
    days_late = fields.Integer(allow_none=True)


class FilingDetailOut(FilingSummaryOut):
    findings = fields.List(fields.Nested(FindingOut), metadata={"description": "当前版本的县级预检结论"})
    current = fields.Nested(VersionOut, metadata={"description": "当前版本的内容"})
    versions = fields.List(fields.Nested(VersionOut))
    reviews = fields.List(fields.Nested(ReviewOut))
    decision = fields.Nested(DecisionOut, allow_none=True, metadata={"description": "市局对当前版本的最新决定"})
    decisions = fields.List(fields.Nested(DecisionOut))


class FilingPageOut(Out, PageOut):
    items = fields.List(fields.Nested(FilingSummaryOut))


class BatchOut(Out):
    batch_id = fields.String()
    county = fields.String()
    count = fields.Integer()
    chunks = fields.Integer()
    chunk_size = fields.Integer()
    campaign_years = fields.List(fields.Integer())
    created_at = Moment()
    created_by = fields.String()


class CampaignOut(Out):
    year = fields.Integer()
    notice_number = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    opens_on = Day()
    closes_on = Day()
    status = fields.String()


class NoticeOut(Out):
    id = fields.Integer()
    type = fields.String()
    type_name = fields.String()
    audience = fields.String()
    audience_name = fields.String()
    uscc = fields.String(allow_none=True)
    enterprise_name = fields.String(allow_none=True)
    title = fields.String()
    message = fields.String(allow_none=True)
    received_at = fields.DateTime()
    data = fields.Dict(metadata={"description": "市局发来的通知原文"})


class NoticePageOut(Out, PageOut):
    items = fields.List(fields.Nested(NoticeOut))


# -- notices from the city (filing.<county>.notices) ----------------------------------------

class _Lenient(Schema):
    class Meta:
        unknown = "exclude"  # the city may add fields; an older county ignores them


class CampaignNoticeBody(_Lenient):
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    notice_number = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=100))
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    text = fields.String(load_default=None, allow_none=True)
    notice_text = fields.String(load_default=None, allow_none=True)  # the registry's name for it
    opens_on = fields.Date(load_default=None, allow_none=True)
    closes_on = fields.Date(load_default=None, allow_none=True)

    @post_load
    def _text(self, data, **kwargs):
        data["text"] = data.pop("notice_text", None) or data.get("text")
        return data


class NoticeSchema(_Lenient):
    type = fields.String(required=True)
    campaign = fields.Nested(CampaignNoticeBody, load_default=None, allow_none=True)

    @validates_schema
    def _campaign(self, data, **kwargs):
        if data.get("type", "").startswith("campaign.") and not data.get("campaign"):
            raise ValidationError("campaign notice without campaign", "campaign")
        if data.get("type") == "campaign.opened":
            campaign = data["campaign"]
            if not campaign.get("opens_on") or not campaign.get("closes_on"):
                raise ValidationError("campaign.opened needs opens_on and closes_on", "campaign")
            if campaign["closes_on"] < campaign["opens_on"]:
                raise ValidationError("campaign closes before it opens", "campaign")


def as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
