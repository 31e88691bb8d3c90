"""HTTP schemas of the roster and of coverage (art. 4), documented in the registry's OpenAPI."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.file_import import ImportCountsOut
from shared.paging import AliasedPageOut

from services.registry.roster import coverage, layout
from services.registry.schema_fields import COUNTY_FILTER, USCC_FILTER, PageQuery


# --- schemas ---------------------------------------------------------------------------------
class RosterImportQuery(Schema):
    year = fields.Integer(validate=validate.Range(min=layout.MIN_YEAR, max=layout.MAX_YEAR,
                                                  error="年度应在2000到2100之间"),
                          metadata={"description": "文件中没有年度列（或某行年度为空）时使用的年度；"
                                                   "指定后，年度与之不同的行被拒绝"})
    filename = fields.String(validate=validate.Length(max=300),
                             metadata={"description": "原始文件名（请求体直接上传文件时）"})


class RejectedRowOut(Schema):
    line = fields.Integer(metadata={"description": "行号（与在 Excel 中打开时的行号一致）"})
    uscc = fields.String()
    name = fields.String()
    reasons = fields.List(fields.String())


class RosterImportOut(ImportCountsOut):
    import_id = fields.Integer()
    years = fields.List(fields.Integer())
    rejected_rows = fields.List(fields.Nested(RejectedRowOut))


class RosterQuery(PageQuery):
    year = fields.Integer(required=True, validate=validate.Range(
        min=layout.MIN_YEAR, max=layout.MAX_YEAR, error="年度应在2000到2100之间"))
    county = fields.String(validate=COUNTY_FILTER)
    category = fields.String(validate=validate.OneOf(list(layout.ROSTER_CATEGORIES), error="企业类别无效"))
    uscc = fields.String(validate=USCC_FILTER)


class RosterEntryOut(Schema):
    year = fields.Integer()
    uscc = fields.String()
    name = fields.String()
    county = fields.String()
    county_name = fields.String()
    category = fields.String()
    category_name = fields.String()
    contact_person = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class RosterPageOut(AliasedPageOut):
    items = fields.List(fields.Nested(RosterEntryOut))


class RosterImportRecordOut(Schema):
    import_id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    source = fields.String()
    sha256 = fields.String()
    format = fields.String()
    encoding = fields.String(allow_none=True)
    years = fields.List(fields.Integer())
    total_rows = fields.Integer()
    accepted = fields.Integer()
    inserted = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()


class CoverageQuery(PageQuery):
    year = fields.Integer(required=True, validate=validate.Range(
        min=layout.MIN_YEAR, max=layout.MAX_YEAR, error="年度应在2000到2100之间"))
    county = fields.String(validate=COUNTY_FILTER)
    category = fields.String(validate=validate.OneOf(list(layout.ROSTER_CATEGORIES), error="企业类别无效"))
    as_of = fields.Date(metadata={"description": "统计日期（默认今天，北京时间）"})
    reason = fields.String(validate=validate.OneOf(list(coverage.REASONS), error="未覆盖原因无效"),
                           metadata={"description": "只列出该原因的未覆盖企业"})


class CoverageExportQuery(Schema):
    year = fields.Integer(required=True, validate=validate.Range(
        min=layout.MIN_YEAR, max=layout.MAX_YEAR, error="年度应在2000到2100之间"))
    format = fields.String(load_default="xlsx", validate=validate.OneOf(
        ["csv", "xlsx"], error="导出格式应为 csv 或 xlsx"))
    table = fields.String(load_default="summary", validate=validate.OneOf(
        ["summary", "uncovered"], error="导出内容应为 summary（覆盖率汇总）或 uncovered（未覆盖企业）"),
        metadata={"description": "CSV 只含一张表：summary 或 uncovered；XLSX 两张表都有"})
    county = fields.String(validate=COUNTY_FILTER)
    as_of = fields.Date()


class CountsOut(Schema):
    roster_size = fields.Integer(metadata={"description": "规上企业名录数"})
    covered = fields.Integer(metadata={"description": "有在任已备案首席质量官的企业数"})
    uncovered = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "覆盖率（0到1，名录为空时为 null）"})
    never_filed = fields.Integer(metadata={"description": "从未备案"})
    lapsed = fields.Integer(metadata={"description": "任期届满未续任"})
    ended = fields.Integer(metadata={"description": "已撤销/离任"})


class CategoryCountsOut(CountsOut):
    category = fields.String()
    category_name = fields.String()


class CountyCoverageOut(CountsOut):
    county = fields.String()
    county_name = fields.String()
    by_category = fields.Dict(keys=fields.String(), values=fields.Nested(CountsOut))


class UncoveredOut(Schema):
    uscc = fields.String()
    name = fields.String()
    county = fields.String()
    county_name = fields.String()
    category = fields.String()
    category_name = fields.String()
    reason = fields.String()
    reason_name = fields.String()
    last_cqo_name = fields.String(allow_none=True)
    last_term_end = fields.Date(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    end_reason = fields.String(allow_none=True)
    contact_person = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class UncoveredPageOut(AliasedPageOut):
    items = fields.List(fields.Nested(UncoveredOut))


class CoverageOut(Schema):
    year = fields.Integer()
    as_of = fields.Date()
    lapsed_counts_as_coverage = fields.Boolean()
    scope = fields.Dict()
    total = fields.Nested(CountsOut)
    by_category = fields.List(fields.Nested(CategoryCountsOut))
    counties = fields.List(fields.Nested(CountyCoverageOut))
    uncovered = fields.Nested(UncoveredPageOut)
