"""`cqo report assessment --year Y --out FILE(.xlsx|.json)`: the annual assessment report
(art. 16, 年度政府质量工作考核) from the registry's database, as GET
/api/v1/reports/assessment(.xlsx) gives it to a city officer."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()
FORMATS = (".xlsx", ".json")


def _percent(value) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value) -> str:
    return "—" if value is None else str(value)


def _ask_talent(config: Optional[Path], year: int, timeout: float = 6.0) -> dict | None:
    """The talent service's training figures over the registry's broker; None when it
    does not answer in time. In a daemon thread: an unreachable broker must not hang the
    command (this process is not under eventlet)."""
    import threading

    from nameko.standalone.rpc import ClusterRpcProxy
    from cqo.service_support import load_service_config

    answer: list = []

    def ask() -> None:
        try:
            uri = load_service_config("registry", config)["AMQP_URI"]
            with ClusterRpcProxy({"AMQP_URI": uri}, timeout=timeout) as rpc:
                answer.append(rpc.talent.training_summary(year))
        except Exception:  # unknown service, timeout, no broker: the report says so
            pass

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(timeout + 2)
    return answer[0] if answer else None


def assessment(year: int = typer.Option(..., "--year", min=2000, max=2999, help="考核年度"),
               out: Path = typer.Option(..., "--out", help="输出文件：.xlsx（汇总表＋各县分表）或 .json"),
               config: Optional[Path] = typer.Option(None, "--config",
                                                     help="registry 服务配置文件（默认为服务自带配置）")) -> None:
    """生成年度政府质量工作考核表（第十六条）：各县（市、区）覆盖率、集中备案完成情况、逾期变更、撤换建议。"""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        console.print(f"[red]输出文件应以 {' 或 '.join(FORMATS)} 结尾：{out}[/]")
        raise typer.Exit(2)
    from cqo.cli_roster import registry_database  # config, jurisdiction, policy, migrations
    from shared.errors import CqoError
    from services.registry.reporting import assessment as use_case, columns, schemas, workbook

    figures = _ask_talent(config, year)
    try:
        with registry_database(config) as db, db.unit_of_work() as uow:
            report = use_case.build(uow, year, training=figures)
    except CqoError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        out.write_bytes(workbook.to_xlsx(report))
    else:
        out.write_text(schemas.to_json(report) + "\n", encoding="utf-8")

    table = Table(title=report["title"] + f"（截至{report['as_of']:%Y年%m月%d日}）")
    table.add_column("县（市、区）", no_wrap=True, min_width=10)
    for header in ("名录", "覆盖率", "已备案", "已完成", "完成率", "名录外", "待办", "逾期", "建议未结",
                   "未响应"):
        table.add_column(header, justify="right", overflow="fold")
    for row in [*report["counties"], report["total"]]:
        table.add_row(row["county_name"], _number(row["roster_size"]), _percent(row["coverage_rate"]),
                      _number(row["filed"]), _number(row["completed"]), _percent(row["completion_rate"]),
                      _number(row["filed_off_roster"]), _number(row["pending"]),
                      _number(row["late_changes"]), _number(row["recommendations_open"]),
                      _number(row["recommendations_unanswered"]))
    console.print(table)
    console.print(f"已写入 {out}（{len(report['counties'])} 个县（市、区））")
    total = report["total"]
    console.print(f"培训（{total['training']}）：培训班次 {_number(total['training_courses'])}，"
                  f"参训 {_number(total['training_attendees'])} 人次，"
                  f"合格 {_number(total['training_passed'])} 人次")
    console.print(columns.TRAINING_NOTE)
