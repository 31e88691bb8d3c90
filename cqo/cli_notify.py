"""`cqo notify retry`: deliveries that failed, or whose fate is unknown, are sent again
by the running notify service's timer."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import List, Optional

import typer

notify_app = typer.Typer(help="通知投递：重新投递失败或结果未知的邮件和短信。", no_args_is_help=True)


@notify_app.callback()
def _notify() -> None:
    """通知投递：重新投递失败或结果未知的邮件和短信。"""


@notify_app.command("retry")
def retry_command(
        status: List[str] = typer.Option(["failed"], "--status",
                                         help="failed（被拒绝或多次失败）或 unknown（可能已送达）；可重复"),
        since: Optional[str] = typer.Option(None, "--since", help="只重投此日期（YYYY-MM-DD，北京时间）以来的投递"),
        config: Optional[Path] = typer.Option(None, "--config", help="服务配置文件（默认为服务自带配置）")) -> None:
    """把符合条件的投递重新排入队列，由运行中的通知服务立即发送。"""
    from shared import clock
    from shared.db import database_from_config
    from cqo.service_support import load_service_config
    from services.notify.deliveries import RETRYABLE, retry

    bad = [s for s in status if s not in RETRYABLE]
    if bad:
        typer.echo(f"状态只能是 failed 或 unknown，而不是：{'、'.join(bad)}", err=True)
        raise typer.Exit(2)
    start = None
    if since:
        try:
            day = date.fromisoformat(since)
        except ValueError:
            typer.echo(f"日期格式不正确：{since}（应为 YYYY-MM-DD）", err=True)
            raise typer.Exit(2)
        start = datetime.combine(day, time(0), tzinfo=clock.TZ).astimezone(timezone.utc)
    db = database_from_config(load_service_config("notify", config), default_sqlite="var/notify.db")
    try:
        with db.unit_of_work() as uow:
            count = retry(uow, statuses=status, since=start)
    finally:
        db.dispose()
    typer.echo(f"已重新排入 {count} 条投递（{'、'.join(status)}），通知服务将立即发送")
