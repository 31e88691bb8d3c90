"""The county's notices inbox: everything the city announces on filing.<county>.notices.

Campaign notices also update `campaigns` (inbound.py, which keeps them all); every
notice, of whatever type — replacement recommendations (recommendation.issued /
.answered / .withdrawn / .closed), term reminders and lapses (term.expiring /
term.lapsed), and types a newer city may add — is kept in `notices`, once per message
id (the inbox mark commits with the row), and shown at GET /api/v1/notices: county
officers see all of their county's, an enterprise those addressed to it and those
addressed to everyone.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Mapping

from marshmallow import Schema, fields, post_load, pre_load
from sqlalchemy import func, or_, select

from shared.auth import Principal
from shared.db import Database
from shared.errors import CqoError, Forbidden, ValidationFailed
from shared.validators import validate_uscc
from shared.validators.uscc import PATTERN as USCC_PATTERN

from services.filing.models import Notice
from services.filing.fields import QueryInt, StrictSchema, Text, between, check_uscc
from services.filing.schemas import MAX_PAGE_SIZE

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


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


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


# -- reading ---------------------------------------------------------------------------------

class NoticeQuery(StrictSchema):
    error_messages = {"type": "查询参数无效", "unknown": "未知的查询参数"}

    type = Text(max_length=TYPE_MAX, metadata={"description": "通知类型，如 recommendation.issued；"
                                                             "以“.”结尾表示该类全部，如 term."})
    uscc = Text(max_length=40, validate=check_uscc, metadata={"description": "企业（县级监管人员）",
                                                               "pattern": USCC_PATTERN})
    page = QueryInt(load_default=1, validate=between(1, 1_000_000))
    page_size = QueryInt(load_default=50, validate=between(1, MAX_PAGE_SIZE))

    @pre_load
    def _blank_is_absent(self, data, **kwargs):
        return {k: v for k, v in data.items() if v not in ("", None)} if isinstance(data, dict) else data

    @post_load
    def _normalise(self, data, **kwargs):
        if data.get("uscc"):
            data["uscc"] = validate_uscc(data["uscc"])
        return data


class NoticeOut(Schema):
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


class NoticePageOut(Schema):
    items = fields.List(fields.Nested(NoticeOut))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


def list_notices(db: Database, county: str, principal: Principal, query: Mapping) -> dict:
    conditions = []
    if principal.role == "enterprise":
        if principal.county and principal.county != county:
            raise Forbidden("无权访问其他县（市、区）的数据", code="AUTH_FORBIDDEN")
        if query.get("uscc") not in (None, principal.uscc):
            raise Forbidden("企业只能查看发给本企业的通知", code="AUTH_FORBIDDEN")
        conditions.append(or_(Notice.audience == "all",
                              (Notice.audience == "enterprise") & (Notice.uscc == principal.uscc)))
    elif principal.role == "county_officer":
        if principal.county != county:
            raise Forbidden("无权访问其他县（市、区）的数据", code="AUTH_FORBIDDEN")
    elif not principal.city_wide:
        raise Forbidden("当前角色无权执行此操作", code="AUTH_FORBIDDEN")
    if query.get("uscc"):
        conditions.append(Notice.uscc == query["uscc"])
    kind = query.get("type")
    if kind:
        conditions.append(Notice.type.startswith(kind, autoescape=True) if kind.endswith(".")
                          else Notice.type == kind)
    page, page_size = query.get("page", 1), query.get("page_size", 50)
    with db.unit_of_work() as uow:
        s = uow.session
        total = s.execute(select(func.count()).select_from(Notice).where(*conditions)).scalar_one()
        rows = s.execute(select(Notice).where(*conditions)
                         .order_by(Notice.received_at.desc(), Notice.id.desc())
                         .offset((page - 1) * page_size).limit(page_size)).scalars().all()
        items = [{
            "id": n.id, "type": n.type, "type_name": type_name(n.type), "audience": n.audience,
            "audience_name": AUDIENCES.get(n.audience, n.audience), "uscc": n.uscc,
            "enterprise_name": (n.payload or {}).get("enterprise_name")
            if isinstance((n.payload or {}).get("enterprise_name"), str) else None,
            "title": n.title, "message": n.message, "received_at": _aware(n.received_at),
            "data": n.payload or {}} for n in rows]
    return NoticePageOut().dump({"items": items, "total": total, "page": page,
                                 "page_size": page_size})
