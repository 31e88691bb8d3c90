"""Use cases that read the register, scoped to what the caller may see (DESIGN s. 6)."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from shared.auth import Principal
from shared.contracts import FILING_KINDS, OUTCOMES, jurisdiction
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.validators.uscc import validate_uscc
from services.registry.models import Appointment, Enterprise, LedgerEntry
from services.registry.schemas import (AppointmentOut, AwardCheckOut, EnterpriseOut,
                                       LedgerPageOut)

_enterprise_out = EnterpriseOut()
_award_out = AwardCheckOut()
_page_out = LedgerPageOut()


def _visible_enterprise(uow: UnitOfWork, principal: Principal, uscc: str) -> Enterprise:
    uscc = validate_uscc(uscc, field="uscc")
    enterprise = uow.session.get(Enterprise, uscc)
    # an enterprise outside the caller's scope is reported as not found: its
    # existence is not the caller's business either
    if enterprise is None or not principal.can_access_enterprise(enterprise.uscc, enterprise.county):
        raise NotFound(f"未找到统一社会信用代码为 {uscc} 的企业备案信息", code="ENTERPRISE_NOT_FOUND")
    return enterprise


def _ledger_dict(row: LedgerEntry) -> dict:
    return {**{c: getattr(row, c) for c in (
        "filing_id", "version", "kind", "channel", "campaign_year", "county", "uscc",
        "submitted_to_county_on", "received_at", "decided_at", "outcome", "late", "days_late")},
        "kind_name": FILING_KINDS.get(row.kind, row.kind),
        "outcome_name": OUTCOMES.get(row.outcome, row.outcome),
        "reasons": json.loads(row.reasons or "[]"), "findings": json.loads(row.findings or "[]")}


def enterprise(uow: UnitOfWork, principal: Principal, uscc: str) -> dict:
    found = _visible_enterprise(uow, principal, uscc)
    session = uow.session
    history = session.scalars(select(Appointment).where(Appointment.uscc == found.uscc)
                              .order_by(Appointment.appointed_on.desc(), Appointment.id.desc())).all()
    filings = session.scalars(select(LedgerEntry).where(LedgerEntry.uscc == found.uscc)
                              .order_by(LedgerEntry.received_at.desc(), LedgerEntry.id.desc())).all()
    current = next((a for a in history if a.ended_on is None), None)
    return _enterprise_out.dump({
        "uscc": found.uscc, "name": found.name, "county": found.county,
        "county_name": _county_name(found.county), "category": found.category,
        "current_cqo": current, "history": history,
        "filings": [_ledger_dict(f) for f in filings]})


def _county_name(code: str) -> str:
    try:
        return jurisdiction().name(code)
    except Exception:
        return code


def award_check(uow: UnitOfWork, principal: Principal, uscc: str) -> dict:
    found = _visible_enterprise(uow, principal, uscc)
    current = uow.session.scalars(select(Appointment).where(
        Appointment.uscc == found.uscc, Appointment.ended_on.is_(None))
        .order_by(Appointment.id.desc()).limit(1)).first()
    if current is None:
        message = "该企业目前没有在任的已备案首席质量官"
    else:
        message = f"该企业自{current.appointed_on:%Y年%m月%d日}起有在任的已备案首席质量官"
    return _award_out.dump({
        "uscc": found.uscc, "name": found.name, "has_active_cqo": current is not None,
        "since": current.appointed_on if current else None,
        "cqo_name": current.cqo_name if current else None, "message": message})


def ledger(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    query = select(LedgerEntry)
    if principal.role == "county_officer":
        query = query.where(LedgerEntry.county == principal.county)
    for key in ("county", "uscc", "kind", "channel", "outcome", "late"):
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
    total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
    page, per_page = filters["page"], filters["per_page"]
    rows = uow.session.scalars(query.order_by(LedgerEntry.received_at.desc(), LedgerEntry.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)).all()
    return _page_out.dump({"items": [_ledger_dict(r) for r in rows], "total": total,
                           "page": page, "per_page": per_page})
