"""Domain events on `cqo.events` (docs/events.md): what happened at one service, told to
whoever cares (talent's pool, the registry's certificate read model, notify).

Every event is an envelope, the same for all,

    {"event_id": "<uuid>", "type": "register.appointment.accepted", "source": "registry",
     "occurred_at": "2026-12-02T08:00:00+00:00", "subject": {"kind": "appointment", "id": "42"},
     "data": {...}}

whose `data` has one schema per type, below. The routing key is the type, except for a
county's events, which carry the county: `filing.<county>.returned`. Events leave a
service only through its outbox, in the transaction of the change they announce, with
the event id as the message id (consumers dedupe on it).

A person travels as `id_hmac` (matching) and `id_masked` (display), never as an ID
number: `build` refuses an event in which any text looks like a resident ID number.

Consumers read with `EXCLUDE`: a source may add fields without breaking anyone; a field
is never removed or given another meaning (add a new type instead).
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared import clock
from shared.errors import CqoError
from shared.validators.person_id import gb11643_check_char

USCC = {"validate": validate.Regexp(r"^[0-9A-HJ-NPQRTUWXY]{18}$")}
COUNTY = {"validate": validate.Regexp(r"^[0-9]{6}$")}


class _Data(Schema):
    class Meta:
        unknown = EXCLUDE  # a newer source may add fields


def _hmac():
    return fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))


def _masked():
    return fields.String(required=True, validate=validate.Length(max=40))


class ReasonData(_Data):
    code = fields.String(required=True)
    message = fields.String(required=True)


# -- the register (registry service) --------------------------------------------------------

class _AppointmentFacts(_Data):
    """What every appointment event says of the appointment and its CQO."""

    appointment_id = fields.Integer(required=True)
    uscc = fields.String(required=True, **USCC)
    county = fields.String(required=True, **COUNTY)
    cqo_name = fields.String(required=True)
    id_hmac = _hmac()
    id_masked = _masked()


class AppointmentAccepted(_AppointmentFacts):
    """A CQO appointment entered the register (an accepted establishment, change or
    renewal)."""

    enterprise_name = fields.String(required=True)
    filing_id = fields.String(required=True)
    filing_version = fields.Integer(required=True)
    kind = fields.String(required=True)
    id_type = fields.String(required=True)
    appointed_on = fields.Date(required=True)
    term_end = fields.Date(required=True)
    training_certificate = fields.String(load_default=None, allow_none=True)


class AppointmentEnded(_AppointmentFacts):
    """An appointment ended: replaced by a change, or the post ended."""

    ended_on = fields.Date(required=True)
    reason = fields.String(required=True)
    by_filing_id = fields.String(load_default=None, allow_none=True)


class AppointmentLapsed(_AppointmentFacts):
    """A term ran out without a renewal (art. 5): recorded the day after `term_end`.
    `enterprise_name` came later and is optional to readers."""

    term_end = fields.Date(required=True)
    lapsed_on = fields.Date(required=True)
    enterprise_name = fields.String(load_default=None, allow_none=True)


class AppointmentExpiring(_AppointmentFacts):
    """A term ends within `days` (a reminder threshold, TERM_REMINDER_DAYS: 90 and 30 by
    default) and no renewal is filed: once per appointment and threshold (art. 5)."""

    enterprise_name = fields.String(load_default=None, allow_none=True)
    appointed_on = fields.Date(required=True)
    term_end = fields.Date(required=True)
    days = fields.Integer(required=True)
    days_left = fields.Integer(required=True)


class FilingDecided(_Data):
    """The city decided one filing version (accepted, rejected or withdrawn)."""

    filing_id = fields.String(required=True)
    version = fields.Integer(required=True)
    county = fields.String(required=True)
    uscc = fields.String(required=True)
    enterprise_name = fields.String(load_default=None, allow_none=True)
    kind = fields.String(required=True)
    outcome = fields.String(required=True)
    reasons = fields.List(fields.Nested(ReasonData), load_default=list)
    late = fields.Boolean(load_default=False)
    days_late = fields.Integer(load_default=0)
    appointment_id = fields.Integer(load_default=None, allow_none=True)
    # the enterprise's contact as the filing gave it (its CQO), for the notification
    # service; never an ID number
    contact_name = fields.String(load_default=None, allow_none=True)
    contact_phone = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)


class FilingLate(_Data):
    """An accepted change (or end) was reported after its one-month deadline (art. 14):
    recorded against the enterprise; told beside the decision (`register.filing.late`)."""

    filing_id = fields.String(required=True)
    version = fields.Integer(required=True)
    county = fields.String(required=True, **COUNTY)
    uscc = fields.String(required=True, **USCC)
    enterprise_name = fields.String(load_default=None, allow_none=True)
    kind = fields.String(required=True)
    deadline = fields.Date(required=True)
    submitted_on = fields.Date(required=True)
    days_late = fields.Integer(required=True)
    contact_name = fields.String(load_default=None, allow_none=True)
    contact_phone = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)


class RecommendationIssued(_Data):
    """A replacement recommendation (建议撤换, art. 10) was issued."""

    recommendation_id = fields.Integer(required=True)
    uscc = fields.String(required=True, **USCC)
    county = fields.String(required=True, **COUNTY)
    appointment_id = fields.Integer(required=True)
    cqo_name = fields.String(required=True)
    id_hmac = _hmac()
    issuer_role = fields.String(required=True)
    issuer_county = fields.String(load_default=None, allow_none=True)
    reason = fields.String(required=True)
    issued_on = fields.Date(required=True)
    respond_by = fields.Date(required=True)


class RecommendationUnanswered(RecommendationIssued):
    """A recommendation's response period ended with no answer (未响应, art. 10): once,
    found by the oversight timer the day after `respond_by`. The issue's facts, and:"""

    enterprise_name = fields.String(load_default=None, allow_none=True)
    days_overdue = fields.Integer(required=True)


