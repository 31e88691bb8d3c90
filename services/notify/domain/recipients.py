"""Who is told of which event, on which channels (DESIGN.md section 2, issue 11).

The enterprise hears of everything about its own filings, appointments and
recommendations (in-app inbox, e-mail, SMS); the county office of the enterprise's
county and the city office hear what they must act on or watch (e-mail, SMS where it
is urgent); an expert hears of a panel invitation. `register.appointment.accepted` and
`.ended` are told through the filing decision that caused them, so they tell no one
again. A channel without an address is kept as skipped, never dropped in silence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

INBOX, EMAIL, SMS = "inbox", "email", "sms"
CHANNELS = (INBOX, EMAIL, SMS)
ENTERPRISE, COUNTY, CITY, EXPERT = "enterprise", "county", "city", "expert"
EVERY_COUNTY = "every_county"  # the offices of all counties (a city-wide event); heard as COUNTY

# event type -> [(audience, channels)]
PLAN: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "register.filing.decided": ((ENTERPRISE, (INBOX, EMAIL, SMS)), (COUNTY, (EMAIL,))),
    # beside the decision (which the enterprise has by SMS already): the late record
    "register.filing.late": ((ENTERPRISE, (INBOX, EMAIL)), (COUNTY, (EMAIL,))),
    "register.recommendation.issued": ((ENTERPRISE, (INBOX, EMAIL, SMS)), (COUNTY, (EMAIL, SMS)),
                                       (CITY, (EMAIL,))),
    "register.recommendation.closed": ((ENTERPRISE, (INBOX, EMAIL)), (COUNTY, (EMAIL,))),
    "register.recommendation.unanswered": ((ENTERPRISE, (INBOX, EMAIL, SMS)), (COUNTY, (EMAIL,)),
                                           (CITY, (EMAIL,))),
    "register.appointment.lapsed": ((ENTERPRISE, (INBOX, EMAIL, SMS)), (COUNTY, (EMAIL,)),
                                    (CITY, (EMAIL,))),
    "register.appointment.expiring": ((ENTERPRISE, (INBOX, EMAIL, SMS)), (COUNTY, (EMAIL,))),
    "register.appointment.accepted": (),
    "register.appointment.ended": (),
    "talent.draw.invited": ((EXPERT, (INBOX, EMAIL, SMS)),),
    "talent.draw.published": ((CITY, (EMAIL,)),),
    # the campaign: every county office runs it; each roster enterprise without an
    # active CQO hears of it by its own event (register.campaign.due)
    "register.campaign.opened": ((EVERY_COUNTY, (EMAIL,)),),
    "register.campaign.closing": ((EVERY_COUNTY, (EMAIL,)),),
    "register.campaign.due": ((ENTERPRISE, (INBOX, EMAIL, SMS)),),
    # the county itself returned it: only the enterprise needs telling
    "filing.returned": ((ENTERPRISE, (INBOX, EMAIL, SMS)),),
}
TEMPLATES = {
    "register.filing.decided": "filing_decided",
    "register.recommendation.issued": "recommendation_issued",
    "register.recommendation.closed": "recommendation_closed",
    "register.recommendation.unanswered": "recommendation_unanswered",
    "register.appointment.lapsed": "appointment_lapsed",
    "register.appointment.expiring": "appointment_expiring",
    "talent.draw.invited": "draw_invited",
    "talent.draw.published": "draw_published",
    "filing.returned": "filing_returned",
    "register.filing.late": "filing_late",
    "register.campaign.opened": "campaign_offices",
    "register.campaign.closing": "campaign_offices",
    "register.campaign.due": "campaign_due",
}
# events that carry the enterprise's contact as its filing gave it (kept for the others;
# a campaign's carries the roster's, used for that notice only)
CONTACT_EVENTS = ("register.filing.decided", "register.filing.late", "filing.returned")

# mainland mobile numbers only: a landline cannot take an SMS
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

NO_ADDRESS = {EMAIL: "没有电子邮箱地址", SMS: "没有可接收短信的手机号码"}
# two different fixes for an operator: configure the gateway, or register the template
NO_SMS_GATEWAY = "未配置短信网关"
NO_SMS_TEMPLATE = "该事件没有登记短信模板"
NO_CONSENT = "专家未同意被联系"


@dataclass(frozen=True)
class Office:
    """One contact of the city bureau or of a county's department."""

    id: int
    level: str  # city | county
    county: str | None
    name: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class EnterpriseAddress:
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    enterprise_name: str | None = None


@dataclass(frozen=True)
class ExpertAddress:
    """An expert as the talent service announced them; phone and e-mail only with their
    consent to be contacted."""

    name: str
    consent: bool = False
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Directory:
    """What the use case looked up for one event: the offices, the enterprise's
    contact known before it (from an earlier filing) and the expert it names."""

    offices: tuple[Office, ...] = ()
    enterprise: EnterpriseAddress | None = None
    expert: ExpertAddress | None = None


