"""The annual assessment report (art. 16) as an XLSX workbook: a summary sheet and one sheet per county."""
from __future__ import annotations

import io
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from shared import clock
from services.registry.reporting.columns import COLUMNS, COUNTY_INDICATORS, TRAINING_NOTE


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
        f"{report['generated_at'].astimezone(clock.TZ):%Y-%m-%d %H:%M}"
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


INDICATOR_FIRST_ROW = 5   # county sheet: "指标 | 数值" header at row 4
LATE_HEADERS = ("备案编号", "版本", "统一社会信用代码", "企业名称", "备案类型", "首次报告县局日期",
                "应报告截止日期", "逾期天数")


def _county_sheet(ws, report: dict, row: dict) -> None:
    ws.cell(row=1, column=1, value=f"{row['county_name']}（{row['county']}）"
                                   f"{report['year']}年度首席质量官制度推进情况").font = Font(bold=True, size=13)
    reported = row.get("reported_at")
    ws.cell(row=2, column=1, value=f"统计截至：{report['as_of']:%Y年%m月%d日}　县局进度数据截至："
            + (f"{reported.astimezone(clock.TZ):%Y-%m-%d %H:%M}" if reported else "未报送"))
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