class RecommendationClosed(_Data):
    """A recommendation ended: withdrawn, closed by its issuer, or a change replaced the
    CQO (`status`: withdrawn | closed | replaced)."""

    recommendation_id = fields.Integer(required=True)
    uscc = fields.String(required=True, **USCC)
    county = fields.String(required=True, **COUNTY)
    appointment_id = fields.Integer(required=True)
    id_hmac = _hmac()
    status = fields.String(required=True, validate=validate.OneOf(["withdrawn", "closed", "replaced"]))


class _CampaignFacts(_Data):
    """What every campaign event says of the yearly campaign (集中备案, art. 13)."""

    year = fields.Integer(required=True)
    title = fields.String(required=True)
    notice_number = fields.String(required=True)
    opens_on = fields.Date(required=True)
    closes_on = fields.Date(required=True)


class CampaignAnnounced(_CampaignFacts):
    """The campaign opened (`register.campaign.opened`), or closes within 7 days
    (`register.campaign.closing`, once, with `days_left`); `enterprises`: how many roster
    enterprises without an active CQO were told (one `register.campaign.due` each)."""

    enterprises = fields.Integer(required=True)
    days_left = fields.Integer(load_default=None, allow_none=True)


class CampaignDue(_CampaignFacts):
    """One roster enterprise without an active CQO, told of the campaign (`stage`:
    opened | closing), with its contact from the roster when it has one."""

    stage = fields.String(required=True, validate=validate.OneOf(["opened", "closing"]))
    uscc = fields.String(required=True, **USCC)
    county = fields.String(required=True, **COUNTY)
    enterprise_name = fields.String(required=True)
    days_left = fields.Integer(load_default=None, allow_none=True)
    contact_name = fields.String(load_default=None, allow_none=True)
    contact_phone = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)


# -- the talent service ---------------------------------------------------------------------

# the kinds of course (arts. 6, 15 教育培训), a certificate's `course_kind`: only 任职培训
# qualifies a CQO under art. 6
COURSE_KINDS = {"appointment": "任职培训", "basic": "基础培训", "advanced": "提升培训"}
APPOINTMENT_TRAINING = "appointment"


class CertificateIssued(_Data):
    """An attendance was recorded (or corrected): the certificate and whether it passed."""

    certificate_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    course_id = fields.Integer(required=True)
    course_kind = fields.String(required=True)
    county = fields.String(load_default=None, allow_none=True)
    person_name = fields.String(required=True)
    id_type = fields.String(required=True)
    id_hmac = _hmac()
    id_masked = _masked()
    passed = fields.Boolean(required=True)
    issued_on = fields.Date(load_default=None, allow_none=True)


