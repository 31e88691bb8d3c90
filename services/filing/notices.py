"""What a notice of the city (filing.<county>.notices) is, and whom it is for.

Every notice, of whatever type — campaign notices, replacement recommendations
(recommendation.issued / .answered / .withdrawn / .closed), term reminders and lapses
(term.expiring / term.lapsed), and types a newer city may add — is kept in `notices`
once per message id (inbound.py) and shown at GET /api/v1/notices (views.py): county
officers see all of their county's, an enterprise those addressed to it and those
addressed to everyone. Plain Python: no database.
"""
from __future__ import annotations

import re
from typing import Mapping

from shared.errors import CqoError, ValidationFailed
from shared.validators import validate_uscc

CAMPAIGN_TYPES = ("campaign.opened", "campaign.closed")
TYPE_NAMES = {
    "campaign.opened": "集中备案通告",
    "campaign.closed": "集中备案结束",
    "recommendation.issued": "撤换建议",
    "recommendation.answered": "撤换建议答复",
    "recommendation.withdrawn": "撤换建议撤回",
    "recommendation.closed": "撤换建议办结",
    "term.expiring": "任期届满提醒",
    "term.lapsed": "任期届满未续任",
}
OTHER_TYPE_NAME = "市局通知"
AUDIENCES = {"all": "全体", "enterprise": "指定企业", "officers": "县级监管人员"}
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
TYPE_MAX = 64
TITLE_MAX = 300


def type_name(kind: str) -> str:
    return TYPE_NAMES.get(kind, OTHER_TYPE_NAME)


def _clean(value, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    if not text:
        return None
    return text[:limit] if limit else text


def _campaign_text(kind: str, campaign: Mapping) -> tuple[str, str | None]:
    year = campaign.get("year")
    title = _clean(campaign.get("title"), TITLE_MAX) or f"{year}年度首席质量官集中备案"
    if kind == "campaign.opened":
        number = campaign.get("notice_number")
        window = ""
        if campaign.get("opens_on") and campaign.get("closes_on"):
            window = f"，报送时间{campaign['opens_on']}至{campaign['closes_on']}"
        return title, f"市局发布{title}{f'（{number}）' if number else ''}{window}。"
    return f"{title}已结束", f"{year}年度首席质量官集中备案已结束。"


def parse(body, county: str) -> dict:
    """The stored form of a notice body (a JSON object with a dotted `type`); raises
    ValidationFailed (dead-lettered by the consumer) for what cannot be a notice."""
    if not isinstance(body, dict):
        raise ValidationFailed("notice body must be a JSON object", code="NOTICE_INVALID")
    kind = body.get("type")
    if not isinstance(kind, str) or len(kind) > TYPE_MAX or not _TYPE.match(kind):
        raise ValidationFailed(f"notice type must be a dotted lower-case name, got {kind!r}",
                               code="NOTICE_INVALID")
    target = body.get("county")
    if target not in (None, "") and str(target) != county:
        raise ValidationFailed(f"notice for county {target!r} delivered to {county}",
                               code="NOTICE_WRONG_COUNTY")
    uscc = body.get("uscc")
    if uscc not in (None, ""):
        try:
            uscc = validate_uscc(str(uscc))
        except CqoError as exc:
            raise ValidationFailed(f"notice uscc invalid: {exc.message}", code="NOTICE_INVALID") from None
    else:
        uscc = None
    audience = body.get("audience")
    if audience not in AUDIENCES:
        if kind in CAMPAIGN_TYPES:
            audience = "all"
        else:
            audience = "enterprise" if uscc else "officers"
    if audience == "enterprise" and not uscc:
        raise ValidationFailed("a notice to an enterprise needs its uscc", code="NOTICE_INVALID")
    title, message = _clean(body.get("title"), TITLE_MAX), _clean(body.get("message"))
    if kind in CAMPAIGN_TYPES and isinstance(body.get("campaign"), dict):
        derived_title, derived_message = _campaign_text(kind, body["campaign"])
        title, message = title or derived_title, message or derived_message
    return {"type": kind, "audience": audience, "uscc": uscc,
            "title": title or type_name(kind), "message": message, "payload": body}
