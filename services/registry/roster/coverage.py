"""Use cases: coverage of the above-scale roster by filed CQOs (art. 4), and its export.

An enterprise on the year's roster is covered on a date D when it has an active CQO on
D, as services/registry/active_cqo.py defines it for the whole registry: appointed on or
before D, not ended by D (`ended_on` NULL or after D), and whose term has not run out
(`term_end` >= D). A lapsed term does not count unless the policy
LAPSED_COUNTS_AS_COVERAGE says so (art. 5; docs/architecture.md). An enterprise is counted in the
county the roster of that year gives (one that moved is on the new county's roster).

Why an enterprise is not covered:
  never_filed  从未备案          no appointment on or before D
  lapsed       任期届满未续任    still in post, but the term ended before D
  ended        已撤销/离任       every appointment had ended by D

The per-county table is one SQL aggregate: the appointments grouped by enterprise into
a state (2 in post and in term, 1 in post but lapsed, 0 ended), hash-joined to the
roster of the year and grouped by county and category.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import date
from typing import Iterator

from sqlalchemy import Date, Integer, String, bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared import clock
from shared.contracts import county_name, jurisdiction
from shared.db import Database, UnitOfWork
from services.registry import active_cqo
from services.registry.active_cqo import lapsed_counts_policy
from services.registry.roster.layout import ROSTER_CATEGORIES


REASONS = {"never_filed": "从未备案", "lapsed": "任期届满未续任", "ended": "已撤销/离任"}
COUNTS = ("roster_size", "covered", "uncovered", "never_filed", "lapsed", "ended")


# --- SQL ------------------------------------------------------------------------------------
# state per enterprise on :as_of; the CASE yields 2 / 1 / 0 as in the module docstring,
# from the parts of the one rule (2: active; 1: active only where lapsed terms count)
_STATE = f"""
SELECT uscc, MAX(CASE WHEN {active_cqo.not_ended()}
                      THEN CASE WHEN {active_cqo.in_term()} THEN 2 ELSE 1 END
                      ELSE 0 END) AS state
FROM appointments WHERE {active_cqo.started()} GROUP BY uscc
"""


def _filters(county: str | None, category: str | None) -> str:
    where = "r.year = :year"
    if county:
        where += " AND r.county = :county"
    if category:
        where += " AND r.category = :category"
    return where


_TYPES = {"as_of": Date(), "year": Integer(), "county": String(), "category": String(),
          "covered_state": Integer(), "limit": Integer(), "offset": Integer()}


def _statement(sql: str, dates=(), **values):
    """text(sql) with typed parameters and result dates (dates stay dates on SQLite too),
    and the values the SQL actually uses."""
    used = {k: v for k, v in values.items() if f":{k}" in sql}
    statement = text(sql).bindparams(*[bindparam(k, type_=_TYPES[k]) for k in used])
    return (statement.columns(**{c: Date() for c in dates}) if dates else statement), used


def _aggregate_sql(county, category) -> str:
    return f"""
WITH s AS ({_STATE})
SELECT r.county, r.category, COUNT(*) AS roster_size,
       SUM(CASE WHEN s.state IS NULL THEN 1 ELSE 0 END) AS never_filed,
       SUM(CASE WHEN s.state = 1 THEN 1 ELSE 0 END) AS lapsed,
       SUM(CASE WHEN s.state = 0 THEN 1 ELSE 0 END) AS ended
FROM roster_entries r LEFT JOIN s ON s.uscc = r.uscc
WHERE {_filters(county, category)}
GROUP BY r.county, r.category
"""


def _uncovered_sql(county, category, reason, *, paged: bool) -> str:
    """A page of uncovered roster rows (the last CQO is added per page), or all of them
    with the last CQO joined in (exports; a window over the appointments)."""
    # covered_state: 2 normally; 1 when a lapsed term still counts as coverage
    condition = {"never_filed": "s.state IS NULL", "lapsed": "s.state = 1 AND s.state < :covered_state",
                 "ended": "s.state = 0"}.get(reason, "(s.state IS NULL OR s.state < :covered_state)")
    if paged:
        return f"""
WITH s AS ({_STATE})
SELECT r.uscc, r.name, r.county, r.category, r.contact_person, r.phone, r.email, s.state
FROM roster_entries r LEFT JOIN s ON s.uscc = r.uscc
WHERE {_filters(county, category)} AND {condition}
ORDER BY r.county, r.uscc LIMIT :limit OFFSET :offset
"""
    return f"""
WITH s AS ({_STATE}),
latest AS (
    SELECT uscc, cqo_name, term_end, ended_on, end_reason,
           ROW_NUMBER() OVER (PARTITION BY uscc ORDER BY appointed_on DESC, id DESC) AS n
    FROM appointments WHERE appointed_on <= :as_of)
