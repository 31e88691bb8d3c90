"""Progress snapshots on both sides: the county publishes only changed counts, numbered,
through its outbox; the registry keeps the newest per (county, year) whatever the arrival
order, and dead-letters malformed or misrouted ones. SQLite and PostgreSQL."""
from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update

from services.filing import progress as county_progress
from services.filing.service import MIGRATIONS as FILING_MIGRATIONS
from services.filing.models import Campaign, Filing
from shared.migrate import upgrade
from shared.messaging.models import OutboxMessage

pytestmark = pytest.mark.integration

COUNTY, YEAR = "130921", 2026
ZERO = dict.fromkeys(("submitted", "returned", "approved", "forwarded", "accepted", "rejected"), 0)


def snapshot(as_of: datetime, county: str = COUNTY, **counts) -> dict:
    return {"type": "campaign.progress", "county": county, "year": YEAR,
            "as_of": as_of.isoformat(), "counts": {**ZERO, **counts}}


def kept(db) -> dict:
    row = db.read(lambda conn: conn.execute(text(
        "SELECT counts, message_id FROM county_campaign_progress WHERE county = :c AND year = :y"),
        {"c": COUNTY, "y": YEAR}).first())
    return {} if row is None else {"counts": json.loads(row[0]), "message_id": row[1]}


def applied(db, message_id: str) -> bool:
    return db.read(lambda conn: conn.execute(text(
        "SELECT count(*) FROM inbox_messages WHERE message_id = :m"), {"m": message_id}).scalar()) == 1


def dead(db, message_id: str) -> str | None:
    return db.read(lambda conn: conn.execute(text(
        "SELECT error_code FROM dead_letters WHERE message_id = :m"), {"m": message_id}).scalar())


def wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_registry_keeps_the_newest_snapshot(registry):
    side, _, db = registry
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    key = f"filing.{COUNTY}.progress"

    def send(body, message_id=None, routing_key=key):
        message_id = message_id or f"progress:{COUNTY}:{YEAR}:{uuid.uuid4().hex[:8]}"
        side.publish(body, routing_key=routing_key, message_id=message_id)
        return message_id

    second = send(snapshot(t0 + timedelta(minutes=5), submitted=4, returned=1))
    wait(lambda: applied(db, second))
    first = send(snapshot(t0, submitted=9))  # older, arrives later: ignored
    wait(lambda: applied(db, first))
    assert kept(db) == {"counts": {**ZERO, "submitted": 4, "returned": 1}, "message_id": second}
    third = send(snapshot(t0 + timedelta(minutes=9), submitted=3, approved=1, waiting=2))
    wait(lambda: applied(db, third))
    assert kept(db)["counts"] == {**ZERO, "submitted": 3, "approved": 1, "waiting": 2}
    send(snapshot(t0 + timedelta(hours=1), submitted=100), message_id=third)  # a redelivered id
    time.sleep(0.5)
    assert kept(db)["message_id"] == third

    bad = {
        "misrouted": send(snapshot(t0 + timedelta(hours=2)), routing_key="filing.130922.progress"),
        "counts-missing": send({**snapshot(t0 + timedelta(hours=2)), "counts": {"submitted": 1}}),
        "naive-time": send({**snapshot(t0), "as_of": "2026-03-02T08:00:00"}),
        "negative": send(snapshot(t0 + timedelta(hours=2), submitted=-1)),
    }
    wait(lambda: all(dead(db, m) for m in bad.values()))
    assert {k: dead(db, m) for k, m in bad.items()} == {
        "misrouted": "PROGRESS_COUNTY_MISMATCH", "counts-missing": "VALIDATION_FAILED",
        "naive-time": "VALIDATION_FAILED", "negative": "VALIDATION_FAILED"}
    assert kept(db)["message_id"] == third
    # a filing after the snapshots: the intake path is untouched
    filing = side.filing(n=42)
    side.publish(filing)
    assert side.decision_of(filing)["outcome"] == "accepted"


def _filing(n: int, status: str, year: int | None = YEAR) -> Filing:
    now = datetime.now(timezone.utc)
    return Filing(id=str(uuid.uuid4()), county=COUNTY, uscc=f"{n:018d}", enterprise_name="企业",
                  category="industrial_above_scale", kind="establishment",
                  channel="campaign" if year else "proactive", campaign_year=year, status=status,
                  version=1, submitted_to_county_on=date(2026, 3, 1), created_at=now,
                  updated_at=now, created_by="enterprise", cqo_name="张三", cqo_id_masked="1309**")


def test_county_publishes_changed_counts_only(database):
    upgrade(database, FILING_MIGRATIONS)
    assert county_progress.publish_changes(database, COUNTY) == []  # no campaign, no filings
    with database.unit_of_work() as uow:
        now = datetime.now(timezone.utc)
        uow.session.add(Campaign(year=YEAR, opens_on=date(2026, 3, 1), closes_on=date(2026, 4, 30),
                                 status="open", opened_at=now, updated_at=now))
        uow.commit()
    [first] = county_progress.publish_changes(database, COUNTY)  # the campaign is known: zeros
    assert first["counts"] == dict.fromkeys(county_progress.COUNT_KEYS, 0)
    with database.unit_of_work() as uow:
        uow.session.add_all([_filing(1, "submitted"), _filing(2, "submitted"), _filing(3, "returned"),
                             _filing(4, "approved"), _filing(5, "submitted", year=None)])
        uow.commit()
    [second] = county_progress.publish_changes(database, COUNTY)
    assert {k: second["counts"][k] for k in ("submitted", "returned", "approved", "forwarded")} == {
        "submitted": 2, "returned": 1, "approved": 1, "forwarded": 0}
    assert county_progress.publish_changes(database, COUNTY) == []  # nothing changed
    with database.unit_of_work() as uow:
        uow.session.execute(update(Filing).where(Filing.status == "approved").values(status="forwarded"))
        uow.commit()
    [third] = county_progress.publish_changes(database, COUNTY)
    assert (third["counts"]["approved"], third["counts"]["forwarded"]) == (0, 1)
    with database.unit_of_work() as uow:
        rows = uow.session.execute(select(OutboxMessage.message_id, OutboxMessage.exchange,
                                          OutboxMessage.routing_key, OutboxMessage.payload)
                                   .order_by(OutboxMessage.seq)).all()
    assert [r.message_id for r in rows] == [f"progress:{COUNTY}:{YEAR}:{n}" for n in (1, 2, 3)]
    assert {(r.exchange, r.routing_key) for r in rows} == {("cqo.filings", f"filing.{COUNTY}.progress")}
    body = json.loads(rows[-1].payload)
    assert body["type"] == "campaign.progress" and body["county"] == COUNTY and body["year"] == YEAR
    assert datetime.fromisoformat(body["as_of"]).tzinfo is not None