class CertificateRevoked(_Data):
    """A certificate was revoked, finally: by an officer (`cause` officer) or because its
    attendance was corrected from passed to failed (result_changed). The fields after
    `reason` came later and are optional to readers."""

    certificate_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_hmac = _hmac()
    revoked_on = fields.Date(required=True)
    reason = fields.String(required=True)
    cause = fields.String(load_default=None, allow_none=True,
                          validate=validate.OneOf(["officer", "result_changed"]))
    id_masked = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    course_id = fields.Integer(load_default=None, allow_none=True)
    county = fields.String(load_default=None, allow_none=True, **COUNTY)


class DrawInvited(_Data):
    """An expert was invited to a panel (drawn, or stepping in for a decline)."""

    draw_id = fields.String(required=True)
    purpose = fields.String(required=True)
    expert_id = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["member", "alternate"]))


class DrawPublished(_Data):
    """A panel was published: names and expertise only, never contact details."""

    draw_id = fields.String(required=True)
    purpose = fields.String(required=True)
    members = fields.List(fields.Dict(), required=True)


class ExpertContact(_Data):
    """What the notification service may know of a city-level expert: designated, or
    their consent to be contacted recorded again (`talent.expert.designated`,
    `talent.expert.updated`). Phone and e-mail travel only while `consent_to_contact`
    is true (art. 10; the talent service keeps them encrypted); an update without
    consent tells readers to forget them. `revision` orders the announcements of one
    expert (the newest wins), never an ID number."""

    expert_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    revision = fields.Integer(required=True)
    name = fields.String(required=True)
    county = fields.String(load_default=None, allow_none=True, **COUNTY)
    status = fields.String(required=True)
    consent_to_contact = fields.Boolean(required=True)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


# -- a county's filing service ------------------------------------------------------------

class FilingReturned(_Data):
    """The county returned a filing to its enterprise for correction (pre-review, art.
    12). The fields after `comment` came later and are optional to readers: the kind,
    the day, and the enterprise's contact as the filing gave it (as `FilingDecided`)."""

    filing_id = fields.String(required=True)
    version = fields.Integer(required=True)
    county = fields.String(required=True, **COUNTY)
    uscc = fields.String(required=True, **USCC)
    enterprise_name = fields.String(required=True)
    comment = fields.String(load_default=None, allow_none=True)
    kind = fields.String(load_default=None, allow_none=True)
    returned_on = fields.Date(load_default=None, allow_none=True)
    contact_name = fields.String(load_default=None, allow_none=True)
    contact_phone = fields.String(load_default=None, allow_none=True)
    contact_email = fields.String(load_default=None, allow_none=True)


def filing_contact(document: Any) -> dict:
    """The enterprise's contact on a filing document (its CQO's name, phone and e-mail;
    nothing else of the person) as the `contact_*` fields of an event."""
    cqo = document.get("cqo") if isinstance(document, dict) else None
    cqo = cqo if isinstance(cqo, dict) else {}
    return {f"contact_{k}": cqo.get(k) if isinstance(cqo.get(k), str) else None
            for k in ("name", "phone", "email")}


# type → (subject kind, data schema)
TYPES: dict[str, tuple[str, type[Schema]]] = {
    "register.appointment.accepted": ("appointment", AppointmentAccepted),
    "register.appointment.ended": ("appointment", AppointmentEnded),
    "register.appointment.lapsed": ("appointment", AppointmentLapsed),
    "register.appointment.expiring": ("appointment", AppointmentExpiring),
    "register.filing.decided": ("filing", FilingDecided),
    "register.filing.late": ("filing", FilingLate),
    "register.recommendation.issued": ("recommendation", RecommendationIssued),
    "register.recommendation.closed": ("recommendation", RecommendationClosed),
    "register.recommendation.unanswered": ("recommendation", RecommendationUnanswered),
    "register.campaign.opened": ("campaign", CampaignAnnounced),
    "register.campaign.closing": ("campaign", CampaignAnnounced),
    "register.campaign.due": ("campaign_enterprise", CampaignDue),
    "talent.certificate.issued": ("certificate", CertificateIssued),
    "talent.certificate.revoked": ("certificate", CertificateRevoked),
    "talent.draw.invited": ("draw", DrawInvited),
    "talent.draw.published": ("draw", DrawPublished),
    "talent.expert.designated": ("expert", ExpertContact),
    "talent.expert.updated": ("expert", ExpertContact),
    "filing.returned": ("filing", FilingReturned),
}
_SCHEMAS = {name: schema() for name, (_, schema) in TYPES.items()}


class SubjectSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))


class EventSchema(Schema):
    """The envelope. `data` is checked against its type's schema by `load`."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(list(TYPES)))
    source = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = fields.AwareDateTime(required=True)
    subject = fields.Nested(SubjectSchema, required=True)
    data = fields.Dict(required=True)


_envelope = EventSchema()


class EventRefused(CqoError):
    """An event that must not leave its service (a source's bug, never user input)."""

    code = "EVENT_REFUSED"


def routing_key(event_type: str, county: str | None = None) -> str:
    """`<source>.<event>`; a county's events carry the county after the source."""
    if event_type.startswith("filing."):
        if not county:
            raise EventRefused("县区事件必须带县区代码", code="EVENT_COUNTY_MISSING")
        return f"filing.{county}.{event_type.split('.', 1)[1]}"
    return event_type


_SCALARS = frozenset((str, int, bool, float, type(None)))
_NUMBERS = frozenset((int, bool, float))


def _plain(value: Any) -> Any:
    """JSON-ready: dates and instants as ISO text (what `load` reads back)."""
    if type(value) in _SCALARS:  # most fields: nothing to do, no isinstance chain
        return value
    if isinstance(value, datetime):
        return clock.aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# per type: its fields and the required ones, worked out once (intake builds thousands)
_PLANS = {name: (tuple(schema.fields), tuple(n for n, f in schema.fields.items() if f.required))
          for name, schema in _SCHEMAS.items()}
_HMAC = re.compile(r"^[0-9a-f]{64}$")


def _check_fields(event_type: str, data: Mapping[str, Any], required: tuple[str, ...]) -> None:
    missing = [n for n in required if data.get(n) is None]
    if missing or ("id_hmac" in data and not _HMAC.match(str(data["id_hmac"]))):
        raise EventRefused(f"事件 {event_type} 的数据不完整或格式不符：{missing or ['id_hmac']}",
                           code="EVENT_DATA_INVALID", details={"fields": missing or ["id_hmac"]})


def build(event_type: str, subject_id: Any, data: Mapping[str, Any], *, source: str,
          occurred_at: datetime | None = None, event_id: str | None = None) -> dict:
    """A complete event as it goes on the wire (JSON-ready). Checked here: the type, the
    required fields, the keyed hash's form and that no text holds an ID number; the
    full schema is applied by every consumer (`load`) and by the tests of each source."""
    if event_type not in TYPES:
        raise EventRefused(f"未定义的事件类型：{event_type}", code="EVENT_TYPE_UNKNOWN")
    names, required = _PLANS[event_type]
    _check_fields(event_type, data, required)
    event = {"event_id": event_id or str(uuid.uuid4()), "type": event_type, "source": source,
             "occurred_at": (clock.aware(occurred_at) if occurred_at else clock.now_utc()).isoformat(),
             "subject": {"kind": TYPES[event_type][0], "id": str(subject_id)},
             "data": {n: _plain(data[n]) for n in names if n in data}}
    refuse_id_numbers(event["data"])
    return event


BATCH_MAX = 500  # events of one type in one message


def batch(built: list[dict]) -> dict:
    """Many events of one routing key as one message: `{"events": [...]}`. An intake or an
    import announces one event per filing or row; one AMQP message each would cost the
    broker and the relay as much as the work they announce."""
    return {"events": built}


def load_all(body: Any) -> list[tuple[dict, dict]]:
    """[(envelope, data)] of a received message: one event, or a batch of them, each
    checked; raises ValidationError."""
    if isinstance(body, dict) and "events" in body and "event_id" not in body:
        items = body["events"]
        if not isinstance(items, list) or not 1 <= len(items) <= BATCH_MAX:
            raise ValidationError(f"事件批次应包含1到{BATCH_MAX}个事件", "events")
        return [load(item) for item in items]
    return [load(body)]


def load(body: Any) -> tuple[dict, dict]:
    """(envelope, data) of a received event, both checked; raises ValidationError."""
    envelope = _envelope.load(body)
    return envelope, _SCHEMAS[envelope["type"]].load(envelope["data"])


# 18 characters shaped like a resident ID (GB 11643): division, a birth date from 1900,
# sequence, check character; not inside a longer run
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])"
                          r"(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9A-Za-z])")


