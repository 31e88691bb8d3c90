"""Use cases: campaign progress per county (art. 13).

Two sources make one table:
- the register (city): what the city decided on the year's campaign filings (filed =
  enterprises with an accepted campaign filing of the year, rejected = filings whose
  latest version the city refused, waiting = held for a predecessor), the roster size,
  the enterprises with an active CQO and the campaign's completion;
- each county's own snapshot, pushed through its outbox as `campaign.progress` on
  `filing.<county>.progress` (services/filing/progress.py): what only the county knows,
  filings waiting for its pre-review (待预审), approved and not yet forwarded (预审通过),
  returned (退回). The registry keeps the latest snapshot per (county, year), by `as_of`.

Completion (art. 13) is measured against the county's roster of the campaign's year:
the roster enterprises with an active CQO (services/registry/active_cqo.py) at the
campaign's close — the end of its window, or the day the city closed it if earlier —
or on the day asked while it still runs, divided by the roster size. They are shown
apart as those that filed in the campaign and those already covered with nothing to
change; campaign filings of enterprises not on the year's roster are counted apart
(`filed_off_roster`) and never in the rate, which therefore never exceeds 1. A county
with an empty roster has no rate (null, "—" in tables).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from shared import clock
from shared.auth import Principal
from shared.contracts import CampaignProgressSchema, county_name, jurisdiction
from shared.db import UnitOfWork, conflict_insert
from shared.errors import CqoError, NotFound
from services.registry import active_cqo, trust
from services.registry.counties import county_scope
from services.registry.roster import coverage
from services.registry.domain.register import ACCEPTED, REJECTED, WAITING
from services.registry.register.intake import IntakeContext
from services.registry.models import (Appointment, Campaign, CountyProgress, Enterprise,
                                      LedgerEntry, RosterEntry)

log = logging.getLogger(__name__)
_snapshot_schema = CampaignProgressSchema()

# the columns of the progress table, as officers read them
COLUMNS = {
    "county": "县级区划代码",
    "county_name": "县（市、区）",
    "roster_size": "规上企业名录数",
    "covered": "名录内已设立首席质量官企业数",
    "coverage_rate": "覆盖率",
    "active_cqo": "有在任首席质量官的企业数",
    "filed": "本年度集中备案已备案企业数",
    "completed": "名录内已完成企业数（集中备案截止时有在任首席质量官）",
    "completed_in_campaign": "其中：本次集中备案的",
    "completed_already": "其中：此前已备案、无需变更的",
    "completion_rate": "集中备案完成率",
    "filed_off_roster": "名录外企业集中备案数（不计入完成率）",
    "pending": "县局待办（待预审＋预审通过待报送）",
    "submitted": "待预审",
    "approved": "预审通过待报送",
    "returned": "退回",
    "forwarded": "已报送市局待决定",
    "waiting": "市局等待前序备案",
    "rejected": "市局不予备案",
    "reported_at": "县局进度数据截至",
}
COUNT_COLUMNS = ("roster_size", "covered", "active_cqo", "filed", "completed",
                 "completed_in_campaign", "completed_already", "filed_off_roster", "pending",
                 "submitted", "approved", "returned", "forwarded", "waiting", "rejected")


# -- the county's snapshot (message) ---------------------------------------------------

class ProgressRejected(CqoError):
    code = "PROGRESS_REJECTED"


def receive(uow: UnitOfWork, ctx: IntakeContext, body, *, routing_key: str,
            message_id: str | None, user_id: str | None = None) -> bool:
    """Keep a county's snapshot unless a newer one is already kept; True if kept.
    A malformed snapshot raises (the failure wrapper dead-letters it); one its sender
    may not send is dead-lettered and audited by the trust check, and not kept."""
    if not trust.admit(uow, ctx.trust, body, routing_key=routing_key, message_id=message_id,
                       user_id=user_id):
        return False
    data = _snapshot_schema.load(body)
    county = data["county"]
    parts = (routing_key or "").split(".")
    if len(parts) != 3 or parts[1] != county:
        raise ProgressRejected(f"进度快照的县区“{county}”与路由键“{routing_key}”不一致",
                               code="PROGRESS_COUNTY_MISMATCH")
    session, now = uow.session, clock.now_utc()
    counts = json.dumps(data["counts"], ensure_ascii=False, sort_keys=True)
    # the first snapshot of a (county, year) inserts; later ones lock the row and replace
    # it only when newer (arrival order means nothing: several workers, redeliveries)
    inserted = session.execute(conflict_insert(session)(CountyProgress).values(
        county=county, year=data["year"], as_of=data["as_of"], counts=counts,
        message_id=message_id, received_at=now).on_conflict_do_nothing()).rowcount
    if inserted:
        return True
    query = select(CountyProgress).where(CountyProgress.county == county,
                                         CountyProgress.year == data["year"])
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).one()
    if clock.aware(row.as_of) >= data["as_of"]:
        log.info("progress snapshot %s older than the one kept (%s), ignored", message_id, row.as_of)
        return False
    row.as_of, row.counts, row.message_id, row.received_at = data["as_of"], counts, message_id, now
    return True


# -- the table -------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """Everything the progress table and the assessment report read, per county."""

    year: int
    as_of: date
    rows: dict[str, dict]
    completion_on: date | None = None  # the day completion is measured (None: no campaign)


def _visible_counties(principal: Principal | None, extra: set[str]) -> list[str]:
    """No principal (the CLI): every county."""
    own = None if principal is None else county_scope(principal, None)
    return [own] if own is not None else sorted({d.code for d in jurisdiction()} | extra)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def roster_coverage(uow: UnitOfWork, year: int, as_of: date) -> dict[str, dict]:
    """{county: {"roster_size", "covered", "rate", ...}} for the roster of the year (art. 4;
    an enterprise counts where that year's roster puts it)."""
    return {row["county"]: row for row in coverage.per_county(uow, year, as_of)}


def active_cqo_by_county(session, as_of: date) -> dict[str, int]:
    """Enterprises with an active CQO on `as_of` (on the roster or not), in the county the
    register places them now."""
    query = (select(Enterprise.county, func.count(func.distinct(Appointment.uscc)))
             .join(Enterprise, Enterprise.uscc == Appointment.uscc)
             .where(active_cqo.active_condition(as_of)).group_by(Enterprise.county))
    return dict(session.execute(query).all())


def completion_day(campaign: Campaign | None, as_of: date) -> date | None:
    """The day the campaign's completion is measured: its close (the end of its window,
    or the day the city closed it if that came first), or `as_of` while it still runs."""
    if campaign is None:
        return None
    close = campaign.closes_on
    if campaign.closed_at is not None:
        close = min(close, clock.aware(campaign.closed_at).astimezone(clock.TZ).date())
    return min(close, as_of)


def _campaign_filers(year: int):
    return (select(LedgerEntry.uscc).where(LedgerEntry.campaign_year == year,
                                           LedgerEntry.outcome == ACCEPTED).distinct().subquery())


def completed_in_campaign(session, year: int, on: date) -> dict[str, int]:
    """Per roster county: the year's roster enterprises that filed in the campaign
    (accepted) and have an active CQO on `on`."""
    filers = _campaign_filers(year)
    active = select(Appointment.id).where(Appointment.uscc == RosterEntry.uscc,
                                          active_cqo.active_condition(on)).exists()
    return dict(session.execute(
        select(RosterEntry.county, func.count())
        .join(filers, filers.c.uscc == RosterEntry.uscc)
        .where(RosterEntry.year == year, active).group_by(RosterEntry.county)).all())


def filed_off_roster(session, year: int) -> dict[str, int]:
    """Per filing county: enterprises accepted in the year's campaign that are not on the
    year's roster (shown apart; they do not count toward completion)."""
    on_roster = select(RosterEntry.uscc).where(RosterEntry.year == year,
                                               RosterEntry.uscc == LedgerEntry.uscc).exists()
    return dict(session.execute(
        select(LedgerEntry.county, func.count(func.distinct(LedgerEntry.uscc)))
        .where(LedgerEntry.campaign_year == year, LedgerEntry.outcome == ACCEPTED, ~on_roster)
        .group_by(LedgerEntry.county)).all())


def city_figures(session, year: int) -> dict[str, dict[str, int]]:
    """Per county (the county that filed): enterprises filed in the year's campaign, and
    the city's outcome on the latest version of each campaign filing."""
    filed = dict(session.execute(
        select(LedgerEntry.county, func.count(func.distinct(LedgerEntry.uscc)))
        .where(LedgerEntry.campaign_year == year, LedgerEntry.outcome == ACCEPTED)
        .group_by(LedgerEntry.county)).all())
    newer = aliased(LedgerEntry)
    latest = (select(LedgerEntry.county, LedgerEntry.outcome, func.count())
              .outerjoin(newer, and_(newer.filing_id == LedgerEntry.filing_id,
                                     newer.version > LedgerEntry.version))
              .where(LedgerEntry.campaign_year == year, newer.id.is_(None))
              .group_by(LedgerEntry.county, LedgerEntry.outcome))
    out: dict[str, dict[str, int]] = {}
    for county, number in filed.items():
        out.setdefault(county, {})["filed"] = number
    for county, outcome, number in session.execute(latest):
        out.setdefault(county, {})[outcome] = number
    return out


def snapshots(session, year: int) -> dict[str, tuple[dict, datetime]]:
    return {row.county: (json.loads(row.counts), clock.aware(row.as_of)) for row in session.scalars(
        select(CountyProgress).where(CountyProgress.year == year))}


def figures(uow: UnitOfWork, year: int, as_of: date | None = None,
            principal: Principal | None = None) -> Figures:
    """The progress row of every county the caller may see (a county officer: its own)."""
    as_of = as_of or clock.today()
    session = uow.session
    rosters = roster_coverage(uow, year, as_of)
    active = active_cqo_by_county(session, as_of)
    city = city_figures(session, year)
    county_counts = snapshots(session, year)
    measured_on = completion_day(session.get(Campaign, year), as_of)
    completed, in_campaign, off_roster = {}, {}, {}
    if measured_on is not None:
        completed = rosters if measured_on == as_of else roster_coverage(uow, year, measured_on)
        in_campaign = completed_in_campaign(session, year, measured_on)
        off_roster = filed_off_roster(session, year)
    counties = _visible_counties(principal, set(rosters) | set(active) | set(city)
                                 | set(county_counts) | set(off_roster))
    rows = {}
    for county in counties:
        roster = rosters.get(county, {})
        decided = city.get(county, {})
        counts, reported_at = county_counts.get(county, ({}, None))
        roster_size, filed = int(roster.get("roster_size") or 0), decided.get("filed", 0)
        done = int(completed.get(county, {}).get("covered") or 0)
        done_in_campaign = in_campaign.get(county, 0)
        submitted, approved = counts.get("submitted", 0), counts.get("approved", 0)
        rows[county] = {
            "county": county, "county_name": county_name(county),
            "roster_size": roster_size, "covered": int(roster.get("covered") or 0),
            "coverage_rate": roster.get("rate"),
            "active_cqo": active.get(county, 0),
            "filed": filed, "completed": done, "completed_in_campaign": done_in_campaign,
            "completed_already": done - done_in_campaign,
            "completion_rate": None if measured_on is None else _rate(done, roster_size),
            "filed_off_roster": off_roster.get(county, 0),
            "pending": submitted + approved, "submitted": submitted, "approved": approved,
            "returned": counts.get("returned", 0), "forwarded": counts.get("forwarded", 0),
            "waiting": decided.get(WAITING, 0), "rejected": decided.get(REJECTED, 0),
            "reported_at": reported_at,
        }
    return Figures(year, as_of, rows, measured_on)


def totals(rows, *, completion: bool = True) -> dict:
    """The sums of `rows`; `completion` False: no campaign, so no completion rate."""
    rows = list(rows)
    total = {key: sum(r[key] for r in rows) for key in COUNT_COLUMNS}
    total["coverage_rate"] = _rate(total["covered"], total["roster_size"])
    total["completion_rate"] = _rate(total["completed"], total["roster_size"]) if completion else None
    reported = [r["reported_at"] for r in rows if r["reported_at"] is not None]
    total["counties_reported"] = len(reported)
    total["counties"] = len(rows)
    return total


def campaign_progress(uow: UnitOfWork, principal: Principal, year: int) -> dict:
    """GET /campaigns/{year}/progress: one row per county, with the city's totals."""
    campaign = uow.session.get(Campaign, year)
    if campaign is None:
        raise NotFound(f"未找到{year}年度的集中备案", code="CAMPAIGN_NOT_FOUND")
    result = figures(uow, year, principal=principal)
    rows = list(result.rows.values())
    return {
        "year": year, "as_of": result.as_of, "completion_on": result.completion_on,
        "campaign": {"year": campaign.year, "notice_number": campaign.notice_number,
                     "title": campaign.title, "status": campaign.status,
                     "opens_on": campaign.opens_on, "closes_on": campaign.closes_on},
        "columns": COLUMNS, "counties": rows, "total": totals(rows),
    }
