"""`cqo training import FILE --course ID`: a course's attendance file (CSV or XLSX) posted
to the talent service, `POST /api/v1/courses/{id}/attendance/import`, as an officer
uploads it; the rejected rows are printed with their line numbers and reasons.

The token is `--token` (or CQO_TOKEN); without one, a city officer's token is signed
with the secret `cqo token` uses (CQO_AUTH_SECRET, else the development keys folder),
which only works where that secret is the service's: a development stack.

Exit codes: 0 every row imported; 1 the file was imported but some rows were rejected
(the others are in); 2 nothing was imported (the file as a whole was refused, the
course or the permission was missing, or the service could not be reached).
"""
from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

training_app = typer.Typer(help="培训（第六条、第十五条“教育培训”）：导入课程学员名单。", no_args_is_help=True)
console = Console()

DEFAULT_URL = "http://127.0.0.1:8002"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_REJECTS = 200


@training_app.callback()
def _training() -> None:
    """培训（第六条、第十五条“教育培训”）：导入课程学员名单。"""  # a group even with one command


class _Reading:
    """The file as the request body, advancing the progress bar as it is sent; once all
    is sent, the bar says the service is checking the rows."""

    def __init__(self, handle, size: int, bar: Progress, task, name: str):
        self.handle, self.size, self.bar, self.task, self.name = handle, size, bar, task, name
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        chunk = self.handle.read(amount)
        self.sent += len(chunk)
        done = self.sent >= self.size
        self.bar.update(self.task, completed=self.sent,
                        description=f"{self.name}（已上传，服务端逐行校验中…）" if done else self.name)
        return chunk


def _token(given: Optional[str]) -> str:
    if given:
        return given
    from shared.auth import issue_token
    from shared.keys import AUTH_SECRET_ENV, DEFAULT_DEV_KEYS_DIR, Keys

    secret = os.environ.get(AUTH_SECRET_ENV)
    keys_dir = os.environ.get("DEV_KEYS_DIR", DEFAULT_DEV_KEYS_DIR)
    if not secret:
        console.print(f"提示：未指定 --token，使用开发密钥目录 {keys_dir} 中的密钥签发市级监管人员令牌，仅限本地开发。",
                      style="dim")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    secret = Keys({"AUTH_SECRET": secret, "DEV_KEYS_DIR": keys_dir}).auth_secret()
    return issue_token(secret, "city_officer", subject=f"cli:{user}")


def _problem(response) -> str:
    try:
        body = response.json()
        return body.get("detail") or body.get("title") or response.text[:200]
    except ValueError:
        return f"HTTP {response.status_code}"


@training_app.command("import")
def import_command(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                    help="学员名单：CSV（UTF-8 或 GBK）或 XLSX"),
        course: int = typer.Option(..., "--course", min=1, help="培训课程编号"),
        url: str = typer.Option(DEFAULT_URL, "--url", envvar="CQO_TALENT_URL", help="人才服务地址"),
        token: Optional[str] = typer.Option(None, "--token", envvar="CQO_TOKEN",
                                            help="访问令牌（cqo token 签发；县级监管人员只能导入本县的县级培训）")
) -> None:
    """导入课程学员名单：逐行校验，无效行报告行号和原因且不影响其他行；重复导入同一文件不产生变化。

    退出码：0 全部导入；1 部分行被拒绝（其余已导入）；2 未导入（文件、课程或权限有误，或无法连接服务）。
    """
    import requests

    from shared.errors import CqoError

    try:
        bearer = _token(token)
    except (CqoError, RuntimeError) as exc:
        console.print(f"[red]无法签发令牌：{getattr(exc, 'message', exc)}；请用 --token 指定[/]")
        raise typer.Exit(2)
    endpoint = f"{url.rstrip('/')}/api/v1/courses/{course}/attendance/import"
    size = file.stat().st_size
    columns = [TextColumn("[bold]导入学员名单[/] {task.description}"), BarColumn(), DownloadColumn(),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console, transient=True) as bar, open(file, "rb") as handle:
            task = bar.add_task(file.name, total=size)
            body = _Reading(handle, size, bar, task, file.name)
            response = requests.post(endpoint, data=body, params={"filename": file.name}, timeout=(10, 900),
                                     headers={"Authorization": f"Bearer {bearer}", "Content-Length": str(size),
                                              "Content-Type": XLSX_TYPE if file.suffix.lower() == ".xlsx"
                                              else "text/csv"})
    except requests.RequestException as exc:
        console.print(f"[red]无法连接人才服务 {url}（{type(exc).__name__}），名单未导入[/]")
        raise typer.Exit(2)
    if response.status_code != 200:
        console.print(f"[red]导入失败，未作任何修改：{_problem(response)}[/]")
        raise typer.Exit(2)
    report = response.json()
    _print(report)
    if report["rejected"]:
        raise typer.Exit(1)


def _print(report: dict) -> None:
    rejected = report["rejected_rows"][:SHOWN_REJECTS]
    if rejected:
        shown = f"，显示前 {len(rejected)} 行" if report["rejected"] > len(rejected) else ""
        table = Table(title=f"被拒绝的行（共 {report['rejected']} 行{shown}）")
        for column in ("行号", "姓名", "证件号码（脱敏）", "原因"):
            table.add_column(column, overflow="fold")
        for entry in rejected:
            table.add_row(str(entry["line"]), entry["person_name"], entry["id_masked"], "；".join(entry["reasons"]))
        console.print(table)
    if report["ignored_columns"]:
        console.print(f"未识别、已忽略的列：{'、'.join(report['ignored_columns'])}")
    console.print(f"课程：{report['course_id']}；文件：{report['format'].upper()}"
                  f"{'（' + report['encoding'] + '）' if report['encoding'] else ''}；"
                  f"发布证书事件 {report['certificates_announced']} 条"
                  + (f"；因考核结果更正为不合格撤销证书 {report['certificates_revoked']} 张"
                     if report.get("certificates_revoked") else ""))
    console.print(("[yellow]" if report["rejected"] else "[green]") + report["summary"] + "[/]")