@dataclass(frozen=True)
class Recipient:
    key: str                 # enterprise:<uscc> | office:<id> | expert:<id>
    audience: str            # enterprise | county | city | expert
    name: str
    county: str | None
    channels: tuple[str, ...]
    phone: str | None = None
    email: str | None = None
    no_address: str | None = None  # why e-mail and SMS have no address, when not simply missing


@dataclass(frozen=True)
class Route:
    """One delivery to make: the channel and its address, or why there is none."""

    channel: str
    address: str | None
    skip_reason: str | None = None


@dataclass(frozen=True)
class Plan:
    recipient: Recipient
    routes: tuple[Route, ...] = field(default_factory=tuple)


def event_contact(data: dict) -> EnterpriseAddress | None:
    """The enterprise's contact carried by the event itself (filing decisions and
    returns carry the filing's), or None."""
    if not any(data.get(k) for k in ("contact_name", "contact_phone", "contact_email")):
        return None
    return EnterpriseAddress(contact_name=data.get("contact_name"), phone=data.get("contact_phone"),
                             email=data.get("contact_email"), enterprise_name=data.get("enterprise_name"))


def recipients(event_type: str, data: dict, directory: Directory) -> list[Recipient]:
    """Everyone `event_type` concerns, in a stable order."""
    county = data.get("county")
    found: list[Recipient] = []
    for audience, channels in PLAN.get(event_type, ()):
        if audience == ENTERPRISE and data.get("uscc"):
            address = event_contact(data) or directory.enterprise or EnterpriseAddress()
            name = data.get("enterprise_name") or address.enterprise_name or data["uscc"]
            found.append(Recipient(f"enterprise:{data['uscc']}", ENTERPRISE, name, county, channels,
                                   phone=address.phone, email=address.email))
        elif audience == EXPERT and data.get("expert_id"):
            # the talent service announces an expert's contact only with their consent;
            # without it (or before it is heard of) e-mail and SMS are skipped
            known = directory.expert
            usable = known is not None and known.consent
            found.append(Recipient(f"expert:{data['expert_id']}", EXPERT, known.name if known else "市级质量专家",
                                   None, channels, phone=known.phone if usable else None,
                                   email=known.email if usable else None,
                                   no_address=NO_CONSENT if known is not None and not usable else None))
        elif audience in (COUNTY, CITY, EVERY_COUNTY):
            level = CITY if audience == CITY else COUNTY
            for office in directory.offices:
                if office.level != level or (audience == COUNTY and office.county != county):
                    continue
                found.append(Recipient(f"office:{office.id}", level, office.name,
                                       office.county if level == COUNTY else county, channels,
                                       phone=office.phone, email=office.email))
    return found


def is_mobile(phone: str | None) -> bool:
    return bool(phone) and bool(_MOBILE.match(normal_phone(phone)))


def normal_phone(phone: str) -> str:
    value = "".join(str(phone).split()).replace("-", "")
    return value[3:] if value.startswith("+86") else value


def routes(recipient: Recipient, *, sms_templates: frozenset[str] | set[str] | None,
           event_type: str) -> list[Route]:
    """The deliveries of one recipient: each wanted channel with its address, or the
    reason it is skipped (no address, no SMS gateway configured (`sms_templates` None),
    no registered SMS template)."""
    out = []
    for channel in recipient.channels:
        if channel == INBOX:
            out.append(Route(INBOX, recipient.key))
        elif channel == EMAIL:
            email = (recipient.email or "").strip()
            out.append(Route(EMAIL, email) if _EMAIL.match(email)
                       else Route(EMAIL, None, recipient.no_address or NO_ADDRESS[EMAIL]))
        elif channel == SMS:
            if not is_mobile(recipient.phone):
                out.append(Route(SMS, None, recipient.no_address or NO_ADDRESS[SMS]))
            elif sms_templates is None:
                out.append(Route(SMS, None, NO_SMS_GATEWAY))
            elif event_type not in sms_templates:
                out.append(Route(SMS, None, NO_SMS_TEMPLATE))
            else:
                out.append(Route(SMS, normal_phone(recipient.phone)))
    return out


def plan(event_type: str, data: dict, directory: Directory, sms_templates) -> list[Plan]:
    return [Plan(r, tuple(routes(r, sms_templates=sms_templates, event_type=event_type)))
            for r in recipients(event_type, data, directory)]


def needs_every_county(event_type: str) -> bool:
    return any(audience == EVERY_COUNTY for audience, _ in PLAN.get(event_type, ()))
