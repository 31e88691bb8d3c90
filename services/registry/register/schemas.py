"""HTTP schemas of the registry (documented in its OpenAPI)."""

from marshmallow import Schema, fields, validate

from shared.contracts import CHANNELS, FILING_KINDS, OUTCOMES
from shared.paging import AliasedPageOut
from shared.validators.uscc import PATTERN as USCC_PATTERN
from services.registry.schema_fields import CATEGORY_FILTER, COUNTY_FILTER, PageQuery, USCC_FILTER


EXAMPLE_USCC = "91130921MA0CQ00188"  # a valid code (check characters included)


class UsccPath(Schema):
    """The `{uscc}` of /enterprises/{uscc}... (checked by validate_uscc: 422 USCC_*)."""

    uscc = fields.String(required=True, validate=validate.Regexp(USCC_PATTERN), metadata={
        "description": "统一社会信用代码（18位，数字和大写字母，含校验位）",
        "example": EXAMPLE_USCC})


class AppointmentOut(Schema):
    id = fields.Integer()
    cqo_name = fields.String()
    id_type = fields.String()
    id_masked = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    position = fields.String()
    is_decision_level = fields.Boolean()
    education_level = fields.String(allow_none=True)
    title_level = fields.String(allow_none=True)
    years_quality_work = fields.Float()
    training_certificate = fields.String(allow_none=True)
    appointed_by = fields.String()
    appointed_by_top_manager = fields.Boolean()
    appointed_on = fields.Date()
    letter_number = fields.String()
    letter_date = fields.Date()
    term_end = fields.Date()
    ended_on = fields.Date(allow_none=True)
    end_reason = fields.String(allow_none=True)
    filing_id = fields.String()


class LedgerEntryOut(Schema):
    filing_id = fields.String()
    version = fields.Integer()
    kind = fields.String()
    kind_name = fields.String()
    channel = fields.String()
    campaign_year = fields.Integer(allow_none=True)
    county = fields.String()
    uscc = fields.String()
    submitted_to_county_on = fields.Date()
    received_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    outcome = fields.String()
    outcome_name = fields.String()
    reasons = fields.List(fields.Dict())
    findings = fields.List(fields.Dict())
    late = fields.Boolean()
    days_late = fields.Integer()


class EnterpriseOut(Schema):
    uscc = fields.String()
    name = fields.String()
    county = fields.String()
    county_name = fields.String()
    category = fields.String()
    current_cqo = fields.Nested(AppointmentOut, allow_none=True)
    history = fields.List(fields.Nested(AppointmentOut))
    filings = fields.List(fields.Nested(LedgerEntryOut))


class AwardCheckQuery(Schema):
    on = fields.Date(error_messages={"invalid": "不是有效的日期（应为 YYYY-MM-DD）"}, metadata={
        "description": "核查日期 YYYY-MM-DD（默认今天，北京时间）"})


class AwardCheckOut(Schema):
    uscc = fields.String()
    name = fields.String()
    on = fields.Date(metadata={"description": "核查日期"})
    has_active_cqo = fields.Boolean(metadata={
        "description": "核查日期当天有在任的已备案首席质量官（已任命、未离任，且任期未届满；"
                       "任期届满未续任的是否计入见 lapsed_counts_as_coverage）"})
    since = fields.Date(allow_none=True, metadata={
        "description": "截至核查日期连续有在任首席质量官的起始日期（无间断的续任、变更不中断）；没有时为 null"})
    cqo_name = fields.String(allow_none=True, metadata={"description": "核查日期当天在任的首席质量官"})
    term_end = fields.Date(allow_none=True, metadata={"description": "其任期届满日期"})
    lapsed_counts_as_coverage = fields.Boolean(metadata={
        "description": "本地政策：任期届满未续任的是否仍计为在任（LAPSED_COUNTS_AS_COVERAGE）"})
    message = fields.String()


class LedgerQuery(PageQuery):
    county = fields.String(validate=COUNTY_FILTER)
    uscc = fields.String(validate=USCC_FILTER)
    kind = fields.String(validate=validate.OneOf(list(FILING_KINDS), error="备案类型无效"))
    channel = fields.String(validate=validate.OneOf(list(CHANNELS), error="报送方式无效"))
    outcome = fields.String(validate=validate.OneOf(list(OUTCOMES), error="决定结果无效"))
    category = fields.String(validate=CATEGORY_FILTER)
    late = fields.Boolean()
    received_from = fields.Date()
    received_to = fields.Date()


class LedgerPageOut(AliasedPageOut):
    items = fields.List(fields.Nested(LedgerEntryOut))
