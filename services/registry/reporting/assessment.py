"""Use case: the annual assessment report per county (art. 16, 年度政府质量工作考核).

For every county: coverage of the year's above-scale roster (art. 4), completion of the
year's campaign (art. 13: roster enterprises with an active CQO at the campaign's close
against the roster, as progress.py measures it, and what is still pending, returned or
refused), late changes (art. 14) and replacement recommendations
still open or unanswered (art. 10), terms lapsed without renewal (art. 5). As JSON, and
as an XLSX workbook: a summary sheet (one row per county and the city total) and one
sheet per county with its figures and the late change filings behind them.

Training (art. 15 教育培训) comes from the talent service (`training.py`): its figures
are passed in by the caller, None when talent did not answer, and then the report says
so rather than showing numbers it cannot know.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from shared import clock
from shared.auth import Principal
from shared.contracts import FILING_KINDS
from shared.db import UnitOfWork
from shared.errors import ValidationFailed
from services.registry import active_cqo
from services.registry.campaigns import progress
from services.registry.oversight import overdue
from services.registry.models import Campaign, Enterprise, LedgerEntry
from services.registry.reporting import training as training_figures
from services.registry.reporting.columns import (COLUMNS, NOTES, TITLE, TRAINING_INCLUDED,
                                                   TRAINING_UNAVAILABLE)


_OVERDUE_KEYS = ("recommendations_open", "recommendations_unanswered", "lapsed_terms")


def report_as_of(year: int, today: date | None = None) -> date:
    """The last day of the year, or today for the current year."""
    today = today or clock.today()
    if year > today.year:
        raise ValidationFailed(f"考核年度{year}年尚未开始，不能生成考核表", field="year",
                               code="ASSESSMENT_YEAR_FUTURE")
    return min(today, date(year, 12, 31))


def overdue_by_county(uow: UnitOfWork, year: int, as_of: date) -> dict[str, dict]:
    """{county: counts} of the overdue list (arts. 5, 10, 14) on `as_of`, late changes
    limited to those first reported to the county in the year."""
    return {row["county"]: row for row in overdue.per_county(uow, as_of, since=date(year, 1, 1))}


def late_change_filings(session, year: int, as_of: date) -> dict[str, list[dict]]:
    """Per filing county: the late changes and ends (art. 14) first reported to the county
    in the year, one per filing (its latest late version), as the overdue list counts them."""
    rows = session.execute(
        select(LedgerEntry, Enterprise.name)
        .outerjoin(Enterprise, Enterprise.uscc == LedgerEntry.uscc)
        .where(LedgerEntry.late.is_(True),
               LedgerEntry.submitted_to_county_on >= date(year, 1, 1),
               LedgerEntry.submitted_to_county_on <= as_of)
        .order_by(LedgerEntry.county, LedgerEntry.submitted_to_county_on, LedgerEntry.filing_id,
                  LedgerEntry.version.desc())).all()
    out: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for entry, name in rows:
        if entry.filing_id in seen:
            continue
        seen.add(entry.filing_id)
        out.setdefault(entry.county, []).append({
            "filing_id": entry.filing_id, "version": entry.version, "uscc": entry.uscc,
            "enterprise_name": name or "", "kind": entry.kind,
            "kind_name": FILING_KINDS.get(entry.kind, entry.kind),
            "submitted_to_county_on": entry.submitted_to_county_on, "deadline": entry.deadline,
            "days_late": entry.days_late})
    return out


def build(uow: UnitOfWork, year: int, *, principal: Principal | None = None,
          today: date | None = None, training: dict | None = None) -> dict:
    """The report as a dict (JSON-ready once dates are ISO); `principal` None = the whole
    city (the CLI), a county officer sees only its own county. `training`: the talent
    service's answer (`training.ask`), None when it did not answer."""
    as_of = report_as_of(year, today)
    session = uow.session
    figures = progress.figures(uow, year, as_of, principal=principal)
    overdue_counts = overdue_by_county(uow, year, as_of)
    late = late_change_filings(session, year, as_of)
    campaign = session.get(Campaign, year)
    counties = []
    for county, row in figures.rows.items():
        entry = {key: row.get(key) for key, _, _ in COLUMNS if key in row}
        entry["active_cqo"] = row["active_cqo"]
        entry["submitted"], entry["approved"] = row["submitted"], row["approved"]
        entry["forwarded"], entry["waiting"] = row["forwarded"], row["waiting"]
        entry["reported_at"] = row["reported_at"]
        counts = overdue_counts.get(county, {})
        entry["late_change_filings"] = late.get(county, [])
        entry["late_changes"] = int(counts.get("late_changes") or 0)
        for key in _OVERDUE_KEYS:
            entry[key] = int(counts.get(key) or 0)
        entry.update(training_figures.columns_of(training, county))
        entry["training"] = TRAINING_UNAVAILABLE if training is None else TRAINING_INCLUDED
        counties.append(entry)
    total = progress.totals(figures.rows.values(), completion=figures.completion_on is not None)
    total.update({"county": "", "county_name": "全市合计" if principal is None or principal.city_wide
                  else "合计", "late_changes": sum(c["late_changes"] for c in counties),
                  "training": TRAINING_UNAVAILABLE if training is None else TRAINING_INCLUDED})
    for key in training_figures.KEYS:  # the whole city's total adds its own courses
        values = [c[key] for c in counties]
        city = (training_figures.columns_of(training, training_figures.CITY)[key]
                if principal is None or principal.city_wide else 0)
        total[key] = None if training is None else sum(values) + (city or 0)
    for key in _OVERDUE_KEYS:
        total[key] = sum(c[key] for c in counties)
    notes = list(NOTES)
    notes.insert(1, "任期届满未续任的首席质量官" + ("按本地政策计入覆盖。" if active_cqo.lapsed_counts_policy()
                                                 else "不计入覆盖（第五条）。"))
    if campaign is None:
        notes.insert(0, f"{year}年度未发布首席质量官集中备案通告，集中备案相关数字为0，完成率显示为“—”。")
    return {
        "title": TITLE.format(year=year), "year": year, "as_of": as_of,
        "completion_on": figures.completion_on,
        "generated_at": clock.now_utc(),
        "campaign": None if campaign is None else {
            "year": campaign.year, "notice_number": campaign.notice_number,
            "title": campaign.title, "status": campaign.status,
            "opens_on": campaign.opens_on, "closes_on": campaign.closes_on},
        "columns": {key: header for key, header, _ in COLUMNS},
        "counties": counties, "total": total, "notes": notes,
    }
