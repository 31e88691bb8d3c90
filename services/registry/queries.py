"""Use cases that read the register, scoped to what the caller may see (DESIGN s. 6)."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlalchemy import func, select, text

from shared.auth import Principal
from shared.contracts import FILING_KINDS, OUTCOMES, jurisdiction
from shared.db import Database, UnitOfWork, execute_prepared
from shared.errors import CqoError, NotFound
from shared.jsontext import json_default
from shared.validators.uscc import validate_uscc
from services.registry import active_cqo
from services.registry.domain import active_cqo as rules
from services.registry.domain.oversight import today
from services.registry.models import Appointment, Enterprise, LedgerEntry
from services.registry.schemas import AwardCheckOut, LedgerPageOut

_award_out = AwardCheckOut()
_page_out = LedgerPageOut()


_APPOINTMENT_COLUMNS = (
    "id", "cqo_name", "id_type", "id_masked", "phone", "email", "position", "is_decision_level",
    "education_level", "title_level", "years_quality_work", "training_certificate",
    "appointed_by", "appointed_by_top_manager", "appointed_on", "letter_number", "letter_date",
    "term_end", "ended_on", "end_reason", "filing_id")
_LEDGER_COLUMNS = (
    "filing_id", "version", "kind", "channel", "campaign_year", "county", "uscc",
    "submitted_to_county_on", "received_at", "decided_at", "outcome", "reasons", "findings",
    "late", "days_late")
_HISTORY_ORDER = "appointed_on DESC, id DESC"
_LEDGER_ORDER = "received_at DESC, id DESC"

def _sql_case(column: str, names: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in names.items())
    return f"CASE {column} {whens} ELSE {column} END"


_DOCUMENT_APPOINTMENT = tuple(c for c in _APPOINTMENT_COLUMNS if c != "id")
_PG_APPOINTMENT = ", ".join(_DOCUMENT_APPOINTMENT)
_PG_LEDGER = ", ".join(c for c in _LEDGER_COLUMNS if c not in ("reasons", "findings"))

# The hot lookup (GET /enterprises/{uscc}) on PostgreSQL: one prepared statement, and the
# server writes the whole JSON document, so Python neither parses nor re-encodes it.
# Appointments are read once for both the history and the current CQO (the one not
# ended), each table in its index order (no sort). Other databases take three queries
# and the same document is built in Python.
_PG_ENTERPRISE = f"""
SELECT e.uscc, e.county, json_build_object(
  'uscc', e.uscc, 'name', e.name, 'county', e.county, 'category', e.category,
  'current_cqo', h.current, 'history', COALESCE(h.items, '[]'::json),
  'filings', COALESCE(f.items, '[]'::json))::text AS document
FROM enterprises e
LEFT JOIN LATERAL (
  SELECT json_agg(a) AS items,
         (array_agg(row_to_json(a)) FILTER (WHERE a.ended_on IS NULL))[1] AS current
  FROM (SELECT {_PG_APPOINTMENT} FROM appointments WHERE uscc = e.uscc
        ORDER BY {_HISTORY_ORDER}) a) h ON true
LEFT JOIN LATERAL (
  SELECT json_agg(l) AS items
  FROM (SELECT {_PG_LEDGER}, reasons::json AS reasons, findings::json AS findings,
               {_sql_case("kind", FILING_KINDS)} AS kind_name,
               {_sql_case("outcome", OUTCOMES)} AS outcome_name
        FROM filing_ledger WHERE uscc = e.uscc ORDER BY {_LEDGER_ORDER}) l) f ON true
