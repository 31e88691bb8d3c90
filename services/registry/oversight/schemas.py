"""HTTP schemas of terms (art. 5), replacement recommendations (art. 10) and the overdue
list (documented in the registry's OpenAPI)."""
from marshmallow import Schema, ValidationError, fields, validate

from shared.paging import AliasedPageOut, page_query

from services.registry.domain.oversight import STATUS_NAMES
from services.registry.schema_fields import COUNTY_FILTER, USCC_FILTER, PageQuery

_REQUIRED = {"required": "必填字段缺失", "null": "不能为空（null）"}
_DATE = {"invalid": "不是有效的日期（应为 YYYY-MM-DD）"}


def _text(max_length: int, name: str) -> list:
    def check(value: str) -> None:
        if "\x00" in value:
            raise ValidationError(f"{name}包含不允许的字符")
    # declarative validators, so that the OpenAPI document shows them (minLength,
    # maxLength, pattern): not blank ("" is Length's to report), at most max_length
    return [validate.Length(min=1, max=max_length, error=f"{name}应为1到{max_length}个字符"),
            validate.Regexp(r"^$|^\s*\S", error=f"{name}不能为空"), check]



# -- recommendations -------------------------------------------------------------------------

class RecommendationIn(Schema):
    uscc = fields.String(required=True, validate=USCC_FILTER, error_messages=_REQUIRED,
                         metadata={"description": "企业统一社会信用代码"})
    incident = fields.String(required=True, validate=_text(2000, "事件"), error_messages=_REQUIRED,
                             metadata={"description": "重大质量安全事件或失职行为（第十条）"})
    incident_on = fields.Date(load_default=None, allow_none=True, error_messages=_DATE,
                              metadata={"description": "事件发生日期"})
    reason = fields.String(required=True, validate=_text(2000, "建议理由"), error_messages=_REQUIRED,
                           metadata={"description": "建议撤换的理由"})


class AnswerIn(Schema):
    text = fields.String(required=True, validate=_text(5000, "答复内容"), error_messages=_REQUIRED,
                         metadata={"description": "企业的答复"})


class ConcludeIn(Schema):
    comment = fields.String(required=True, validate=_text(2000, "说明"), error_messages=_REQUIRED,
                            metadata={"description": "撤回或关闭的理由"})


class RecommendationQuery(PageQuery):
    county = fields.String(validate=COUNTY_FILTER)
    uscc = fields.String(validate=USCC_FILTER)
    status = fields.String(validate=validate.OneOf(
        [*STATUS_NAMES, "open"], error="状态应为 " + "、".join(
            f"{k}（{v}）" for k, v in {**STATUS_NAMES, "open": "未办结"}.items()) + " 之一"))
    as_of = fields.Date(error_messages=_DATE, metadata={"description": "按哪一天判断“未响应”（默认今天）"})


class RecommendationEventOut(Schema):
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    action_name = fields.String()
    text = fields.String(allow_none=True)
    filing_id = fields.String(allow_none=True)


class RecommendationItemOut(Schema):
    """A recommendation as listed."""

    id = fields.Integer()
    uscc = fields.String()
    enterprise_name = fields.String(allow_none=True)
    county = fields.String(metadata={"description": "提出建议时企业所在县（市、区）"})
    county_name = fields.String()
    enterprise_county = fields.String(metadata={"description": "企业现在所在县（市、区）"})
    appointment_id = fields.Integer()
    cqo_name = fields.String()
    incident = fields.String()
    incident_on = fields.Date(allow_none=True)
    reason = fields.String()
    issuer_role = fields.String()
    issuer_county = fields.String(allow_none=True)
    issuer_name = fields.String()
    issued_by = fields.String()
    issued_on = fields.Date()
    issued_at = fields.DateTime()
    respond_by = fields.Date(metadata={"description": "答复期限（默认一个月，非法定期限）"})
    status = fields.String(metadata={"description": "as_of 当日的状态：" + "、".join(
        f"{k}（{v}）" for k, v in STATUS_NAMES.items())})
    status_name = fields.String()
    stored_status = fields.String()
    open = fields.Boolean()
    as_of = fields.Date()
    days_overdue = fields.Integer()
    answer = fields.String(allow_none=True, metadata={"description": "企业最近一次答复"})
    answered_at = fields.DateTime(allow_none=True, metadata={"description": "首次答复时间"})
    answered_by = fields.String(allow_none=True)
    concluded_at = fields.DateTime(allow_none=True)
    concluded_by = fields.String(allow_none=True)
    conclusion = fields.String(allow_none=True)
    closed_by_filing_id = fields.String(allow_none=True)
    updated_at = fields.DateTime()


