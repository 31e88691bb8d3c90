"""Coverage (art. 4) as files: the summary table and the uncovered list as CSV, both in one XLSX workbook."""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import IO

from shared import clock
from shared.contracts import county_name
from services.registry.active_cqo import lapsed_counts_policy
from services.registry.roster.coverage import coverage_counts, iter_uncovered, summary


XLSX_MAX_ROWS = 1_048_576


# --- export -------------------------------------------------------------------------------------
SUMMARY_HEADER = ["县级区划代码", "县（市、区）", "规上企业名录数", "已设立首席质量官", "未设立首席质量官",
                  "覆盖率", "其中：从未备案", "其中：任期届满未续任", "其中：已撤销/离任",
                  "规上工业名录数", "规上工业已覆盖", "规上工业覆盖率",
                  "规上服务业名录数", "规上服务业已覆盖", "规上服务业覆盖率"]
UNCOVERED_HEADER = ["统一社会信用代码", "企业名称", "县级区划代码", "县（市、区）", "企业类别",
                    "未覆盖原因", "原首席质量官", "原任期届满日", "离任日期", "离任原因",
                    "联系人", "联系电话", "电子邮箱"]
TOTAL_LABEL = "全市合计"


def _summary_row(row: dict, code: str, name: str) -> list:
    cats = row.get("by_category", {})
    ind = cats.get("industrial_above_scale") or coverage_counts(lapsed_counts=False)
    srv = cats.get("service_above_scale") or coverage_counts(lapsed_counts=False)
    return [code, name, row["roster_size"], row["covered"], row["uncovered"], row["rate"],
            row["never_filed"], row["lapsed"], row["ended"],
            ind["roster_size"], ind["covered"], ind["rate"],
            srv["roster_size"], srv["covered"], srv["rate"]]


def summary_rows(data: dict) -> list[list]:
    """The summary table: one row per county, then the city total."""
    rows = [_summary_row(r, r["county"], r["county_name"]) for r in data["counties"]]
    total = dict(data["total"])
    total["by_category"] = {c["category"]: c for c in data["by_category"]}
    rows.append(_summary_row(total, "", TOTAL_LABEL))
    return rows


def uncovered_row(item: dict) -> list:
    return [item["uscc"], item["name"], item["county"], item["county_name"], item["category_name"],
            item["reason_name"], item["last_cqo_name"] or "", item["last_term_end"] or "",
            item["ended_on"] or "", item["end_reason"] or "", item["contact_person"] or "",
            item["phone"] or "", item["email"] or ""]


def _csv_value(value):
    if isinstance(value, float):
        return f"{value * 100:.2f}%"  # rates
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else value


def write_csv(out: IO[str], db_or_uow, year: int, as_of: date | None = None, *,
              table: str = "summary", county: str | None = None,
              lapsed_counts: bool | None = None) -> int:
    """The summary table or the uncovered list as CSV (Excel opens UTF-8 with BOM: the
    caller opens the file with encoding utf-8-sig). Returns the number of data rows."""
    as_of = as_of or clock.today()
    writer = csv.writer(out)
    if table == "uncovered":
        writer.writerow(UNCOVERED_HEADER)
        count = 0
        for item in iter_uncovered(db_or_uow, year, as_of, county=county, lapsed_counts=lapsed_counts):
            writer.writerow([_csv_value(v) for v in uncovered_row(item)])
            count += 1
        return count
    data = summary(db_or_uow, year, as_of, county=county, lapsed_counts=lapsed_counts)
    writer.writerow(SUMMARY_HEADER)
    rows = summary_rows(data)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    return len(rows)


def write_xlsx(out, db_or_uow, year: int, as_of: date | None = None, *,
               county: str | None = None, lapsed_counts: bool | None = None) -> dict:
    """Workbook: sheet 覆盖率汇总 (title, basis, header on row 3, a row per county, the
    city total last) and sheet 未覆盖企业 (header on row 1; continued on further sheets
    past Excel's row limit). `out` is a path or a binary stream. Returns the summary."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    as_of = as_of or clock.today()
    lapsed_counts = lapsed_counts_policy() if lapsed_counts is None else lapsed_counts
    data = summary(db_or_uow, year, as_of, county=county, lapsed_counts=lapsed_counts)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("覆盖率汇总")
    bold = Font(bold=True)

    def cells(values, *, header=False, rates=()):
        row = []
        for position, value in enumerate(values):
            cell = WriteOnlyCell(sheet, value=value)
            if header:
                cell.font = bold
            if position in rates and isinstance(value, float):
                cell.number_format = "0.00%"
            row.append(cell)
        return row

    scope = f"{county} {county_name(county)}" if county else "全市"
    basis = "任期届满未续任的计入覆盖" if lapsed_counts else "任期届满未续任的不计入覆盖"
    title = WriteOnlyCell(sheet, value=f"{year}年度规模以上企业首席质量官覆盖情况（{scope}）")
    title.font = Font(bold=True, size=14)
    sheet.append([title])
    sheet.append([f"统计日期：{as_of.isoformat()}；口径：名录企业有在任且任期未届满的已备案首席质量官即为覆盖，{basis}"])
    sheet.append(cells(SUMMARY_HEADER, header=True))
    for row in summary_rows(data):
        sheet.append(cells(row, rates=(5, 11, 14)))

    header = UNCOVERED_HEADER
    part, written, sheet = 1, 0, None
    for item in iter_uncovered(db_or_uow, year, as_of, county=county, lapsed_counts=lapsed_counts):
        if sheet is None or written >= XLSX_MAX_ROWS - 1:
            part_name = "未覆盖企业" if part == 1 else f"未覆盖企业（{part}）"
            sheet = book.create_sheet(part_name)
            sheet.append(cells(header, header=True))
            part, written = part + 1, 0
        sheet.append(uncovered_row(item))
        written += 1
    if sheet is None:
        sheet = book.create_sheet("未覆盖企业")
        sheet.append(cells(header, header=True))
    book.save(out)
    return data


def export_bytes(db_or_uow, year: int, as_of: date | None, file_format: str, *,
                 table: str = "summary", county: str | None = None) -> bytes:
    if file_format == "xlsx":
        buffer = io.BytesIO()
        write_xlsx(buffer, db_or_uow, year, as_of, county=county)
        return buffer.getvalue()
    text_out = io.StringIO()
    write_csv(text_out, db_or_uow, year, as_of, table=table, county=county)
    return text_out.getvalue().encode("utf-8-sig")
