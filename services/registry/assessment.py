"""Use case: the annual assessment report per county (art. 16, 年度政府质量工作考核).

For every county: coverage of the year's above-scale roster (art. 4), completion of the
year's campaign (art. 13: roster enterprises with an active CQO at the campaign's close
against the roster, as progress.py measures it, and what is still pending, returned or
refused), late changes (art. 14) and replacement recommendations
still open or unanswered (art. 10), terms lapsed without renewal (art. 5). As JSON, and
as an XLSX workbook: a summary sheet (one row per county and the city total) and one
sheet per county with its figures and the late change filings behind them.

Training completion (art. 15 教育培训) joins when the talent service lands: the report
says so rather than showing a number it cannot know.
"""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from shared.auth import Principal
from shared.contracts import FILING_KINDS
from shared.db import UnitOfWork
from shared.errors import ValidationFailed
from services.registry.roster import coverage
from services.registry.campaigns import progress
from services.registry.oversight import overdue
from services.registry.models import Campaign, Enterprise, LedgerEntry

TITLE = "{year}年度企业首席质量官制度推进情况考核表"
TRAINING_NOTE = ("首席质量官任职培训完成情况（第十五条 教育培训）待人才服务（培训与人才库）"
                 "上线后纳入本考核表。")
NOTES = (
    "覆盖率＝名录内有在任已备案首席质量官的企业数÷当年度规上企业名录数（第四条）。",
    "集中备案完成率＝集中备案截止时（尚未截止的，为统计日）名录内有在任已备案首席质量官的企业数÷当年度规上企业名录数"
    "（第十三条），分列本次集中备案的和此前已备案、无需变更的；名录外企业的集中备案另列，不计入完成率；"
    "名录为空的，完成率显示为“—”。",
    "县局待办、退回为各县（市、区）备案服务报送的进度快照，截至时间见“县局进度数据截至”。",
    "逾期变更备案：变更或撤销于生效之日起一个月后才首次向县局报告、经市局予以备案的（第十四条），按首次报告日期计入年度。",
    "撤换建议为建议而非命令（第十条）：未办结为尚未关闭或撤回的，未响应为超过答复期限仍无答复或变更备案的。",
    TRAINING_NOTE,
)

# (key, Chinese header, kind) of the summary sheet and of the JSON columns
COLUMNS = (
    ("county", "县级区划代码", "text"),
    ("county_name", "县（市、区）", "text"),
    ("roster_size", "规上企业名录数", "int"),
    ("covered", "已设立首席质量官企业数", "int"),
    ("coverage_rate", "覆盖率", "rate"),
    ("filed", "集中备案已备案企业数", "int"),
    ("completed", "名录内已完成企业数", "int"),
    ("completed_in_campaign", "其中：本次集中备案", "int"),
    ("completed_already", "其中：此前已备案无需变更", "int"),
    ("completion_rate", "集中备案完成率", "rate"),
    ("filed_off_roster", "名录外企业集中备案数", "int"),
    ("pending", "县局待办（待预审＋待报送）", "int"),
    ("returned", "退回", "int"),
    ("rejected", "市局不予备案", "int"),
    ("late_changes", "逾期变更备案", "int"),
    ("recommendations_open", "撤换建议未办结", "int"),
    ("recommendations_unanswered", "撤换建议未响应", "int"),
    ("lapsed_terms", "任期届满未续任", "int"),
    ("training", "培训完成情况", "text"),
)
TRAINING_PENDING = "待人才服务上线后纳入"
_OVERDUE_KEYS = ("recommendations_open", "recommendations_unanswered", "lapsed_terms")


def report_as_of(year: int, today: date | None = None) -> date:
    """The last day of the year, or today for the current year."""
    today = today or progress.today()
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
          today: date | None = None) -> dict:
    """The report as a dict (JSON-ready once dates are ISO); `principal` None = the whole
    city (the CLI), a county officer sees only its own county."""
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
        entry["training"] = TRAINING_PENDING
        counties.append(entry)
    total = progress.totals(figures.rows.values(), completion=figures.completion_on is not None)
    total.update({"county": "", "county_name": "全市合计" if principal is None or principal.city_wide
                  else "合计", "late_changes": sum(c["late_changes"] for c in counties),
                  "training": TRAINING_PENDING})
    for key in _OVERDUE_KEYS:
        total[key] = sum(c[key] for c in counties)
    notes = list(NOTES)
    notes.insert(1, "任期届满未续任的首席质量官" + ("按本地政策计入覆盖。" if coverage.lapsed_counts_policy()
                                                 else "不计入覆盖（第五条）。"))
    if campaign is None:
        notes.insert(0, f"{year}年度未发布首席质量官集中备案通告，集中备案相关数字为0，完成率显示为“—”。")
    return {
        "title": TITLE.format(year=year), "year": year, "as_of": as_of,
        "completion_on": figures.completion_on,
        "generated_at": datetime.now(timezone.utc),
        "campaign": None if campaign is None else {
            "year": campaign.year, "notice_number": campaign.notice_number,
            "title": campaign.title, "status": campaign.status,
            "opens_on": campaign.opens_on, "closes_on": campaign.closes_on},
        "columns": {key: header for key, header, _ in COLUMNS},
        "counties": counties, "total": total, "notes": notes,
    }


def to_json(report: dict) -> str:
    """The report as GET /reports/assessment answers it."""
    from services.registry.reporting_schemas import AssessmentOut# it documents this module

    return json.dumps(AssessmentOut().dump(report), ensure_ascii=False, indent=2)


# -- the workbook ------------------------------------------------------------------------

SUMMARY_SHEET = "汇总"
HEADER_ROW = 4  # the summary's column headers; the counties follow, then the city total
_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_INVALID_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})


