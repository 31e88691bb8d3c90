"""`cqo stack up|down|status|stop|start|restart`: the local full stack as real processes;
`cqo stack health`: time to healthy of the compose stack (containers).

`stop|start|restart NAME` operate one process (NAME as `status` shows it) with the
environment recorded at `up`, and keep the record that `status` and `down` read true.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

stack_app = typer.Typer(help="本地完整服务栈（真实进程，与 docker-compose 相同的服务）。",
                        no_args_is_help=True)
console = Console()
DEFAULT_DIR = Path("var/stack")
ALL_CITY = ("registry", "talent", "notify")


def _counties(value: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip())


@stack_app.command("up")
def up(
    counties: str = typer.Option("130921,130922", help="县级区划代码，逗号分隔"),
    workdir: Path = typer.Option(DEFAULT_DIR, "--dir", help="数据库、日志与进程记录所在目录"),
    amqp_uri: str = typer.Option(os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
                                 help="RabbitMQ 地址"),
    database_url: Optional[str] = typer.Option(None, help="PostgreSQL 地址（默认每个服务一个 SQLite 文件）"),
    port_offset: int = typer.Option(int(os.environ.get("CQO_STACK_PORT_OFFSET", "0")), "--port-offset",
                                    min=0, max=50000, help="所有端口加上的偏移量（同一台机器上运行多个服务栈时使用）"),
) -> None:
    """启动市级服务与各县备案服务，等待全部就绪。"""
    from cqo.stack import Stack, StackError
    from cqo.runner import PortInUse

    stack = Stack(workdir, amqp_uri=amqp_uri, counties=_counties(counties), services=ALL_CITY,
                  database_url=database_url, port_offset=port_offset)
    try:
        with console.status("正在启动服务…"):
            stack.start(on_ready=lambda s: console.print(f"[green]✓[/] {s.name} 已就绪 {s.base_url}"))
    except PortInUse as exc:
        # nothing was started (ports are probed first); stop() would overwrite the
        # folder's record of a stack that is already running there, and `down` would
        # then no longer find its processes
        console.print(f"[red]启动失败：{exc}[/]")
        raise typer.Exit(1)
    except StackError as exc:
        console.print(f"[red]启动失败：{exc}[/]")
        stack.stop()
        raise typer.Exit(1)
    console.print(f"服务栈已启动；停止请运行 [bold]cqo stack down --dir {workdir}[/]")
    if not os.environ.get("CQO_AUTH_SECRET"):
        console.print(f"签发访问令牌：[bold]cqo token --keys-dir {workdir / 'keys'} --role city_officer[/]")


@stack_app.command("down")
def down(workdir: Path = typer.Option(DEFAULT_DIR, "--dir")) -> None:
    """停止服务栈（先 SIGTERM，超时后 SIGKILL）。"""
    stack = _load(workdir)
    killed = stack.stop()
    for name in killed:
        console.print(f"[yellow]{name} 未在时限内退出，已强制终止[/]")
    console.print("服务栈已停止")


@stack_app.command("status")
def status(workdir: Path = typer.Option(DEFAULT_DIR, "--dir")) -> None:
    """显示各服务进程与健康状态。"""
    stack = _load(workdir)
    table = Table(title="服务栈状态")
    for column in ("服务", "进程号", "端口", "运行", "健康"):
        table.add_column(column)
    rows = stack.status()
    for row in rows:
        table.add_row(row["name"], str(row["pid"] or "-"), str(row["port"]),
                      "是" if row["running"] else "否", "正常" if row["healthy"] else "异常")
    console.print(table)
    # a healthy answer on the port is not enough: it must come from our process
    if not all(r["running"] and r["healthy"] for r in rows):
        raise typer.Exit(1)


def _load(workdir: Path):
    from cqo.stack import Stack, StackError

    try:
        return Stack.load(workdir)
    except StackError as exc:
        console.print(str(exc))
        raise typer.Exit(1)


def _stop_one(stack, name: str) -> None:
    if not stack.running(name):
        console.print(f"{name} 未在运行")
        stack.stop([name])  # forgets a pid that is gone, so the record stays true
        return
    for killed in stack.stop([name]):
        console.print(f"[yellow]{killed} 未在时限内退出，已强制终止[/]")
    console.print(f"{name} 已停止")


def _start_one(stack, name: str, wait: float) -> None:
    from cqo.runner import PortInUse
    from cqo.stack import StackError

    try:
        with console.status(f"正在启动 {name}…"):
            spec = stack.start_one(name, wait=wait)
    except (StackError, PortInUse) as exc:
        console.print(f"[red]启动失败：{exc}[/]")
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {name} 已就绪 {spec.base_url}（进程号 {spec.pid}）")


NAME = typer.Argument(..., help="服务名，与 cqo stack status 所示相同，如 registry、filing_130921")
WAIT = typer.Option(60.0, "--wait", min=1.0, help="等待服务就绪的最长秒数")


@stack_app.command("stop")
def stop_one(name: str = NAME, workdir: Path = typer.Option(DEFAULT_DIR, "--dir")) -> None:
    """停止服务栈中的一个服务（先 SIGTERM，超时后 SIGKILL），记录随之更新。"""
    stack = _load(workdir)
    _check_name(stack, name)
    _stop_one(stack, name)


@stack_app.command("start")
def start_one(name: str = NAME, workdir: Path = typer.Option(DEFAULT_DIR, "--dir"),
              wait: float = WAIT) -> None:
    """按启动时记录的环境（数据库、模式、密钥目录、配置）重新启动一个已停止的服务。"""
    stack = _load(workdir)
    _check_name(stack, name)
    _start_one(stack, name, wait)


@stack_app.command("restart")
def restart_one(name: str = NAME, workdir: Path = typer.Option(DEFAULT_DIR, "--dir"),
                wait: float = WAIT) -> None:
    """重启服务栈中的一个服务（停止后按记录的环境启动），记录随之更新。"""
    stack = _load(workdir)
    _check_name(stack, name)
    _stop_one(stack, name)
    _start_one(stack, name, wait)


def _check_name(stack, name: str) -> None:
    from cqo.stack import StackError

    try:
        stack.spec(name)
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2)


@stack_app.command("health")
def health(
    compose_file: Path = typer.Option(Path("docker-compose.yml"), "--compose",
                                      help="compose 文件（按其中发布的端口检查各服务）"),
    host: str = typer.Option("127.0.0.1", help="发布端口所在主机"),
    timeout: float = typer.Option(300.0, "--timeout", min=1.0, help="最长等待秒数"),
) -> None:
    """等待 compose 服务栈中每个服务的 /api/v1/health 返回 200（数据库与消息队列均正常），
    并打印就绪用时。"""
    from cqo.compose_health import endpoints, wait_healthy

    try:
        found = endpoints(compose_file, host)
    except (OSError, ValueError) as exc:
        console.print(f"[red]无法读取 {compose_file}：{exc}[/]")
        raise typer.Exit(2)
    try:
        total = wait_healthy(found, timeout, on_healthy=lambda e: console.print(
            f"[green]✓[/] {e.name} 已就绪（{e.healthy_after_s:.1f} 秒）{e.shown}"))
    except TimeoutError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1)
    console.print(f"全部 {len(found)} 个服务已就绪，用时 {total:.1f} 秒")
    print(f"RESULT stack_healthy_s={total:.1f} services={len(found)}")
