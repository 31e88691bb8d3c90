"""What the county's use-case classes share: their shape (database, settings, clocks),
loading a filing, the open campaign, and the conversions between Python values and
what the database stores."""
from __future__ import annotations

from datetime import date, datetime
from typing import Callable, Iterable

from sqlalchemy import select

from shared import clock as wall_clock

from shared.db import Database
from shared.errors import NotFound

from services.filing import domain
from services.filing.models import Campaign, Filing
from services.filing.settings import Settings

IN_CHUNK = 500  # ids per IN (...) clause: SQLite caps bound parameters


class CountyUseCases:
    """One county's database and settings; the clocks are parameters so tests can move
    the date (campaign windows, deadlines)."""

    def __init__(self, db: Database, settings: Settings, *,
                 clock: Callable[[], date] | None = None,
                 now: Callable[[], datetime] | None = None):
        self.db, self.settings = db, settings
        # looked up on each call, so that patching shared.clock reaches a running app
        self.clock = clock or (lambda: wall_clock.today())
        self.now = now or (lambda: wall_clock.now_utc())

    @property
    def county(self) -> str:
        return self.settings.county


def jsonable(value):
    """The loaded form (dates) as stored JSON (ISO strings)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def in_chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start:start + IN_CHUNK]


def load_filing(session, filing_id: str, *, lock: bool = False) -> Filing:
    stmt = select(Filing).where(Filing.id == str(filing_id))
    if lock:
        stmt = stmt.with_for_update()
    filing = session.execute(stmt).scalar_one_or_none()
    if filing is None:
        raise NotFound("备案不存在", code="FILING_NOT_FOUND")
    return filing


def open_campaign(session, day: date) -> domain.CampaignWindow | None:
    """The campaign the city has opened and whose window holds `day`, if any."""
    rows = session.execute(select(Campaign).where(Campaign.status == "open")).scalars()
    return domain.current_campaign(
        (domain.CampaignWindow(c.year, c.opens_on, c.closes_on) for c in rows), day)
