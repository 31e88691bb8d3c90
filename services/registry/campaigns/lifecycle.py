"""Use cases: the yearly filing campaign (art. 13). Opening and closing are announced
to every county on `cqo.notices` through the outbox, in the same transaction; opening,
and the campaign closing within `CLOSING_DAYS` (once, from the oversight timer), are
also announced on `cqo.events` for the notify service: to the offices, and to each
roster enterprise of the campaign's year without an active CQO that day (the registry
knows them; notify, told one event per enterprise, needs no call back)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from shared import clock
from shared.auth import Principal
from shared.db import Database, UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.messaging import topology
from shared.messaging.outbox import Outbox
from services.registry import announcements
from services.registry.models import Campaign
from services.registry.roster.coverage import iter_uncovered
from services.registry.campaigns.schemas import CampaignOut

_out = CampaignOut()
CLOSING_DAYS = 7  # the "closing soon" reminder, this many days before `closes_on`


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
    _announce(uow, "opened", campaign, clock.today(), campaign.created_at)
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


def _announce(uow: UnitOfWork, stage: str, campaign: Campaign, as_of: date, now: datetime,
              days_left: int | None = None) -> None:
    # read whole before writing: the rows stream on the connection the outbox writes on
    enterprises = list(iter_uncovered(uow, campaign.year, as_of))
    announcements.campaign(uow, stage, campaign, enterprises, now, days_left=days_left)


def check_closing(db: Database, as_of: date | None = None, now: datetime | None = None) -> int | None:
    """Announce, once, that the open campaign closes within CLOSING_DAYS of `as_of`
    (default today); the campaign's year if it did. Idempotent (a conditional update):
    safe from a timer in several registry processes."""
    as_of, now = as_of or clock.today(), now or clock.now_utc()
    with db.unit_of_work() as uow:
        session = uow.session
        campaign = session.scalars(select(Campaign).where(
            Campaign.status == "open", Campaign.closing_announced_at.is_(None),
            Campaign.closes_on >= as_of, Campaign.closes_on <= as_of + timedelta(days=CLOSING_DAYS))).first()
        if campaign is None:
            return None
        marked = session.execute(update(Campaign).where(
            Campaign.year == campaign.year, Campaign.status == "open", Campaign.closing_announced_at.is_(None))
            .values(closing_announced_at=now).execution_options(synchronize_session=False)).rowcount
        if marked != 1:
            return None  # another process announced it, or it closed meanwhile
        _announce(uow, "closing", campaign, as_of, now, days_left=(campaign.closes_on - as_of).days)
        uow.commit()
        return campaign.year


def list_campaigns(uow: UnitOfWork) -> list[dict]:
    return _out.dump(uow.session.scalars(select(Campaign).order_by(Campaign.year.desc())).all(),
                     many=True)
