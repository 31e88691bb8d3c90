"""Campaign progress of one county (art. 13), pushed to the city.

What is pending at a county (待预审, 预审通过 not yet forwarded) or returned (退回) is
known only there, so each county publishes a snapshot of its campaign filings' counts
by status: `campaign.progress` on `cqo.filings`, routing key `filing.<county>.progress`,
message id `progress:<county>:<year>:<n>`, through the outbox.

Why a timer and not the use cases' own transactions: a snapshot counted inside every
intake/review/batch/decision transaction would add a GROUP BY and an outbox row to each
of them (a 10,000-filing batch or decision run would send thousands of snapshots), and
under READ COMMITTED two concurrent transactions each count without the other's change,
so the last snapshot to commit could be wrong and stay wrong. The timer counts in its
own transaction after locking the year's snapshot row, publishes only when the counts
differ from what it published last, and so converges to the true counts within one
interval, with the hot paths untouched. While nothing changes it only reads (on SQLite
it takes no write lock). The outbox keeps the snapshot while the broker or the city is
down, like any other message.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select

from shared.contracts import (FILINGS_EXCHANGE, PROGRESS_COUNTS, PROGRESS_TYPE, progress_message_id,
                              progress_routing_key)
from shared import clock
from shared.db import Database, insert_rows
from shared.messaging.outbox import Outbox

from services.filing import domain, wire
from services.filing.models import Campaign, Filing, ProgressSnapshot

log = logging.getLogger(__name__)

# every status a campaign filing can be in; the contract's six first
COUNT_KEYS = PROGRESS_COUNTS + tuple(s for s in domain.STATUSES if s not in PROGRESS_COUNTS)


def counts_by_year(session_or_conn, years: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{campaign year: {status: number of filings}} for the campaigns this county knows
    and every year its filings are tagged with (zeros included)."""
    query = (select(Filing.campaign_year, Filing.status, func.count())
             .where(Filing.campaign_year.is_not(None))
             .group_by(Filing.campaign_year, Filing.status))
    known = select(Campaign.year)
    if years is not None:
        query = query.where(Filing.campaign_year.in_(years))
        known = known.where(Campaign.year.in_(years))
    out: dict[int, dict[str, int]] = {}
    for (year,) in session_or_conn.execute(known):
        out.setdefault(year, dict.fromkeys(COUNT_KEYS, 0))
    for year, status, number in session_or_conn.execute(query):
        row = out.setdefault(year, dict.fromkeys(COUNT_KEYS, 0))
        row[status] = row.get(status, 0) + number
    return out


def _published(conn) -> dict[int, dict | None]:
    return {year: counts for year, counts in conn.execute(
        select(ProgressSnapshot.year, ProgressSnapshot.counts))}


def publish_changes(db: Database, county: str, now: Callable[[], datetime] | None = None) -> list[dict]:
    """Queue a snapshot for every campaign year whose counts changed since the last one
    published; returns the snapshots queued (usually none)."""
    current = db.read(counts_by_year)
    published = db.read(_published)
    changed = sorted(y for y, counts in current.items() if counts != published.get(y))
    if not changed:
        return []
    queued = []
    with db.unit_of_work() as uow:
        s = uow.session
        insert_rows(s.connection(), ProgressSnapshot.__table__,
                    [{"year": y, "seq": 0, "counts": None, "as_of": None} for y in changed],
                    skip_conflicts=True)
        # locked first, counted after: a concurrent timer (another process of this county)
        # waits here and then counts what this one committed, or more
        rows = {r.year: r for r in s.execute(
            select(ProgressSnapshot).where(ProgressSnapshot.year.in_(changed))
            .order_by(ProgressSnapshot.year).with_for_update()).scalars()}
        fresh = counts_by_year(s, changed)
        as_of = (now or clock.now_utc)()
        for year in changed:
            row, counts = rows[year], fresh.get(year, dict.fromkeys(COUNT_KEYS, 0))
            if row.counts == counts:
                continue
            row.seq, row.counts, row.as_of = row.seq + 1, counts, as_of
            body = wire.progress_snapshot(county, year, as_of, counts)
            Outbox.add(uow, FILINGS_EXCHANGE, progress_routing_key(county), body,
                       headers={"x-cqo-type": PROGRESS_TYPE},
                       message_id=progress_message_id(county, year, row.seq))
            queued.append(body)
        uow.commit()
    for body in queued:
        log.info("campaign progress %s/%s queued: %s", county, body["year"], body["counts"])
    return queued
