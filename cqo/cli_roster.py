"""`cqo roster import|template|imports`: the roster of above-scale enterprises (art. 4)
in the registry's database, as `POST /api/v1/roster` imports it for a city officer.

Exit codes of `cqo roster import`: 0 every row imported; 1 the file was imported but
some rows were rejected (listed with line numbers and reasons; the valid rows are in);
2 the file as a whole could not be imported (format, encoding, missing columns) and
nothing changed.
"""
from __future__ import annotations

import csv
import getpass
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn
from rich.table import Table

roster_app = typer.Typer(help="规模以上企业名录（第四条）：导入、模板、导入记录。", no_args_is_help=True)
console = Console()

CONFIG = typer.Option(None, "--config", help="registry 服务配置文件（默认为服务自带配置）")
SHOWN_REJECTS = 200  # rejected rows printed; all of them go to --rejects


@contextmanager
def registry_database(config: Optional[Path]) -> Iterator:
    """The registry's database from its config, migrated as the service would on start,
    with the deployment's jurisdiction and coverage policy applied."""
    import services.registry
    from services.registry import active_cqo
    from shared.contracts import use_jurisdiction
    from shared.db import database_from_config
    from shared.migrate import upgrade
    from cqo.service_support import load_service_config
    from shared.validators.divisions import Jurisdiction

    cfg = load_service_config("registry", config)
    if cfg.get("JURISDICTION_CSV"):
        use_jurisdiction(Jurisdiction.from_csv(cfg["JURISDICTION_CSV"]))
    active_cqo.set_policy(active_cqo.policy_from_config(cfg))
    db = database_from_config(cfg, default_sqlite="var/registry.db")
    try:
        upgrade(db, Path(services.registry.__file__).parent / "migrations" / "versions")
        yield db
    finally:
        db.dispose()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@roster_app.command("import")
def import_command(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                    help="名录文件：CSV（UTF-8 或 GBK）或 XLSX"),
        year: Optional[int] = typer.Option(None, "--year", min=2000, max=2100,
                                           help="年度（文件没有年度列时必填；指定后与之不同的行被拒绝）"),
        rejects: Optional[Path] = typer.Option(None, "--rejects", help="把全部被拒绝的行写入此 CSV 文件"),
        config: Optional[Path] = CONFIG) -> None:
    """导入规模以上企业名录：逐行校验，无效行报告行号和原因且不影响其他行；重复导入同一文件不产生变化。

    退出码：0 全部导入；1 部分行被拒绝（其余已导入）；2 文件整体无法导入（未做任何修改）。
    """
    from services.registry.roster import importing
    from shared.errors import CqoError

    rejected: list[dict] = []
    reject_file = open(rejects, "w", encoding="utf-8-sig", newline="") if rejects else None
    reject_writer = csv.writer(reject_file) if reject_file else None
    if reject_writer:
        reject_writer.writerow(["行号", "统一社会信用代码", "企业名称", "原因"])

    def on_reject(entry: dict) -> None:
        if len(rejected) < SHOWN_REJECTS:
            rejected.append(entry)
        if reject_writer:
            reject_writer.writerow([entry["line"], entry["uscc"], entry["name"], "；".join(entry["reasons"])])

    columns = [TextColumn("[bold]导入名录[/] {task.description}"), BarColumn()]
    columns += [DownloadColumn() if file.suffix.lower() != ".xlsx" else MofNCompleteColumn(),
                TimeElapsedColumn()]
    try:
        with registry_database(config) as db, Progress(*columns, console=console, transient=True) as bar, \
                open(file, "rb") as stream:
            task = bar.add_task(file.name, total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            report = importing.import_roster(db, stream, source=file.name, actor=_actor(), year=year,
                                          progress=progress, on_reject=on_reject)
    except CqoError as exc:
        console.print(f"[red]导入失败，名录未作任何修改：{exc.message}[/]")
        raise typer.Exit(2)
    finally:
        if reject_file:
            reject_file.close()

    if rejected:
        table = Table(title=f"被拒绝的行（共 {report.rejected} 行"
                            f"{f'，显示前 {len(rejected)} 行' if report.rejected > len(rejected) else ''}）")
        for column in ("行号", "统一社会信用代码", "企业名称", "原因"):
            table.add_column(column, overflow="fold")
        for entry in rejected:
            table.add_row(str(entry["line"]), entry["uscc"], entry["name"], "；".join(entry["reasons"]))
        console.print(table)
        if rejects:
            console.print(f"全部被拒绝的行已写入 {rejects}")
    if report.ignored_columns:
        console.print(f"未识别、已忽略的列：{'、'.join(report.ignored_columns)}")
    years = "、".join(str(y) for y in sorted(report.years)) or "—"
    console.print(f"年度：{years}；文件：{report.file_format.upper()}"
                  f"{f'（{report.encoding}）' if report.encoding else ''}；导入记录编号：{report.import_id}")
    console.print(("[yellow]" if report.rejected else "[green]") + report.summary() + "[/]")
    if report.rejected:
        raise typer.Exit(1)


@roster_app.command("template")
def template_command(out: Path = typer.Option(..., "--out", help="输出文件：.csv 或 .xlsx")) -> None:
    """生成名录导入模板（表头及一行示例）。"""
    from services.registry.roster.listing import template_rows

    rows = template_rows()
    suffix = out.suffix.lower()
    if suffix == ".csv":
        with open(out, "w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerows(rows)
    elif suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "规上企业名录"
        for row in rows:
            sheet.append(row)
        for cell in sheet["A"]:
            cell.number_format = "@"  # text: the USCC must not become a number
        book.save(out)
    else:
        console.print(f"[red]输出文件应以 .csv 或 .xlsx 结尾：{out}[/]")
        raise typer.Exit(2)
    console.print(f"模板已写入 {out}")


@roster_app.command("imports")
def imports_command(config: Optional[Path] = CONFIG,
                    limit: int = typer.Option(20, "--limit", min=1, max=1000)) -> None:
    """最近的名录导入记录（谁、何时、哪个文件、结果）。"""
    from services.registry.roster import listing

    with registry_database(config) as db:
        records = listing.list_imports(db, limit=limit)
    if not records:
        console.print("还没有导入过名录")
        return
    table = Table(title="名录导入记录")
    for column in ("编号", "时间", "操作人", "文件", "年度", "读取", "新增", "更新", "未变化", "拒绝"):
        table.add_column(column)
    for r in records:
        table.add_row(str(r["import_id"]), f"{r['at']:%Y-%m-%d %H:%M}", r["actor"], r["source"],
                      "、".join(map(str, r["years"])), str(r["total_rows"]), str(r["inserted"]),
                      str(r["updated"]), str(r["unchanged"]), str(r["rejected"]))
    console.print(table)
