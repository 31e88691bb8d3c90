"""Message contracts between the county filing services and the city registry.

These marshmallow schemas are the wire format of the message topology
(docs/architecture.md): the county
dumps with them, the registry re-validates with them (a message is input too), and
the county checks the decisions it receives. ID numbers never travel in clear: only
`id_hmac` (matching), `id_sealed` (for the registry's eyes) and `id_masked`.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.validators.divisions import Jurisdiction
from shared.validators.uscc import validate_uscc
from shared.errors import CqoError
from shared.messaging import topology

FILING_KINDS = {
    "establishment": "岗位设立",
    "change": "变更",
    "renewal": "续任",
    "update": "信息更新",
    "end": "岗位撤销",
}
CHANNELS = {"proactive": "主动备案", "campaign": "集中报送"}
CATEGORIES = {
    "industrial_above_scale": "规模以上工业企业",
    "service_above_scale": "规模以上服务业企业",
    "other": "其他企业",
}
OUTCOMES = {"accepted": "备案通过", "rejected": "不予备案", "waiting": "等待前序备案",
            # the county's withdrawal request reached the city while the filing waited
            "withdrawn": "已撤回"}
# kinds that carry the date the change took effect (art. 14)
EFFECTIVE_DATE_KINDS = frozenset({"change", "end"})

# the names are declared once, in the topology
FILINGS_EXCHANGE = topology.FILINGS.name
DECISIONS_EXCHANGE = topology.DECISIONS.name
NOTICES_EXCHANGE = topology.NOTICES.name
DEAD_EXCHANGE = topology.DEAD.name


def filing_routing_key(county: str, kind: str) -> str:
    return f"filing.{county}.{kind}"


def decision_routing_key(county: str) -> str:
    return f"decision.{county}"


def _uscc(value: str) -> None:
    try:
        validate_uscc(value)
    except CqoError as exc:
        raise ValidationError(exc.message) from exc


_jurisdiction: Jurisdiction | None = None


def use_jurisdiction(jurisdiction: Jurisdiction) -> None:
    """Set the deployment's jurisdiction (a service does this at start from config)."""
    global _jurisdiction
    _jurisdiction = jurisdiction


def jurisdiction() -> Jurisdiction:
    global _jurisdiction
    if _jurisdiction is None:
        _jurisdiction = Jurisdiction.default()
    return _jurisdiction


def county_name(code: str) -> str:
    """The county's name in the jurisdiction, for display."""
    try:
        return jurisdiction().name(code)
    except CqoError:  # a county since removed from the jurisdiction keeps its code
        return code


def _county(value: str) -> None:
    try:
        jurisdiction().validate(value)
    except CqoError as exc:
        raise ValidationError(exc.message) from exc


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class EnterpriseSchema(_Strict):
    uscc = fields.String(required=True, validate=_uscc)
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    county = fields.String(required=True, validate=_county)
    category = fields.String(required=True, validate=validate.OneOf(list(CATEGORIES)))


class FindingSchema(_Strict):
    code = fields.String(required=True)
    article = fields.String(required=True)
    message = fields.String(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(["blocking", "warning"]))


class CqoOnWireSchema(_Strict):
    """The CQO as it travels: no clear ID number."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    id_type = fields.String(required=True)
    id_hmac = fields.String(required=True, validate=validate.Length(equal=64))
    id_sealed = fields.String(required=True)
    id_masked = fields.String(required=True)
    phone = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    position = fields.String(required=True)
    is_decision_level = fields.Boolean(required=True)
    education_level = fields.String(load_default=None, allow_none=True)
    title_level = fields.String(load_default=None, allow_none=True)
    years_quality_work = fields.Float(required=True, validate=validate.Range(min=0, max=80))
    training_certificate = fields.String(load_default=None, allow_none=True)
    attests_law_knowledge = fields.Boolean(required=True)
    attests_organisational_ability = fields.Boolean(required=True)


class AppointmentSchema(_Strict):
    appointed_by = fields.String(required=True)
    appointed_by_top_manager = fields.Boolean(required=True)
    appointed_on = fields.Date(required=True)
    letter_number = fields.String(required=True)
    letter_date = fields.Date(required=True)
    letter_sha256 = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    term_end = fields.Date(required=True)


class FilingMessageSchema(_Strict):
    """One filing version, forwarded from a county to the city."""

    filing_id = fields.UUID(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    county = fields.String(required=True, validate=_county)
    kind = fields.String(required=True, validate=validate.OneOf(list(FILING_KINDS)))
    channel = fields.String(required=True, validate=validate.OneOf(list(CHANNELS)))
    campaign_year = fields.Integer(load_default=None, allow_none=True)
    submitted_to_county_on = fields.Date(required=True)
    approved_on = fields.Date(required=True)
    approved_by = fields.String(required=True)
    enterprise = fields.Nested(EnterpriseSchema, required=True)
    cqo = fields.Nested(CqoOnWireSchema, required=True)
    appointment = fields.Nested(AppointmentSchema, required=True)
    effective_on = fields.Date(load_default=None, allow_none=True)
    end_reason = fields.String(load_default=None, allow_none=True)
    findings = fields.List(fields.Nested(FindingSchema), load_default=list)

    @validates_schema
    def _effective_date(self, data, **kwargs):
        if data.get("kind") in EFFECTIVE_DATE_KINDS and not data.get("effective_on"):
            raise ValidationError("变更或撤销备案必须填写生效日期", "effective_on")
        if data.get("enterprise") and data["enterprise"]["county"] != data.get("county"):
            raise ValidationError("企业所属县区与报送县区不一致", "county")


class FilingBatchSchema(_Strict):
    """A chunk of a county's batch submission (集中报送): many filings, one message."""

    batch_id = fields.UUID(required=True)
    county = fields.String(required=True, validate=_county)
    chunk = fields.Integer(required=True, validate=validate.Range(min=1))
    chunks = fields.Integer(required=True, validate=validate.Range(min=1))
    # filings are validated one by one by the consumer, so one bad filing does not
    # sink its whole chunk
    filings = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=1000))


class ReasonSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    code = fields.String(required=True)
    message = fields.String(required=True)


class DecisionSchema(Schema):
    """The city's decision on one filing version, sent back to its county."""

    class Meta:
        unknown = EXCLUDE  # the city may add fields; older counties ignore them

    filing_id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    county = fields.String(required=True)
    uscc = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(list(OUTCOMES)))
    reasons = fields.List(fields.Nested(ReasonSchema), load_default=list)
    findings = fields.List(fields.Nested(FindingSchema), load_default=list)
    late = fields.Boolean(load_default=False)
    days_late = fields.Integer(load_default=0)
    deadline = fields.Date(load_default=None, allow_none=True)
    decided_at = fields.DateTime(required=True)


class DecisionBatchSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    county = fields.String(required=True)
    decisions = fields.List(fields.Nested(DecisionSchema), required=True)


# -- campaign progress (art. 13): a county's own counts, pushed to the city ---------------

PROGRESS_TYPE = "campaign.progress"
PROGRESS_ROUTING_KIND = "progress"
# statuses of the county's campaign filings every snapshot carries (more may follow)
PROGRESS_COUNTS = ("submitted", "returned", "approved", "forwarded", "accepted", "rejected")


def progress_routing_key(county: str) -> str:
    """filing.<county>.progress: the intake binding filing.*.* takes it to the city."""
    return filing_routing_key(county, PROGRESS_ROUTING_KIND)


def progress_message_id(county: str, year: int, n: int) -> str:
    return f"progress:{county}:{year}:{n}"


class CampaignProgressSchema(Schema):
    """One county's counts of its campaign filings by status, as of a moment."""

    class Meta:
        unknown = EXCLUDE  # a newer county may add fields

    type = fields.String(required=True, validate=validate.Equal(PROGRESS_TYPE))
    county = fields.String(required=True, validate=_county)
    year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2999))
    as_of = fields.AwareDateTime(required=True)
    counts = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=32)),
                         values=fields.Integer(strict=True, validate=validate.Range(min=0)),
                         required=True)

    @validates_schema
    def _all_counts(self, data, **kwargs):
        missing = [k for k in PROGRESS_COUNTS if k not in data.get("counts", {})]
        if missing:
            raise ValidationError("进度快照缺少以下状态的数量：" + "、".join(missing), "counts")


# -- withdrawal of a filing waiting at the city (issue 8) ------------------------------------

WITHDRAWAL_TYPE = "filing.withdraw"
WITHDRAWAL_ROUTING_KIND = "withdraw"
assert WITHDRAWAL_ROUTING_KIND not in FILING_KINDS


def withdrawal_routing_key(county: str) -> str:
    """filing.<county>.withdraw: the intake binding filing.*.* takes it to the city."""
    return filing_routing_key(county, WITHDRAWAL_ROUTING_KIND)


def withdrawal_message_id(filing_id: str, version: int) -> str:
    """One request per filing version: a repeated request is the same message."""
    return f"withdraw:{filing_id}:v{version}"


class WithdrawalRequestSchema(Schema):
    """A county asks the city to withdraw one filing version that waits there for its
    predecessor. The city answers on the decisions path: outcome "withdrawn", or the
    decision it had already made."""

    class Meta:
        unknown = EXCLUDE  # a newer county may add fields

    type = fields.String(required=True, validate=validate.Equal(WITHDRAWAL_TYPE))
    filing_id = fields.UUID(required=True)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
    county = fields.String(required=True, validate=_county)
    uscc = fields.String(required=True, validate=_uscc)
    requested_at = fields.AwareDateTime(required=True)
    requested_by = fields.String(required=True, validate=validate.Length(min=1, max=200))
