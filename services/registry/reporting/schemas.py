"""HTTP schemas of campaign progress and the annual assessment (documented in OpenAPI,
with the Chinese column names officers read)."""

from marshmallow import Schema, fields, validate

from services.registry.reporting import columns
from services.registry.schema_fields import count_field, rate_field
from services.registry.campaigns.schemas import CampaignBriefOut, COMPLETION_ON
import json


class AssessmentQuery(Schema):
    year = fields.Integer(required=True, strict=False,
                          validate=validate.Range(min=2000, max=2999, error="年度应在2000至2999之间"),
                          metadata={"description": "考核年度"})


_A = {key: header for key, header, _ in columns.COLUMNS}
_A.update({key: label for key, label, _ in columns.COUNTY_INDICATORS})


class LateChangeOut(Schema):
    filing_id = fields.String(metadata={"description": "备案编号"})
    version = fields.Integer(metadata={"description": "版本"})
    uscc = fields.String(metadata={"description": "统一社会信用代码"})
    enterprise_name = fields.String(metadata={"description": "企业名称"})
    kind = fields.String(metadata={"description": "备案类型"})
    kind_name = fields.String(metadata={"description": "备案类型名称"})
    submitted_to_county_on = fields.Date(metadata={"description": "首次报告县局日期"})
    deadline = fields.Date(allow_none=True, metadata={"description": "应报告截止日期"})
    days_late = fields.Integer(metadata={"description": "逾期天数"})


class AssessmentRowOut(Schema):
    county = fields.String(metadata={"description": _A["county"]})
    county_name = fields.String(metadata={"description": _A["county_name"]})
    roster_size = count_field("roster_size", _A)
    covered = count_field("covered", _A)
    coverage_rate = rate_field("coverage_rate", _A)
    active_cqo = count_field("active_cqo", _A)
    filed = count_field("filed", _A)
    completed = count_field("completed", _A)
    completed_in_campaign = count_field("completed_in_campaign", _A)
    completed_already = count_field("completed_already", _A)
    completion_rate = rate_field("completion_rate", _A)
    filed_off_roster = count_field("filed_off_roster", _A)
    pending = count_field("pending", _A)
    submitted = count_field("submitted", _A)
    approved = count_field("approved", _A)
    returned = count_field("returned", _A)
    forwarded = count_field("forwarded", _A)
    waiting = count_field("waiting", _A)
    rejected = count_field("rejected", _A)
    late_changes = count_field("late_changes", _A)
    recommendations_open = fields.Integer(allow_none=True, metadata={"description": _A["recommendations_open"]})
    recommendations_unanswered = fields.Integer(allow_none=True, metadata={
        "description": _A["recommendations_unanswered"]})
    lapsed_terms = fields.Integer(allow_none=True, metadata={"description": _A["lapsed_terms"]})
    training_courses = fields.Integer(allow_none=True, metadata={
        "description": _A["training_courses"] + "（人才服务未应答时为 null）"})
    training_attendees = fields.Integer(allow_none=True, metadata={
        "description": _A["training_attendees"] + "（人才服务未应答时为 null）"})
    training_passed = fields.Integer(allow_none=True, metadata={
        "description": _A["training_passed"] + "（人才服务未应答时为 null）"})
    training = fields.String(metadata={"description": "培训数据是否纳入（人才服务未应答时说明暂缺）"})
    reported_at = fields.DateTime(allow_none=True, metadata={"description": "县局进度数据截至"})
    late_change_filings = fields.List(fields.Nested(LateChangeOut),
                                      metadata={"description": "逾期变更备案明细"})


class AssessmentTotalOut(AssessmentRowOut):
    counties = fields.Integer(metadata={"description": "县（市、区）数"})
    counties_reported = fields.Integer(metadata={"description": "已报送进度的县（市、区）数"})


class AssessmentOut(Schema):
    title = fields.String(metadata={"description": "标题"})
    year = fields.Integer(metadata={"description": "考核年度"})
    as_of = fields.Date(metadata={"description": "统计截至日期（当年为今天，往年为12月31日）"})
    completion_on = fields.Date(allow_none=True, metadata={"description": COMPLETION_ON})
    generated_at = fields.DateTime(metadata={"description": "生成时间"})
    campaign = fields.Nested(CampaignBriefOut, allow_none=True,
                             metadata={"description": "该年度的集中备案（未发布时为 null）"})
    columns = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "汇总表各列的中文名称"})
    counties = fields.List(fields.Nested(AssessmentRowOut), metadata={"description": "各县（市、区）"})
    total = fields.Nested(AssessmentTotalOut, metadata={"description": "全市合计"})
    notes = fields.List(fields.String(), metadata={"description": "说明（含培训完成情况的纳入说明）"})


def to_json(report: dict) -> str:
    """The report as GET /reports/assessment answers it."""
    from services.registry.reporting.schemas import AssessmentOut# it documents this module

    return json.dumps(AssessmentOut().dump(report), ensure_ascii=False, indent=2)