def county_sheet_name(row: dict) -> str:
    """`130921 沧县`: unique (the code) and at most 31 characters (Excel's limit)."""
    return f"{row['county']} {row['county_name']}".translate(_INVALID_SHEET_CHARS)[:31]


def _put(ws, row: int, column: int, value, kind: str = "text", bold: bool = False):
    """One cell; a figure that cannot be computed (a rate of an empty roster) shows "—"."""
    cell = ws.cell(row=row, column=column, value="—" if value is None else value)
    if kind == "rate" and value is not None:
        cell.number_format = "0.00%"
    if bold:
        cell.font = _BOLD
    return cell


def to_xlsx(report: dict) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = SUMMARY_SHEET
    ws.cell(row=1, column=1, value=report["title"]).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value=(
        f"统计截至：{report['as_of']:%Y年%m月%d日}　生成时间："
        f"{report['generated_at'].astimezone(progress.TZ):%Y-%m-%d %H:%M}"
        + (f"　集中备案通告：{report['campaign']['notice_number']}" if report["campaign"] else "")
        + (f"　完成率统计日：{report['completion_on']:%Y年%m月%d日}" if report["completion_on"] else "")))
    for column, (_, header, _) in enumerate(COLUMNS, start=1):
        cell = _put(ws, HEADER_ROW, column, header, bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(column)].width = 14 if column > 2 else 12
    row_number = HEADER_ROW
    for row in report["counties"]:
        row_number += 1
        for column, (key, _, kind) in enumerate(COLUMNS, start=1):
            _put(ws, row_number, column, row.get(key), kind)
    row_number += 1
    for column, (key, _, kind) in enumerate(COLUMNS, start=1):
        _put(ws, row_number, column, report["total"].get(key), kind, bold=True)
    row_number += 2
    ws.cell(row=row_number, column=1, value="说明").font = _BOLD
    for note in report["notes"]:
        row_number += 1
        ws.cell(row=row_number, column=1, value=note)
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=3)

    for row in report["counties"]:
        _county_sheet(wb.create_sheet(county_sheet_name(row)), report, row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


COUNTY_INDICATORS = (
    ("roster_size", "规上企业名录数", "int"),
    ("covered", "名录内已设立首席质量官企业数", "int"),
    ("coverage_rate", "覆盖率", "rate"),
    ("active_cqo", "有在任首席质量官的企业数（含名录外）", "int"),
    ("filed", "本年度集中备案已备案企业数", "int"),
    ("completed", "名录内已完成企业数（集中备案截止时有在任首席质量官）", "int"),
    ("completed_in_campaign", "其中：本次集中备案的", "int"),
    ("completed_already", "其中：此前已备案、无需变更的", "int"),
    ("completion_rate", "集中备案完成率", "rate"),
    ("filed_off_roster", "名录外企业集中备案数（不计入完成率）", "int"),
    ("submitted", "县局待预审", "int"),
    ("approved", "预审通过待报送", "int"),
    ("returned", "退回", "int"),
    ("forwarded", "已报送市局待决定", "int"),
    ("waiting", "市局等待前序备案", "int"),
    ("rejected", "市局不予备案", "int"),
    ("late_changes", "逾期变更备案", "int"),
    ("recommendations_open", "撤换建议未办结", "int"),
    ("recommendations_unanswered", "撤换建议未响应", "int"),
    ("lapsed_terms", "任期届满未续任", "int"),
    ("training", "培训完成情况", "text"),
)
INDICATOR_FIRST_ROW = 5   # county sheet: "指标 | 数值" header at row 4
LATE_HEADERS = ("备案编号", "版本", "统一社会信用代码", "企业名称", "备案类型", "首次报告县局日期",
                "应报告截止日期", "逾期天数")


def _county_sheet(ws, report: dict, row: dict) -> None:
    ws.cell(row=1, column=1, value=f"{row['county_name']}（{row['county']}）"
                                   f"{report['year']}年度首席质量官制度推进情况").font = Font(bold=True, size=13)
    reported = row.get("reported_at")
    ws.cell(row=2, column=1, value=f"统计截至：{report['as_of']:%Y年%m月%d日}　县局进度数据截至："
            + (f"{reported.astimezone(progress.TZ):%Y-%m-%d %H:%M}" if reported else "未报送"))
    _put(ws, 4, 1, "指标", bold=True).fill = _HEADER_FILL
    _put(ws, 4, 2, "数值", bold=True).fill = _HEADER_FILL
    ws.column_dimensions["A"].width = 36
    ws.column_dimensions["B"].width = 16
    for offset, (key, label, kind) in enumerate(COUNTY_INDICATORS):
        _put(ws, INDICATOR_FIRST_ROW + offset, 1, label)
        _put(ws, INDICATOR_FIRST_ROW + offset, 2, row.get(key), kind)
    line = INDICATOR_FIRST_ROW + len(COUNTY_INDICATORS) + 1
    ws.cell(row=line, column=1, value="逾期变更备案明细").font = _BOLD
    line += 1
    for column, header in enumerate(LATE_HEADERS, start=1):
        _put(ws, line, column, header, bold=True).fill = _HEADER_FILL
    for filing in row["late_change_filings"]:
        line += 1
        values = (filing["filing_id"], filing["version"], filing["uscc"], filing["enterprise_name"],
                  filing["kind_name"], filing["submitted_to_county_on"], filing["deadline"],
                  filing["days_late"])
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=line, column=column, value=value)
            if isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
    if not row["late_change_filings"]:
        ws.cell(row=line + 1, column=1, value="无")
    ws.cell(row=line + 3, column=1, value=TRAINING_NOTE)
