"""`cqo report coverage`: coverage of the above-scale roster by filed CQOs (art. 4), from
the registry's database, as `GET /api/v1/coverage(/export)` gives it to an officer.
`cqo report assessment` is the annual assessment report (cqo.cli_assessment)."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cqo.cli_assessment import assessment
from cqo.cli_roster import registry_database

report_app = typer.Typer(help="报表：覆盖率（第四条）、年度考核（第十六条）。", no_args_is_help=True)
report_app.command("assessment")(assessment)
console = Console()


def _date(value: Optional[str]) -> Optional[date]:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"日期应为 YYYY-MM-DD 格式：{value}") from None


def _percent(value) -> str:
    return "—" if value is None else f"{value:.2%}"


@report_app.command("coverage")
def coverage_command(
        year: int = typer.Option(..., "--year", min=2000, max=2100, help="名录年度"),
        out: Optional[Path] = typer.Option(None, "--out", help="输出文件：.xlsx（汇总表＋未覆盖企业表）或 .csv；"
                                                               "不指定则在终端显示汇总表"),
        table_kind: str = typer.Option("summary", "--table", help="CSV 的内容：summary（汇总）或 uncovered（未覆盖企业）"),
        as_of: Optional[str] = typer.Option(None, "--as-of", help="统计日期 YYYY-MM-DD（默认今天）"),
        county: Optional[str] = typer.Option(None, "--county", help="只统计一个县（市、区）"),
        config: Optional[Path] = typer.Option(None, "--config", help="registry 服务配置文件（默认为服务自带配置）")
) -> None:
    """首席质量官覆盖率：各县（市、区）、各企业类别及全市的名录企业数、已覆盖数、覆盖率和未覆盖原因。"""
    from services.registry.roster import coverage, coverage_export
    from shared import clock
    from shared.errors import CqoError

    day = _date(as_of) or clock.today()
    if table_kind not in ("summary", "uncovered"):
        raise typer.BadParameter("--table 应为 summary 或 uncovered")
    suffix = out.suffix.lower() if out else None
    if out is not None and suffix not in (".csv", ".xlsx"):
        console.print(f"[red]输出文件应以 .csv 或 .xlsx 结尾：{out}[/]")
        raise typer.Exit(2)
    try:
        with registry_database(config) as db:
            if county:
                from shared.contracts import jurisdiction

                county = jurisdiction().validate(county, field="county").code
            if out is None:
                _print(coverage.summary(db, year, day, county=county))
                return
            out.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".xlsx":
                data = coverage_export.write_xlsx(out, db, year, day, county=county)
                rows = len(data["counties"])
            else:
                with open(out, "w", encoding="utf-8-sig", newline="") as handle:
                    rows = coverage_export.write_csv(handle, db, year, day, table=table_kind, county=county)
    except CqoError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1)
    console.print(f"已导出到 {out}（{rows} 行，统计日期 {day.isoformat()}）")


def _print(data: dict) -> None:
    basis = "计入" if data["lapsed_counts_as_coverage"] else "不计入"
    table = Table(title=f"{data['year']}年度首席质量官覆盖率（统计日期 {data['as_of']}，任期届满未续任{basis}覆盖）")
    for column in ("县级区划代码", "县（市、区）", "名录企业", "已覆盖", "覆盖率", "从未备案", "任期届满未续任",
                   "已撤销/离任"):
        table.add_column(column, justify="right" if column not in ("县（市、区）",) else "left")
    for row in data["counties"]:
        if row["roster_size"] == 0 and not data["scope"]["county"]:
            continue
        table.add_row(row["county"], row["county_name"], str(row["roster_size"]), str(row["covered"]),
                      _percent(row["rate"]), str(row["never_filed"]), str(row["lapsed"]), str(row["ended"]))
    total = data["total"]
    table.add_row("", "全市合计", str(total["roster_size"]), str(total["covered"]), _percent(total["rate"]),
                  str(total["never_filed"]), str(total["lapsed"]), str(total["ended"]), style="bold")
    console.print(table)
    for part in data["by_category"]:
        console.print(f"{part['category_name']}：名录 {part['roster_size']}，已覆盖 {part['covered']}，"
                      f"覆盖率 {_percent(part['rate'])}")