class RecommendationOut(RecommendationItemOut):
    """A recommendation with its history."""

    events = fields.List(fields.Nested(RecommendationEventOut))


class RecommendationPageOut(AliasedPageOut):
    items = fields.List(fields.Nested(RecommendationItemOut))
    as_of = fields.Date()


# -- terms -------------------------------------------------------------------------------------

class TermQuery(PageQuery):
    county = fields.String(validate=COUNTY_FILTER)
    uscc = fields.String(validate=USCC_FILTER)
    status = fields.String(validate=validate.OneOf(
        ["expiring", "lapsed"], error="状态应为 expiring（即将届满）或 lapsed（已届满未续任）"))
    within_days = fields.Integer(load_default=90, validate=validate.Range(
        min=0, max=3650, error="天数应在0到3650之间"))
    as_of = fields.Date(error_messages=_DATE)


class TermOut(Schema):
    appointment_id = fields.Integer()
    uscc = fields.String()
    enterprise_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    cqo_name = fields.String()
    appointed_on = fields.Date()
    term_end = fields.Date()
    days_left = fields.Integer(metadata={"description": "距任期届满的天数（已届满为负数）"})
    status = fields.String()
    status_name = fields.String()
    lapsed_on = fields.Date(allow_none=True, metadata={"description": "登记为届满的日期（届满次日）"})
    reminders = fields.List(fields.Integer(), metadata={"description": "已发出的届满提醒（提前天数）"})


class TermPageOut(AliasedPageOut):
    as_of = fields.Date()
    items = fields.List(fields.Nested(TermOut))


class TermCheckOut(Schema):
    as_of = fields.String()
    candidates = fields.Integer()
    lapsed = fields.Integer()
    reminders = fields.Dict(keys=fields.String(), values=fields.Integer())


# -- overdue list --------------------------------------------------------------------------------

OVERDUE_KINDS = {"late_change": "变更逾期报送", "recommendation_unanswered": "撤换建议未响应",
                 "lapsed_term": "任期届满未续任"}


class OverdueQuery(page_query(default=200, maximum=1000, alias=True)):
    county = fields.String(validate=COUNTY_FILTER)
    as_of = fields.Date(error_messages=_DATE, metadata={"description": "统计截止日（默认今天）"})
    kind = fields.String(validate=validate.OneOf(list(OVERDUE_KINDS), error="类型应为 " + "、".join(
        f"{k}（{v}）" for k, v in OVERDUE_KINDS.items()) + " 之一"))


class OverdueCountsOut(Schema):
    county = fields.String()
    county_name = fields.String()
    late_changes = fields.Integer(metadata={"description": "变更逾期报送（第十四条）"})
    recommendations_open = fields.Integer(metadata={"description": "撤换建议未办结"})
    recommendations_unanswered = fields.Integer(metadata={"description": "撤换建议未响应"})
    lapsed_terms = fields.Integer(metadata={"description": "任期届满未续任（第五条）"})
    total = fields.Integer(metadata={"description": "逾期事项合计（不含未办结但未逾期的建议）"})


class OverdueItemOut(Schema):
    kind = fields.String()
    kind_name = fields.String()
    county = fields.String()
    county_name = fields.String()
    uscc = fields.String()
    enterprise_name = fields.String(allow_none=True)
    cqo_name = fields.String(allow_none=True)
    since = fields.Date(metadata={"description": "逾期起算日：报送期限、答复期限或任期届满日"})
    days_overdue = fields.Integer()
    detail = fields.String()
    filing_id = fields.String(allow_none=True)
    recommendation_id = fields.Integer(allow_none=True)
    appointment_id = fields.Integer(allow_none=True)


class OverdueOut(AliasedPageOut):
    as_of = fields.Date()
    counties = fields.List(fields.Nested(OverdueCountsOut))
    items = fields.List(fields.Nested(OverdueItemOut))
