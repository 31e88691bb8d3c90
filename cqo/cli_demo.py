"""`cqo demo` (= `make demo`): registered in cqo/cli.py; the work is in cqo.demo."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional

import typer


def _interrupt(signum, frame):
    # SIGTERM (e.g. from a CI runner or `timeout`) cleans up exactly like Ctrl-C
    raise KeyboardInterrupt


def demo(
    workdir: Path = typer.Option(Path("var/demo"), "--dir",
                                 help="演示目录（数据库、日志；每次运行前清空）"),
    amqp_uri: str = typer.Option("amqp://guest:guest@127.0.0.1:5672/", envvar="AMQP_URI",
                                 help="RabbitMQ 地址（环境变量 AMQP_URI）"),
    management_url: Optional[str] = typer.Option(
        None, envvar="RABBITMQ_MANAGEMENT_URL",
        help="RabbitMQ 管理接口，用于创建演示专用虚拟主机（默认 http://用户:密码@消息服务器主机:15672）"),
    port_offset: Optional[int] = typer.Option(
        None, "--port-offset", envvar="CQO_DEMO_PORT_OFFSET", min=0, max=50000,
        help="端口偏移（默认端口 8001、8002、8003、8011、8012 被占用时自动选择）"),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="等待市局决定的最长秒数"),
    compose_file: Optional[Path] = typer.Option(
        None, "--compose", help="不启动服务，改用正在运行的 compose 服务栈（按其发布的端口）"),
    secret_file: Path = typer.Option(Path("secrets/auth_secret"), "--secret-file",
                                     help="与 --compose 同用：服务栈的令牌密钥文件"),
) -> None:
    """演示：启动市局（备案登记、人才服务、通知服务）与两个县的服务及演示用邮件服务器、短信网关，举办任职培训，
    完成一轮年度集中备案，市局核验培训证书，聘任专家并抽取、核验、公布专家组，打印各县统计表和各方收到的通知，
    然后停止全部服务。"""
    from rich.console import Console

    from cqo.demo import DemoOptions, run

    # piped output (make, CI, tests) gets a table wide enough for its Chinese columns
    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(width=120)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = run(DemoOptions(workdir=workdir, amqp_uri=amqp_uri, management_url=management_url,
                               port_offset=port_offset, decision_timeout=timeout,
                               compose_file=compose_file, secret_file=secret_file), console)
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)
