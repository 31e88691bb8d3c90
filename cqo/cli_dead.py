"""`cqo dead list|replay`: the operator's view of messages a consumer could not apply."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

dead_app = typer.Typer(help="死信：消费者无法处理的消息（查看、导出、重放）。", no_args_is_help=True)
console = Console()

SERVICE = typer.Option("registry", "--service", help="服务：registry、filing、talent、notify")
COUNTY = typer.Option(None, "--county", help="县级区划代码（filing 服务）")
CONFIG = typer.Option(None, "--config", help="服务配置文件（默认为服务自带配置）")


def _database(service: str, county: Optional[str], config: Optional[Path]):
    from shared.db import database_from_config
    from cqo.service_support import load_service_config

    cfg = load_service_config(service, config, overrides={"COUNTY_CODE": county})
    default = f"var/{service}_{county}.db" if county else f"var/{service}.db"
    return database_from_config(cfg, default_sqlite=default), cfg


@dead_app.command("list")
def list_command(service: str = SERVICE, county: Optional[str] = COUNTY,
                 config: Optional[Path] = CONFIG,
                 include_replayed: bool = typer.Option(False, "--all", help="包括已重放的死信"),
                 limit: int = typer.Option(100, min=1, max=10000),
                 out: Optional[Path] = typer.Option(None, "--out", help="导出为 CSV 文件")) -> None:
    """列出死信：编号、消费者、错误代码与原因。"""
    from shared.messaging.dead import list_dead_letters

    db, _ = _database(service, county, config)
    try:
        rows = list_dead_letters(db, include_replayed=include_replayed, limit=limit)
    finally:
        db.dispose()
    if out is not None:
        with open(out, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["编号", "消费者", "消息编号", "路由键", "错误代码", "错误原因", "记录时间", "重放时间"])
            for r in rows:
                writer.writerow([r["id"], r["consumer"], r["message_id"], r["routing_key"],
                                 r["error_code"], r["error_reason"], r["created_at"], r["replayed_at"] or ""])
        console.print(f"已导出 {len(rows)} 条死信到 {out}")
        return
    if not rows:
        console.print("没有待处理的死信")
        return
    table = Table(title=f"{service} 死信（{len(rows)} 条）")
    for column in ("编号", "消费者", "路由键", "错误代码", "错误原因", "记录时间"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["id"]), r["consumer"], r["routing_key"] or "", r["error_code"],
                      r["error_reason"], f"{r['created_at']:%Y-%m-%d %H:%M:%S}")
    console.print(table)


@dead_app.command("replay")
def replay_command(dead_letter_id: int = typer.Argument(..., help="死信编号"),
                   service: str = SERVICE, county: Optional[str] = COUNTY,
                   config: Optional[Path] = CONFIG,
                   force: bool = typer.Option(False, "--force", help="已重放过的也再次重放")) -> None:
    """把死信按原交换机和路由键重新发布（消息编号不变，消费者仍会去重）。"""
    from shared.errors import CqoError
    from shared.messaging.dead import replay

    db, cfg = _database(service, county, config)
    try:
        message_id = replay(db, cfg["AMQP_URI"], dead_letter_id, force=force)
    except CqoError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1)
    finally:
        db.dispose()
    console.print(f"死信 {dead_letter_id} 已重新发布（消息编号 {message_id}）")