SELECT r.uscc, r.name, r.county, r.category, r.contact_person, r.phone, r.email, s.state,
       l.cqo_name AS last_cqo_name, l.term_end AS last_term_end, l.ended_on, l.end_reason
FROM roster_entries r LEFT JOIN s ON s.uscc = r.uscc
LEFT JOIN latest l ON l.uscc = r.uscc AND l.n = 1
WHERE {_filters(county, category)} AND {condition}
ORDER BY r.county, r.uscc
"""


_LATEST_SQL = """
SELECT uscc, cqo_name, appointed_on, term_end, ended_on, end_reason FROM appointments
WHERE appointed_on <= :as_of AND uscc IN :usccs ORDER BY uscc, appointed_on, id
"""


# PostgreSQL settings of the coverage queries (SET LOCAL: this transaction only): the
# per-enterprise aggregate fits in memory instead of spilling, JIT compilation costs more
# than it saves here, and one parallel worker beats two (each computes the aggregate).
_PG_SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off",
                "SET LOCAL max_parallel_workers_per_gather = 1")


def _tune(conn: Connection) -> None:
    if conn.dialect.name == "postgresql" and conn.in_transaction():
        for statement in _PG_SETTINGS:
            conn.exec_driver_sql(statement)


@contextmanager
def _connection(source) -> Iterator[Connection]:
    """A connection in a transaction, from a Database (its own, read only), a UnitOfWork,
    a Session or a Connection (the assessment report calls in with its own unit of
    work; the settings above then hold for the rest of that transaction)."""
    if isinstance(source, Database):
        with source.engine.connect() as conn:
            transaction = conn.begin()
            try:
                _tune(conn)
                yield conn
            finally:
                transaction.rollback()  # nothing was written
        return
    if isinstance(source, UnitOfWork):
        conn = source.session.connection()
    elif isinstance(source, Session):
        conn = source.connection()
    elif isinstance(source, Connection):
        conn = source
    else:
        raise TypeError(f"expected a Database, UnitOfWork, Session or Connection, not {type(source)!r}")
    _tune(conn)
    yield conn


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def coverage_counts(roster_size=0, never_filed=0, lapsed=0, ended=0, *, lapsed_counts: bool) -> dict:
    uncovered = never_filed + ended + (0 if lapsed_counts else lapsed)
    covered = roster_size - uncovered
    return {"roster_size": roster_size, "covered": covered, "uncovered": uncovered,
            "rate": _rate(covered, roster_size), "never_filed": never_filed,
            "lapsed": lapsed, "ended": ended}


def _add(total: dict, part: dict) -> None:
    for key in ("roster_size", "never_filed", "lapsed", "ended"):
        total[key] = total.get(key, 0) + part.get(key, 0)


# --- the per-county table -------------------------------------------------------------------
def per_county(db_or_uow, year: int, as_of: date | None = None, *, county: str | None = None,
               category: str | None = None, lapsed_counts: bool | None = None,
               include_empty: bool = True) -> list[dict]:
    """Coverage per county (sorted by code) for the roster of `year` on `as_of` (today).

    Each row: county, county_name, roster_size, covered, uncovered, rate (0..1, None for
    an empty roster), never_filed, lapsed, ended, and by_category {category: the same
    counts}. `lapsed` is the number of roster enterprises whose CQO's term ran out; they
    are uncovered unless `lapsed_counts` (default: the deployment's policy).
    With `include_empty`, counties of the jurisdiction without roster rows appear with 0.
    """
    as_of = as_of or clock.today()
    lapsed_counts = lapsed_counts_policy() if lapsed_counts is None else lapsed_counts
    statement, params = _statement(_aggregate_sql(county, category), as_of=as_of, year=year,
                                   county=county, category=category)
    raw: dict[str, dict[str, dict]] = {}
    with _connection(db_or_uow) as conn:
        for row in conn.execute(statement, params).mappings():
            raw.setdefault(row["county"], {})[row["category"]] = {
                k: int(row[k] or 0) for k in ("roster_size", "never_filed", "lapsed", "ended")}
    if include_empty:
        codes = [county] if county else [d.code for d in jurisdiction()]
        for code in codes:
            raw.setdefault(code, {})
    categories = [category] if category else list(ROSTER_CATEGORIES)
    out = []
    for code in sorted(raw):
        total: dict = {}
        by_category = {}
        for cat in sorted(set(categories) | set(raw[code])):
            part = raw[code].get(cat, {})
            _add(total, part)
            by_category[cat] = coverage_counts(**part, lapsed_counts=lapsed_counts)
        out.append({"county": code, "county_name": county_name(code),
                    **coverage_counts(**total, lapsed_counts=lapsed_counts), "by_category": by_category})
    return out


def summary(db_or_uow, year: int, as_of: date | None = None, *, county: str | None = None,
            category: str | None = None, lapsed_counts: bool | None = None) -> dict:
    """The per-county table, the city-wide totals and the totals per category."""
    as_of = as_of or clock.today()
    lapsed_counts = lapsed_counts_policy() if lapsed_counts is None else lapsed_counts
    rows = per_county(db_or_uow, year, as_of, county=county, category=category,
                      lapsed_counts=lapsed_counts)
    city: dict = {}
    categories: dict[str, dict] = {}
    for row in rows:
        _add(city, row)
        for cat, part in row["by_category"].items():
            _add(categories.setdefault(cat, {}), part)
    return {
        "year": year, "as_of": as_of, "lapsed_counts_as_coverage": lapsed_counts,
        "scope": {"county": county, "category": category},
        "total": coverage_counts(**city, lapsed_counts=lapsed_counts),
        "by_category": [{"category": cat, "category_name": ROSTER_CATEGORIES.get(cat, cat),
                         **coverage_counts(**part, lapsed_counts=lapsed_counts)}
                        for cat, part in categories.items()],
        "counties": rows,
    }


# --- enterprises without an active CQO -------------------------------------------------------
def _reason(state) -> str:
    return "never_filed" if state is None else ("ended" if state == 0 else "lapsed")


def _with_latest(conn, rows: list[dict], as_of: date) -> list[dict]:
    """Add the last CQO (name, term end, end date and reason) to each uncovered row."""
    latest: dict[str, dict] = {}
    if rows:
        statement = text(_LATEST_SQL).bindparams(
            bindparam("usccs", expanding=True), bindparam("as_of", type_=Date())).columns(
            appointed_on=Date(), term_end=Date(), ended_on=Date())
        for found in conn.execute(statement, {"usccs": [r["uscc"] for r in rows],
                                              "as_of": as_of}).mappings():
            latest[found["uscc"]] = dict(found)  # ordered: the last one wins
    out = []
    for row in rows:
        last = latest.get(row["uscc"], {})
        reason = _reason(row.pop("state"))
        out.append({**row, "county_name": county_name(row["county"]),
                    "category_name": ROSTER_CATEGORIES.get(row["category"], row["category"]),
                    "reason": reason, "reason_name": REASONS[reason],
                    "last_cqo_name": last.get("cqo_name"), "last_term_end": last.get("term_end"),
                    "ended_on": last.get("ended_on"), "end_reason": last.get("end_reason")})
    return out


def uncovered(db_or_uow, year: int, as_of: date | None = None, *, county: str | None = None,
              category: str | None = None, reason: str | None = None, page: int = 1,
              page_size: int = 50, lapsed_counts: bool | None = None,
              counts: dict | None = None) -> dict:
    """A page of the roster enterprises without an active filed CQO, with why.
    `counts`: the summary's "total" of the same scope, if the caller has it already."""
    as_of = as_of or clock.today()
    lapsed_counts = lapsed_counts_policy() if lapsed_counts is None else lapsed_counts
    if reason == "lapsed" and lapsed_counts:
        return {"items": [], "total": 0, "page": page, "page_size": page_size}
    if counts is None:
        counts = summary(db_or_uow, year, as_of, county=county, category=category,
                         lapsed_counts=lapsed_counts)["total"]
    total = counts[reason] if reason else counts["uncovered"]
    statement, params = _statement(
        _uncovered_sql(county, category, reason, paged=True), as_of=as_of, year=year,
        county=county, category=category, covered_state=1 if lapsed_counts else 2,
        limit=page_size, offset=(page - 1) * page_size)
    with _connection(db_or_uow) as conn:
        rows = [dict(r) for r in conn.execute(statement, params).mappings()]
        items = _with_latest(conn, rows, as_of)
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def iter_uncovered(db_or_uow, year: int, as_of: date, *, county: str | None = None,
                   category: str | None = None, lapsed_counts: bool | None = None,
                   batch: int = 2000) -> Iterator[dict]:
    """Every uncovered roster enterprise (for exports), streamed in batches."""
    lapsed_counts = lapsed_counts_policy() if lapsed_counts is None else lapsed_counts
    statement, params = _statement(
        _uncovered_sql(county, category, None, paged=False), ("last_term_end", "ended_on"),
        as_of=as_of, year=year,
        county=county, category=category, covered_state=1 if lapsed_counts else 2)
    with _connection(db_or_uow) as conn:
        # options of this statement only: on the connection they would stay set (SQLAlchemy
        # 2 changes a Connection in place) and make a caller's later writes use a cursor
        result = conn.execute(statement, params, execution_options={"stream_results": True, "yield_per": batch})
        for number, row in enumerate(result.mappings(), start=1):
            if number % batch == 0:
                time.sleep(0)  # under eventlet: a long export lets the other workers run
            row = dict(row)
            reason = _reason(row.pop("state"))
            yield {**row, "county_name": county_name(row["county"]),
                   "category_name": ROSTER_CATEGORIES.get(row["category"], row["category"]),
                   "reason": reason, "reason_name": REASONS[reason]}
