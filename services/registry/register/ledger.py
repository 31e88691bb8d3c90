"""The filing ledger (art. 12): every decision of the city, filtered and paged in the caller's scope."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlalchemy import select

from shared.auth import Principal
from shared.contracts import FILING_KINDS, OUTCOMES
from shared.db import UnitOfWork
from shared.paging import page_of
from services.registry.counties import county_scope
from services.registry.models import Enterprise, LedgerEntry
from services.registry.register.schemas import LedgerPageOut


_page_out = LedgerPageOut()


LEDGER_COLUMNS = (
    "filing_id", "version", "kind", "channel", "campaign_year", "county", "uscc",
    "submitted_to_county_on", "received_at", "decided_at", "outcome", "reasons", "findings",
    "late", "days_late")


LEDGER_ORDER = "received_at DESC, id DESC"


def ledger_dict(row: dict) -> dict:
    row = dict(row)
    row.pop("id", None)
    for key in ("reasons", "findings"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key] or "[]")
    row["kind_name"] = FILING_KINDS.get(row["kind"], row["kind"])
    row["outcome_name"] = OUTCOMES.get(row["outcome"], row["outcome"])
    return row


def ledger(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    query = select(LedgerEntry)
    county = county_scope(principal, filters.get("county"))
    if county is not None:
        query = query.where(LedgerEntry.county == county)
    for key in ("uscc", "kind", "channel", "outcome", "late"):
        if key in filters:
            query = query.where(getattr(LedgerEntry, key) == filters[key])
    if "category" in filters:
        query = query.join(Enterprise, Enterprise.uscc == LedgerEntry.uscc).where(
            Enterprise.category == filters["category"])
    if "received_from" in filters:
        query = query.where(LedgerEntry.received_at >= datetime.combine(filters["received_from"], time()))
    if "received_to" in filters:
        query = query.where(LedgerEntry.received_at <
                            datetime.combine(filters["received_to"] + timedelta(days=1), time()))
    page, page_size = filters["page"], filters["page_size"]
    total, rows = page_of(uow.session, query.order_by(LedgerEntry.received_at.desc(), LedgerEntry.id.desc()),
                          page, page_size)
    items = [ledger_dict({c: getattr(r, c) for c in LEDGER_COLUMNS}) for r in rows]
    return _page_out.dump({"items": items, "total": total,
                           "page": page, "page_size": page_size})
