"""`cqo contacts import FILE`: the offices' notice contacts (CSV or XLSX; columns 单位级别,
县区代码, 名称, 联系人, 手机, 邮箱) posted to the notify service, `POST
/api/v1/contacts/import`; the rejected rows are printed with their line numbers and
reasons, phones and e-mails masked. Importing the same file again changes nothing.

The token is `--token` (or CQO_TOKEN: a county officer's imports only their county's
rows); without one, a city officer's token is signed as `cqo training import` does
(development only).

Exit codes: 0 every row imported; 1 some rows were rejected (the others are in); 2
nothing was imported (the file, the permission or the service).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cqo.cli_training import XLSX_TYPE, _problem, _token

contacts_app = typer.Typer(help="通知联系人：导入市局和县级市场监管部门的联系人。", no_args_is_help=True)
console = Console()

DEFAULT_URL = "http://127.0.0.1:8003"
SHOWN_REJECTS = 200


@contacts_app.callback()
def _contacts() -> None:
    """通知联系人：导入市局和县级市场监管部门的联系人。"""  # a group even with one command


@contacts_app.command("import")
def import_command(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                    help="联系人名单：CSV（UTF-8 或 GBK）或 XLSX，列名：单位级别、县区代码、名称、联系人、手机、邮箱"),
        url: str = typer.Option(DEFAULT_URL, "--url", envvar="CQO_NOTIFY_URL", help="通知服务地址"),
        token: Optional[str] = typer.Option(None, "--token", envvar="CQO_TOKEN",
                                            help="访问令牌（cqo token 签发；县级监管人员只能导入本县的联系人）")
) -> None:
    """导入通知联系人：逐行校验，无效行报告行号和原因且不影响其他行；重复导入同一文件不产生变化。

    退出码：0 全部导入；1 部分行被拒绝（其余已导入）；2 未导入（文件或权限有误，或无法连接服务）。
    """
    import requests

    from shared.errors import CqoError

    try:
        bearer = _token(token)
    except (CqoError, RuntimeError) as exc:
        console.print(f"[red]无法签发令牌：{getattr(exc, 'message', exc)}；请用 --token 指定[/]")
        raise typer.Exit(2)
    try:
        response = requests.post(f"{url.rstrip('/')}/api/v1/contacts/import", data=file.read_bytes(),
                                 params={"filename": file.name}, timeout=(10, 120),
                                 headers={"Authorization": f"Bearer {bearer}",
                                          "Content-Type": XLSX_TYPE if file.suffix.lower() == ".xlsx" else "text/csv"})
    except requests.RequestException as exc:
        console.print(f"[red]无法连接通知服务 {url}（{type(exc).__name__}），联系人未导入[/]")
        raise typer.Exit(2)
    if response.status_code != 200:
        console.print(f"[red]导入失败，未作任何修改：{_problem(response)}[/]")
        raise typer.Exit(2)
    report = response.json()
    rejected = report["rejected_rows"][:SHOWN_REJECTS]
    if rejected:
        table = Table(title=f"被拒绝的行（共 {report['rejected']} 行）")
        for column in ("行号", "名称", "县区代码", "手机（遮蔽）", "邮箱（遮蔽）", "原因"):
            table.add_column(column, overflow="fold")
        for r in rejected:
            table.add_row(str(r["line"]), r["name"], r["county"] or "", r["phone_masked"] or "",
                          r["email_masked"] or "", "；".join(r["reasons"]))
        console.print(table)
    if report["ignored_columns"]:
        console.print(f"未识别、已忽略的列：{'、'.join(report['ignored_columns'])}")
    console.print(f"文件：{report['format'].upper()}{'（' + report['encoding'] + '）' if report['encoding'] else ''}")
    console.print(("[yellow]" if report["rejected"] else "[green]") + report["summary"] + "[/]")
    if report["rejected"]:
        raise typer.Exit(1)
