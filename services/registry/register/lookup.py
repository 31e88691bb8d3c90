"""The enterprise lookup (GET /enterprises/{uscc}): current CQO (ID masked), tenure history and filings, as one JSON document."""
from __future__ import annotations

import json

from sqlalchemy import select, text

from shared.auth import Principal
from shared.contracts import FILING_KINDS, OUTCOMES, county_name
from shared.db import Database, execute_prepared
from shared.jsontext import json_default
from shared.validators.uscc import validate_uscc
from services.registry.models import Appointment, Enterprise, LedgerEntry
from services.registry.register.ledger import LEDGER_COLUMNS, LEDGER_ORDER, ledger_dict
from services.registry.enterprises import enterprise_not_found


_APPOINTMENT_COLUMNS = (
    "id", "cqo_name", "id_type", "id_masked", "phone", "email", "position", "is_decision_level",
    "education_level", "title_level", "years_quality_work", "training_certificate",
    "appointed_by", "appointed_by_top_manager", "appointed_on", "letter_number", "letter_date",
    "term_end", "ended_on", "end_reason", "filing_id")


_HISTORY_ORDER = "appointed_on DESC, id DESC"


def _sql_case(column: str, names: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in names.items())
    return f"CASE {column} {whens} ELSE {column} END"


_DOCUMENT_APPOINTMENT = tuple(c for c in _APPOINTMENT_COLUMNS if c != "id")
_PG_APPOINTMENT = ", ".join(_DOCUMENT_APPOINTMENT)
_PG_LEDGER = ", ".join(c for c in LEDGER_COLUMNS if c not in ("reasons", "findings"))

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
        FROM filing_ledger WHERE uscc = e.uscc ORDER BY {LEDGER_ORDER}) l) f ON true
WHERE e.uscc = $1
"""


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
    filings = [ledger_dict(f) for f in conn.execute(
        select(*_columns(LedgerEntry, LEDGER_COLUMNS))
        .where(LedgerEntry.uscc == uscc).order_by(text(LEDGER_ORDER))).mappings()]
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
        raise enterprise_not_found(uscc)
    name = json.dumps(county_name(found[1]), ensure_ascii=False)
    return f'{found[2][:-1]}, "county_name": {name}}}'
