"""HTTP schemas of the yearly campaign and its progress per county (art. 13), with the Chinese column names officers read."""

from marshmallow import Schema, fields, validate
from shared.schema_fields import YEAR
from services.registry.campaigns import progress
from services.registry.schema_fields import count_field, rate_field


# the `<year>` of campaign routes: CampaignIn's years; any other has no campaign (404)
CAMPAIGN_YEAR = "int(min=2000, max=2100)"


class CampaignIn(Schema):
    year = fields.Integer(required=True, validate=YEAR)
    notice_number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    notice_text = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    opens_on = fields.Date(required=True)
    closes_on = fields.Date(required=True)


class CampaignOut(Schema):
    year = fields.Integer()
    notice_number = fields.String()
    title = fields.String()
    notice_text = fields.String()
    opens_on = fields.Date()
    closes_on = fields.Date()
    status = fields.String()
    opened_by = fields.String()
    created_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)


COMPLETION_ON = ("完成率统计日：集中备案截止日（市局提前结束的，为结束之日），尚未截止的为统计日期；"
                  "该年度没有集中备案时为 null")


_P = progress.COLUMNS


class ProgressRowOut(Schema):
    county = fields.String(metadata={"description": _P["county"]})
    county_name = fields.String(metadata={"description": _P["county_name"]})
    roster_size = count_field("roster_size", _P)
    covered = count_field("covered", _P)
    coverage_rate = rate_field("coverage_rate", _P)
    active_cqo = count_field("active_cqo", _P)
    filed = count_field("filed", _P)
    completed = count_field("completed", _P)
    completed_in_campaign = count_field("completed_in_campaign", _P)
    completed_already = count_field("completed_already", _P)
    completion_rate = rate_field("completion_rate", _P)
    filed_off_roster = count_field("filed_off_roster", _P)
    pending = count_field("pending", _P)
    submitted = count_field("submitted", _P)
    approved = count_field("approved", _P)
    returned = count_field("returned", _P)
    forwarded = count_field("forwarded", _P)
    waiting = count_field("waiting", _P)
    rejected = count_field("rejected", _P)
    reported_at = fields.DateTime(allow_none=True, metadata={
        "description": _P["reported_at"] + "（县局未报送进度时为 null）"})


class ProgressTotalOut(ProgressRowOut):
    county = fields.String(dump_default="")
    county_name = fields.String(dump_default="全市合计")
    counties = fields.Integer(metadata={"description": "县（市、区）数"})
    counties_reported = fields.Integer(metadata={"description": "已报送进度的县（市、区）数"})


class CampaignBriefOut(Schema):
    year = fields.Integer(metadata={"description": "年度"})
    notice_number = fields.String(metadata={"description": "通告文号"})
    title = fields.String(metadata={"description": "通告标题"})
    status = fields.String(metadata={"description": "状态：open 进行中，closed 已结束"})
    opens_on = fields.Date(metadata={"description": "开始日期"})
    closes_on = fields.Date(metadata={"description": "截止日期"})


class CampaignProgressOut(Schema):
    year = fields.Integer(metadata={"description": "年度"})
    as_of = fields.Date(metadata={"description": "统计日期"})
    completion_on = fields.Date(allow_none=True, metadata={"description": COMPLETION_ON})
    campaign = fields.Nested(CampaignBriefOut)
    columns = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "各列的中文名称"})
    counties = fields.List(fields.Nested(ProgressRowOut),
                           metadata={"description": "各县（市、区）一行；县级监管人员只看到本县"})
    total = fields.Nested(ProgressTotalOut, metadata={"description": "合计"})
