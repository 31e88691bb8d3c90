"""What the city sends this county: its decisions on the county's filings
(filing.<county>.decisions) and its notices (filing.<county>.notices). Each message is
applied once (inbox by message id) in one transaction; a bad one raises and the
consumer dead-letters it."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from shared.contracts import DecisionBatchSchema
from shared.db import insert_rows
from shared.errors import ValidationFailed
from shared.messaging.inbox import Inbox
from shared.tracing import Forwarded

from services.filing import domain, notices
from services.filing.base import CountyUseCases, in_chunks, jsonable
from services.filing.models import Campaign, Decision, Filing, Notice
from services.filing.schemas import NoticeSchema

log = logging.getLogger(__name__)


class Inbound(CountyUseCases):
    def apply_decisions(self, message_id: str | None, body, forwarded: Forwarded | None = None) -> dict:
        """filing.<county>.decisions: idempotent by message id (inbox) and by
        (filing_id, version, outcome); a final outcome is never overturned. `forwarded`:
        the shovel hop the message came by, kept with each decision (trace)."""
        batch = DecisionBatchSchema().load(body)
        wrong = {batch["county"]} | {d["county"] for d in batch["decisions"]}
        wrong.discard(self.county)
        if wrong:
            raise ValidationFailed(f"decisions for county {sorted(wrong)} delivered to {self.county}",
                                   code="DECISION_WRONG_COUNTY")
        stats = {"received": len(batch["decisions"]), "applied": 0, "recorded": 0,
                 "duplicates": 0, "unknown": 0}
        received_at = self.now()
        with self.db.unit_of_work() as uow:
            s = uow.session
            if message_id and not Inbox.first_time(uow, self.settings.decisions_consumer, message_id):
                log.info("decision message %s already applied", message_id)
                return {**stats, "duplicates": stats["received"]}
            ids = sorted({str(d["filing_id"]) for d in batch["decisions"]})
            state: dict[str, tuple[str, int]] = {}  # filing id -> (status, version)
            seen: set[tuple] = set()
            for chunk in in_chunks(ids):
                # locked in id order: concurrent decision messages cannot deadlock
                state.update((r.id, (r.status, r.version)) for r in s.execute(
                    select(Filing.id, Filing.status, Filing.version).where(Filing.id.in_(chunk))
                    .order_by(Filing.id).with_for_update()))
                seen.update(s.execute(select(Decision.filing_id, Decision.version, Decision.outcome)
                                      .where(Decision.filing_id.in_(chunk))).tuples())
            rows, changes = [], {}
            # "waiting" before the final outcome when one message carries both
            for d in sorted(batch["decisions"], key=lambda d: (d["decided_at"], d["outcome"] != "waiting")):
                key = (str(d["filing_id"]), d["version"], d["outcome"])
                if key in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(key)
                applied = False
                if key[0] not in state:
                    stats["unknown"] += 1
                    log.warning("decision for unknown filing %s v%s kept, not applied", *key[:2])
                else:
                    status, version = state[key[0]]
                    new = domain.status_after_decision(status, version, d["version"], d["outcome"])
                    if new is not None:
                        applied = True
                        state[key[0]] = (new, version)
                        changes[key[0]] = (new, d["outcome"], d["decided_at"], d["late"], d["days_late"])
                rows.append({
                    "filing_id": key[0], "version": d["version"], "outcome": d["outcome"],
                    "reasons": jsonable(d["reasons"]), "findings": jsonable(d["findings"]),
                    "late": d["late"], "days_late": d["days_late"], "deadline": d["deadline"],
                    "decided_at": d["decided_at"], "received_at": received_at,
                    "message_id": message_id, "applied": applied,
                    "shovelled_at": forwarded.at if forwarded else None,
                    "shovel": forwarded.by if forwarded else None})
                stats["applied" if applied else "recorded"] += 1
            # one UPDATE per distinct outcome, not one round trip per filing
            groups: dict[tuple, list[str]] = {}
            for fid, values in changes.items():
                groups.setdefault(values, []).append(fid)
            for (status, outcome, decided_at, late, days_late), fids in groups.items():
                for chunk in in_chunks(fids):
                    s.execute(update(Filing).where(Filing.id.in_(chunk)).values(
                        status=status, decision_outcome=outcome, decided_at=decided_at, late=late,
                        days_late=days_late, updated_at=received_at)
                        .execution_options(synchronize_session=False))
            # decisions about locked filings cannot race (the lock serialises them, and
            # `seen` was read under it): a conflict there would be a bug, so it is not
            # skipped. Decisions about unknown filings have no lock to serialise them.
            table = Decision.__table__
            insert_rows(s.connection(), table, [r for r in rows if r["filing_id"] in state])
            insert_rows(s.connection(), table, [r for r in rows if r["filing_id"] not in state],
                        skip_conflicts=True)
            uow.commit()
        for row in rows:  # one line per decision, its filing id the correlation id
            log.info("decision on filing %s v%s %s: %s", row["filing_id"], row["version"],
                     "applied" if row["applied"] else "recorded", row["outcome"],
                     extra={"filing_id": row["filing_id"]})
        log.info("decisions applied: %s", stats)
        return stats

    def apply_notice(self, message_id: str | None, body) -> str:
        """filing.<county>.notices: campaign.opened / campaign.closed into `campaigns`;
        every notice (also recommendations, term reminders, unknown future types) into
        the notices inbox (what a notice is: notices.py)."""
        notice = NoticeSchema().load(body)
        kind = notice["type"]
        if kind not in notices.CAMPAIGN_TYPES:
            return self._keep_notice(message_id, body)
        stored = notices.parse(body, self.county)
        data, now = notice["campaign"], self.now()
        with self.db.unit_of_work() as uow:
            s = uow.session
            if message_id and not Inbox.first_time(uow, self.settings.notices_consumer, message_id):
                return "duplicate"
            campaign = s.execute(select(Campaign).where(Campaign.year == data["year"])
                                 .with_for_update()).scalar_one_or_none()
            if campaign is None:
                day = self.clock()
                campaign = Campaign(year=data["year"], opens_on=data.get("opens_on") or day,
                                    closes_on=data.get("closes_on") or day, status="open",
                                    opened_at=now, updated_at=now)
                s.add(campaign)
            for name in ("notice_number", "title", "text", "opens_on", "closes_on"):
                if data.get(name) is not None:
                    setattr(campaign, name, data[name])
            if kind == "campaign.closed":
                campaign.status, campaign.closed_at = "closed", now
            elif campaign.closed_at is None:
                # closing is final: a late or repeated "opened" never reopens a campaign
                campaign.status = "open"
            campaign.updated_at = now
            _record(s, stored, message_id, now)
            uow.commit()
        log.info("notice %s for campaign %s applied", kind, data["year"])
        return kind

    def _keep_notice(self, message_id: str | None, body) -> str:
        """A notice that changes nothing else here: keep it, once per message id."""
        parsed = notices.parse(body, self.county)  # invalid ones fail before any write
        received_at = self.now()
        with self.db.unit_of_work() as uow:
            if message_id and not Inbox.first_time(uow, self.settings.notices_consumer, message_id):
                return "duplicate"
            _record(uow.session, parsed, message_id, received_at)
            uow.commit()
        return parsed["type"]


def _record(session, parsed: dict, message_id: str | None, received_at: datetime) -> Notice:
    """Add a parsed notice to the caller's transaction (the inbox check is the caller's)."""
    notice = Notice(message_id=message_id or None, received_at=received_at, **parsed)
    session.add(notice)
    return notice
