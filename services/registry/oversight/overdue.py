"""Use cases: the overdue list per county (arts. 5, 10, 14), as of a day.

- late changes: filings of a change or end of the post reported to the county more than
  a month after they took effect (ledger rows with `late`), counted once per filing, in
  the county that filed them;
- recommendations: still open (not withdrawn, closed or settled by a change) and, of
  those, unanswered past their response period (未响应);
- lapsed terms: appointments in post whose `term_end` is before the day (the rule of
  services/registry/active_cqo.py: a term is in force up to and including its end date).

All of it is computed as of the given day from the stored facts (issue, answer and
closing times, appointment and end dates), so a report for a past day is right too.
Recommendations and terms count in the enterprise's current county (an enterprise that
moved is followed by its county, as coverage does).

`per_county(uow, as_of)` is what the annual assessment report reads.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from shared import clock
from shared.auth import Principal
from shared.contracts import FILING_KINDS, county_name, jurisdiction
from shared.db import UnitOfWork
from services.registry import active_cqo
from services.registry.counties import county_scope
from services.registry.models import Appointment, Enterprise, LedgerEntry, Recommendation
from services.registry.oversight.schemas import OVERDUE_KINDS, OverdueOut
from services.registry.oversight.recommendations import issuer_name, open_as_of, unanswered_as_of

COUNT_KEYS = ("late_changes", "recommendations_open", "recommendations_unanswered", "lapsed_terms")
_out = OverdueOut()


def _fmt(day: date) -> str:
    return f"{day:%Y年%m月%d日}"


def _late_condition(as_of: date, since: date | None):
    condition = (LedgerEntry.late.is_(True)) & (LedgerEntry.submitted_to_county_on <= as_of)
    if since is not None:
        condition = condition & (LedgerEntry.submitted_to_county_on >= since)
    return condition


def _lapsed_condition(as_of: date):
    return active_cqo.lapsed_condition(as_of)


def per_county(uow: UnitOfWork, as_of: date, *, since: date | None = None,
               counties: list[str] | None = None) -> list[dict]:
    """One row per county — every county of the jurisdiction, plus any other county that
    has something — with `late_changes`, `recommendations_open`,
    `recommendations_unanswered`, `lapsed_terms` and their `total` (open but not yet
    overdue recommendations are not in the total). `since` limits late changes to
    those submitted to the county from that day on (e.g. a year's report)."""
    session = uow.session
    counts: dict[str, dict[str, int]] = {}

    def add(key, rows):
        for county, n in rows:
            counts.setdefault(county, dict.fromkeys(COUNT_KEYS, 0))[key] = int(n)

    add("late_changes", session.execute(
        select(LedgerEntry.county, func.count(func.distinct(LedgerEntry.filing_id)))
        .where(_late_condition(as_of, since)).group_by(LedgerEntry.county)))
    for key, condition in (("recommendations_open", open_as_of(as_of)),
                           ("recommendations_unanswered", unanswered_as_of(as_of))):
        add(key, session.execute(
            select(Enterprise.county, func.count(Recommendation.id))
            .join(Enterprise, Enterprise.uscc == Recommendation.uscc)
            .where(condition).group_by(Enterprise.county)))
    add("lapsed_terms", session.execute(
        select(Enterprise.county, func.count(Appointment.id))
        .join(Enterprise, Enterprise.uscc == Appointment.uscc)
        .where(_lapsed_condition(as_of)).group_by(Enterprise.county)))

    codes = set(counts) | {d.code for d in jurisdiction()}
    if counties is not None:
        codes = set(counties)
    rows = []
    for code in sorted(codes):
        row = {"county": code, "county_name": county_name(code),
               **counts.get(code, dict.fromkeys(COUNT_KEYS, 0))}
        row["total"] = row["late_changes"] + row["recommendations_unanswered"] + row["lapsed_terms"]
        rows.append(row)
    return rows


def items(uow: UnitOfWork, as_of: date, *, county: str | None = None,
          kind: str | None = None) -> list[dict]:
    """The overdue items themselves, ordered by county, kind and how long overdue."""
    session, out = uow.session, []
    if kind in (None, "late_change"):
        query = (select(LedgerEntry, Enterprise.name)
                 .outerjoin(Enterprise, Enterprise.uscc == LedgerEntry.uscc)
                 .where(_late_condition(as_of, None))
                 .order_by(LedgerEntry.filing_id, LedgerEntry.version.desc()))
        if county:
            query = query.where(LedgerEntry.county == county)
        seen = set()
        for row, name in session.execute(query):
            if row.filing_id in seen:
                continue  # one item per filing: its latest late version
            seen.add(row.filing_id)
            kind_name = FILING_KINDS.get(row.kind, row.kind)
            out.append({
                "kind": "late_change", "county": row.county, "uscc": row.uscc,
                "enterprise_name": name, "cqo_name": None, "since": row.deadline,
                "days_overdue": row.days_late, "filing_id": row.filing_id,
                "detail": (f"{kind_name}备案应于{_fmt(row.deadline)}前向县局报送，"
                           f"{_fmt(row.submitted_to_county_on)}才报送，逾期{row.days_late}天（第十四条）")
                if row.deadline else f"{kind_name}备案逾期{row.days_late}天报送（第十四条）"})
    if kind in (None, "recommendation_unanswered"):
        query = (select(Recommendation, Enterprise.name, Enterprise.county)
                 .join(Enterprise, Enterprise.uscc == Recommendation.uscc)
                 .where(unanswered_as_of(as_of)))
        if county:
            query = query.where(Enterprise.county == county)
        for rec, name, code in session.execute(query):
            out.append({
                "kind": "recommendation_unanswered", "county": code, "uscc": rec.uscc,
                "enterprise_name": name, "cqo_name": rec.cqo_name, "since": rec.respond_by,
                "days_overdue": (as_of - rec.respond_by).days, "recommendation_id": rec.id,
                "detail": (f"{issuer_name(rec.issuer_role, rec.issuer_county)}于{_fmt(rec.issued_on)}"
                           f"建议撤换首席质量官{rec.cqo_name}（编号 {rec.id}），答复期限"
                           f"{_fmt(rec.respond_by)}已过，企业既未答复也未办理变更（第十条）")})
    if kind in (None, "lapsed_term"):
        query = (select(Appointment, Enterprise.name, Enterprise.county)
                 .join(Enterprise, Enterprise.uscc == Appointment.uscc)
                 .where(_lapsed_condition(as_of)))
        if county:
            query = query.where(Enterprise.county == county)
        for appointment, name, code in session.execute(query):
            out.append({
                "kind": "lapsed_term", "county": code, "uscc": appointment.uscc,
                "enterprise_name": name, "cqo_name": appointment.cqo_name,
                "since": appointment.term_end, "appointment_id": appointment.id,
                "days_overdue": (as_of - appointment.term_end).days,
                "detail": (f"首席质量官{appointment.cqo_name}的任期已于{_fmt(appointment.term_end)}"
                           "届满，未办理续任或变更备案（第五条）")})
    order = list(OVERDUE_KINDS)
    out.sort(key=lambda i: (i["county"], order.index(i["kind"]), -i["days_overdue"], i["uscc"]))
    for item in out:
        item["kind_name"] = OVERDUE_KINDS[item["kind"]]
        item["county_name"] = county_name(item["county"])
    return out


def report(uow: UnitOfWork, principal: Principal, filters: dict) -> dict:
    """GET /overdue: the counts per county in the caller's scope and the items, paged."""
    as_of = filters.get("as_of") or clock.today()
    county = county_scope(principal, filters.get("county"))
    counties = per_county(uow, as_of, counties=[county] if county else None)
    found = items(uow, as_of, county=county, kind=filters.get("kind"))
    page, page_size = filters["page"], filters["page_size"]
    return _out.dump({"as_of": as_of, "counties": counties, "total": len(found),
                      "items": found[(page - 1) * page_size:page * page_size],
                      "page": page, "page_size": page_size})