WHERE e.uscc = $1
"""


def _not_found(uscc: str) -> NotFound:
    # an enterprise outside the caller's scope is reported as not found: its
    # existence is not the caller's business either
    return NotFound(f"未找到统一社会信用代码为 {uscc} 的企业备案信息", code="ENTERPRISE_NOT_FOUND")


def _visible_enterprise(uow: UnitOfWork, principal: Principal, uscc: str) -> Enterprise:
    uscc = validate_uscc(uscc, field="uscc")
    enterprise = uow.session.get(Enterprise, uscc)
    if enterprise is None or not principal.can_access_enterprise(enterprise.uscc, enterprise.county):
        raise _not_found(uscc)
    return enterprise


def _ledger_dict(row: dict) -> dict:
    row = dict(row)
    row.pop("id", None)
    for key in ("reasons", "findings"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key] or "[]")
    row["kind_name"] = FILING_KINDS.get(row["kind"], row["kind"])
    row["outcome_name"] = OUTCOMES.get(row["outcome"], row["outcome"])
    return row


def _pg_document(cursor, info: dict, uscc: str) -> tuple[str, str, str] | None:
    execute_prepared(cursor, info, "registry_enterprise", _PG_ENTERPRISE, (uscc,))
    return cursor.fetchone()


def _columns(model, names) -> list:
    return [model.__table__.c[name] for name in names]


def _enterprise_document(conn, uscc: str) -> tuple[str, str, str] | None:
    """(uscc, county, JSON document without county_name) or None. The columns are read
    through their types (booleans, dates, aware times), so that the document has the
    JSON types of PostgreSQL's (true, not 1; "...+00:00")."""
    row = conn.execute(select(Enterprise.uscc, Enterprise.name, Enterprise.county,
                              Enterprise.category).where(Enterprise.uscc == uscc)).mappings().first()
    if row is None:
        return None
    history = [dict(h) for h in conn.execute(
        select(*_columns(Appointment, _DOCUMENT_APPOINTMENT))
        .where(Appointment.uscc == uscc).order_by(text(_HISTORY_ORDER))).mappings()]
    filings = [_ledger_dict(f) for f in conn.execute(
        select(*_columns(LedgerEntry, _LEDGER_COLUMNS))
        .where(LedgerEntry.uscc == uscc).order_by(text(_LEDGER_ORDER))).mappings()]
    current = next((a for a in history if a["ended_on"] is None), None)
    document = {**row, "current_cqo": current, "history": history, "filings": filings}
    return row["uscc"], row["county"], json.dumps(document, ensure_ascii=False, default=json_default)


def enterprise(db: Database, principal: Principal, uscc: str) -> str:
    """The enterprise with its current CQO (ID masked), tenure history and filings, as
    the JSON text of the response (EnterpriseOut)."""
    uscc = validate_uscc(uscc, field="uscc")
    if db.is_postgres:
        found = db.read_raw(lambda cursor, info: _pg_document(cursor, info, uscc))
    else:
        found = db.read(lambda conn: _enterprise_document(conn, uscc))
    if found is None or not principal.can_access_enterprise(found[0], found[1]):
        raise _not_found(uscc)
    county_name = json.dumps(_county_name(found[1]), ensure_ascii=False)
    return f'{found[2][:-1]}, "county_name": {county_name}}}'


def _county_name(code: str) -> str:
    try:
        return jurisdiction().name(code)
    except CqoError:  # a county since removed from the jurisdiction keeps its code
        return code


def _fmt(day) -> str:
    return f"{day:%Y年%m月%d日}"


def _inactive_message(on, appointments: list[Appointment], lapsed_counts: bool) -> str:
    """Why there is no active CQO on `on`, from the latest appointment begun by then."""
    message = f"该企业在{_fmt(on)}没有在任的已备案首席质量官"
    last = max(appointments, key=lambda a: (a.appointed_on, a.id), default=None)
    if last is None:
        return message + "（此前未有首席质量官备案）"
    if last.ended_on is not None and last.ended_on <= on:
        return message + f"（原首席质量官已于{_fmt(last.ended_on)}离任）"
    if not lapsed_counts:
        return message + f"（首席质量官任期已于{_fmt(last.term_end)}届满，未办理续任备案）"
    return message


def award_check(uow: UnitOfWork, principal: Principal, uscc: str, on=None) -> dict:
    """Art. 16: does the enterprise have an active filed CQO on `on` (default today), and
    since when without a break (services/registry/domain/active_cqo.py)."""
    found = _visible_enterprise(uow, principal, uscc)
    on = on or today()
    lapsed_counts = active_cqo.lapsed_counts_policy()
    appointments = list(uow.session.scalars(select(Appointment).where(
        Appointment.uscc == found.uscc, Appointment.appointed_on <= on)))
    current = next(iter(rules.active_on(appointments, on, lapsed_counts=lapsed_counts)), None)
    since = rules.active_since(appointments, on, lapsed_counts=lapsed_counts)
    if current is None:
        message = _inactive_message(on, appointments, lapsed_counts)
    else:
        message = f"该企业自{_fmt(since)}起至{_fmt(on)}连续有在任的已备案首席质量官"
    return _award_out.dump({
        "uscc": found.uscc, "name": found.name, "on": on, "has_active_cqo": current is not None,
        "since": since, "cqo_name": current.cqo_name if current else None,
        "term_end": current.term_end if current else None,
        "lapsed_counts_as_coverage": lapsed_counts, "message": message})


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
    items = [_ledger_dict({c: getattr(r, c) for c in _LEDGER_COLUMNS}) for r in rows]
    return _page_out.dump({"items": items, "total": total,
                           "page": page, "per_page": per_page})
