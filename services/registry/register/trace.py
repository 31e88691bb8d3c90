"""A filing's hops as the city saw them (`GET /api/v1/filings/{id}/trace`, shared/tracing.py):
for each version received, the shovel hop it came by (forward headers), its receipt,
the decision and when the decision's message was published. The county answers for the
hops before and after (`cqo trace` merges both)."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock, tracing
from shared.auth import Principal
from shared.contracts import OUTCOMES
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.messaging.outbox import written_and_sent
from services.registry.models import LedgerEntry


def trace(uow: UnitOfWork, principal: Principal, filing_id: str) -> dict:
    rows = uow.session.execute(select(
        LedgerEntry.version, LedgerEntry.county, LedgerEntry.received_at, LedgerEntry.decided_at,
        LedgerEntry.outcome, LedgerEntry.message_id, LedgerEntry.shovelled_at, LedgerEntry.shovel,
        LedgerEntry.decision_message_id).where(LedgerEntry.filing_id == filing_id)
        .order_by(LedgerEntry.version)).all()
    if not rows:
        raise NotFound("市局没有收到该备案", code="FILING_NOT_FOUND")
    county = rows[0].county
    principal.require_county(county)  # a county officer: their own county's filings only
    published = written_and_sent(uow.session, (r.decision_message_id for r in rows))
    hops = []
    for r in rows:
        if r.shovelled_at is not None:
            hops.append(tracing.Hop("shovelled", r.version, clock.aware(r.shovelled_at), r.message_id,
                                    by=r.shovel, precision_s=1))
        hops.append(tracing.Hop("received", r.version, clock.aware(r.received_at), r.message_id))
        if r.decided_at is not None:
            hops.append(tracing.Hop("decided", r.version, clock.aware(r.decided_at),
                                    detail=OUTCOMES.get(r.outcome, r.outcome)))
        sent = published.get(r.decision_message_id, (None, None))[1]
        if sent is not None:
            hops.append(tracing.Hop("decision_published", r.version, sent, r.decision_message_id))
    return tracing.answer(filing_id, site=tracing.CITY, county=county, hops=hops)
