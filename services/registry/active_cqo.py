"""An active CQO on a date, for the whole registry: the policy and the SQL that applies the rule.

The rule itself is services/registry/domain/active_cqo.py (plain Python, read it first):
an appointment is active on D when `appointed_on <= D`, it has not ended by D (`ended_on`
NULL or after D) and its term has not lapsed by D (`term_end >= D`) unless the deployment
counts lapsed terms (LAPSED_COUNTS_AS_COVERAGE, default false; art. 5, docs/architecture.md).

The award check applies the plain rule to the enterprise's appointments; coverage,
campaign progress and completion, the lapsed-term count and the assessment report count
in the database with the SQL below, written against the `appointments` table with the
day as the bind parameter `:as_of`. tests/integration/test_active_cqo.py holds both to
the same answers on SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Date, bindparam, text
from sqlalchemy.sql.elements import TextClause

POLICY_KEY = "LAPSED_COUNTS_AS_COVERAGE"

_policy = {"lapsed_counts": False}


def set_policy(lapsed_counts_as_coverage: bool) -> None:
    """The deployment's policy (service config LAPSED_COUNTS_AS_COVERAGE, default false)."""
    _policy["lapsed_counts"] = bool(lapsed_counts_as_coverage)


def lapsed_counts_policy() -> bool:
    return _policy["lapsed_counts"]


def policy_from_config(config) -> bool:
    value = (config or {}).get(POLICY_KEY, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def resolve_policy(value: bool | None) -> bool:
    """`value` when the caller says, else the deployment's policy."""
    return lapsed_counts_policy() if value is None else bool(value)


# --- SQL: the parts of the rule, over `appointments` (or `prefix`), the day as :as_of ------
def started(prefix: str = "") -> str:
    return f"{prefix}appointed_on <= :as_of"


def not_ended(prefix: str = "") -> str:
    return f"({prefix}ended_on IS NULL OR {prefix}ended_on > :as_of)"


def in_term(prefix: str = "") -> str:
    """The term has not lapsed (domain.oversight.is_lapsed: `term_end < D`)."""
    return f"{prefix}term_end >= :as_of"


def active_sql(prefix: str = "", *, lapsed_counts: bool) -> str:
    """An active appointment on :as_of."""
    parts = [started(prefix), not_ended(prefix)]
    if not lapsed_counts:
        parts.append(in_term(prefix))
    return " AND ".join(parts)


def lapsed_sql(prefix: str = "") -> str:
    """In post on :as_of, but its term has lapsed (active only where lapsed terms count)."""
    return f"{started(prefix)} AND {not_ended(prefix)} AND NOT ({in_term(prefix)})"


def _bound(sql: str, as_of: date) -> TextClause:
    return text(sql).bindparams(bindparam("as_of", as_of, type_=Date()))


def active_condition(as_of: date, *, lapsed_counts: bool | None = None,
                     prefix: str = "appointments.") -> TextClause:
    """A WHERE condition (SQLAlchemy) selecting the appointments active on `as_of`,
    following the policy unless `lapsed_counts` is given."""
    return _bound(active_sql(prefix, lapsed_counts=resolve_policy(lapsed_counts)), as_of)


def lapsed_condition(as_of: date, *, prefix: str = "appointments.") -> TextClause:
    """A WHERE condition selecting the appointments in post on `as_of` whose term lapsed."""
    return _bound(lapsed_sql(prefix), as_of)
