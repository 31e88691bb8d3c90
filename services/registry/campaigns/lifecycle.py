"""Use cases: the yearly filing campaign (art. 13). Opening and closing are announced
to every county on `cqo.notices` through the outbox, in the same transaction."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.messaging import topology
from shared.messaging.outbox import Outbox
from services.registry.models import Campaign
from services.registry.campaigns.schemas import CampaignOut

_out = CampaignOut()


def _notice(uow: UnitOfWork, kind: str, campaign: Campaign) -> None:
    payload = {"type": f"campaign.{kind}", "campaign": _out.dump(campaign)}
    Outbox.add(uow, topology.NOTICES.name, topology.NOTICE_ALL, payload,
               message_id=f"campaign:{campaign.year}:{kind}")


def open_campaign(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    if data["closes_on"] < data["opens_on"]:
        raise ValidationFailed("截止日期不能早于开始日期", field="closes_on", code="CAMPAIGN_DATES")
    session = uow.session
    if session.get(Campaign, data["year"]) is not None:
        raise Conflict(f"{data['year']}年度的集中备案已经发布", code="CAMPAIGN_EXISTS")
    open_one = session.scalars(select(Campaign).where(Campaign.status == "open")).first()
    if open_one is not None:
        raise Conflict(f"{open_one.year}年度的集中备案尚未结束，请先结束后再发布新的年度集中备案",
                       code="CAMPAIGN_ALREADY_OPEN")
    campaign = Campaign(**data, status="open", opened_by=principal.subject or principal.role,
                        created_at=clock.now_utc())
    session.add(campaign)
    session.flush()
    _notice(uow, "opened", campaign)
    uow.commit()
    return _out.dump(campaign)


def close_campaign(uow: UnitOfWork, principal: Principal, year: int) -> dict:
    campaign = uow.session.get(Campaign, year)
    if campaign is None:
        raise NotFound(f"未找到{year}年度的集中备案", code="CAMPAIGN_NOT_FOUND")
    if campaign.status == "closed":
        raise Conflict(f"{year}年度的集中备案已经结束", code="CAMPAIGN_CLOSED")
    campaign.status, campaign.closed_at = "closed", clock.now_utc()
    _notice(uow, "closed", campaign)
    uow.commit()
    return _out.dump(campaign)


def list_campaigns(uow: UnitOfWork) -> list[dict]:
    return _out.dump(uow.session.scalars(select(Campaign).order_by(Campaign.year.desc())).all(),
                     many=True)