def refuse_id_numbers(value: Any, key: str = "") -> None:
    """Raise when any text of `value` holds a resident ID number (a plausible birth date
    and a valid check character): the last guard before a bug sends one to every
    consumer. Enterprise codes (keys naming a USCC) are not people's numbers, and an
    all-digit USCC can pass the person check by chance."""
    if isinstance(value, str):
        if len(value) >= 18 and "uscc" not in key and holds_id_number(value):
            raise EventRefused("事件中不得出现证件号码", code="EVENT_CARRIES_ID_NUMBER")
    elif type(value) is dict or isinstance(value, Mapping):
        for name, item in value.items():
            if type(item) is str:  # inline: events are flat, a call per field cost the most
                if len(item) >= 18 and "uscc" not in str(name) and holds_id_number(item):
                    raise EventRefused("事件中不得出现证件号码", code="EVENT_CARRIES_ID_NUMBER")
            elif type(item) not in _SCALARS:
                refuse_id_numbers(item, str(name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_id_numbers(item, key)



def holds_id_number(text: str) -> bool:
    """Whether `text` holds a resident ID number (a plausible birth date and a valid
    check character)."""
    for match in _RESIDENT_ID.finditer(text):
        number = match.group(0).upper()
        if gb11643_check_char(number[:17]) == number[17]:
            return True
    return False


def build_many(event_type: str, items: Iterable[tuple[Any, Mapping[str, Any], str | None]], *,
               source: str, occurred_at: datetime | None = None) -> list[dict]:
    """`build` for many events of one type and time: `items` are (subject id, data,
    event id). Each event gets `build`'s checks and gives `build`'s result; the type,
    the plan and the time are looked at once, and the texts of all the events are
    searched for ID numbers in one pass (a line break between two texts never joins
    them into a match, as `refuse_id_numbers` searches them apart). An import
    announces one event per row: `build` per event cost as much as the row's insert."""
    if event_type not in TYPES:
        raise EventRefused(f"未定义的事件类型：{event_type}", code="EVENT_TYPE_UNKNOWN")
    names, required = _PLANS[event_type]
    kind = TYPES[event_type][0]
    stamp = (clock.aware(occurred_at) if occurred_at else clock.now_utc()).isoformat()
    built, texts = [], []  # texts: those refuse_id_numbers would search (18+ chars, no USCC)
    for subject_id, data, event_id in items:
        hmac = data.get("id_hmac", "0" * 64)
        if None in map(data.get, required) or not (type(hmac) is str and _HMAC.match(hmac)):
            _check_fields(event_type, data, required)  # which fields, as `build` tells it
        body = {name: data[name] for name in names if name in data}
        for name, value in body.items():
            if type(value) is str:
                # id_hmac, 64 hex characters as checked above, has no room for a number
                # set apart from letters and digits: never a match, not searched
                if len(value) >= 18 and "uscc" not in name and name != "id_hmac":
                    texts.append(value)
            elif value is not None and type(value) not in _NUMBERS:
                # dates, instants, nested values: as `build` makes and searches them
                body[name] = value = _plain(value)
                refuse_id_numbers(value, name)
        built.append({"event_id": event_id or str(uuid.uuid4()), "type": event_type, "source": source,
                      "occurred_at": stamp, "subject": {"kind": kind, "id": str(subject_id)}, "data": body})
    if holds_id_number("\n".join(texts)):
        raise EventRefused("事件中不得出现证件号码", code="EVENT_CARRIES_ID_NUMBER")
    return built


__all__ = ["TYPES", "EventSchema", "EventRefused", "build", "build_many", "filing_contact", "load", "routing_key",
           "holds_id_number", "refuse_id_numbers", "ValidationError"]
