"""`cqo serve SERVICE`: run one service as a process (what compose and `cqo stack` start)."""
from __future__ import annotations

import logging
import logging.config
from pathlib import Path
from typing import Optional

import typer

from shared.keys import Keys, MissingKey, WeakKey

log = logging.getLogger(__name__)


def serve(
    service: str = typer.Argument(..., help="服务：registry、filing、talent、notify"),
    county: Optional[str] = typer.Option(None, "--county", help="县级区划代码（filing 服务必填）"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML 配置文件（默认为服务自带配置）"),
    port: Optional[int] = typer.Option(None, "--port", help="HTTP 端口（覆盖配置）"),
    processes: int = typer.Option(1, "--processes", min=1, max=16,
                                  help="进程数（多个进程共用同一端口）"),
) -> None:
    """运行一个服务进程，直到收到 SIGTERM 或 Ctrl-C。"""
    if processes > 1:
        import sys

        from cqo.runner import supervise
        from cqo.service_support import load_service_config

        cfg = load_service_config(service, config, overrides={"COUNTY_CODE": county})
        address = str(cfg.get("WEB_SERVER_ADDRESS", ""))
        if port is not None:
            address = f"{address.rsplit(':', 1)[0] or '127.0.0.1'}:{port}"
        child = [sys.executable, "-m", "cqo.cli", "serve", service]
        for flag, value in (("--county", county), ("--config", config), ("--port", port)):
            if value is not None:
                child += [flag, str(value)]
        raise typer.Exit(supervise(child, processes, address or None, service))
    # cqo.cli has monkey-patched already when the process started as `cqo serve`;
    # this covers a caller that invokes the command some other way
    import eventlet

    eventlet.monkey_patch()
    from cqo.runner import PortInUse, run
    from cqo.service_support import load_service_config, service_module

    try:
        module = service_module(service)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    overrides = {"COUNTY_CODE": county}
    cfg = load_service_config(service, config, overrides=overrides)
    if port is not None:
        host = str(cfg.get("WEB_SERVER_ADDRESS", "127.0.0.1:0")).rsplit(":", 1)[0]
        cfg["WEB_SERVER_ADDRESS"] = f"{host}:{port}"
    if "LOGGING" in cfg:
        logging.config.dictConfig(cfg["LOGGING"])
    else:
        logging.basicConfig(level=logging.INFO)
    from shared.logs import configure as configure_logs

    configure_logs(service, cfg.get("COUNTY_CODE"))
    try:
        # resolved once here, before anything listens: a missing secret stops the start
        cfg["AUTH_SECRET"] = Keys(cfg).auth_secret()
    except (MissingKey, WeakKey) as exc:
        log.error("cannot start %s: %s", service, exc)
        typer.echo(f"无法启动服务 {service}：{exc.message}", err=True)
        raise typer.Exit(2)
    from cqo.startup import DependencyUnavailable, wait_for_dependencies

    try:
        wait_for_dependencies(cfg)
    except DependencyUnavailable as exc:
        typer.echo(f"无法启动服务 {service}：{exc}", err=True)
        raise typer.Exit(4)
    try:
        service_cls = module.build_service(cfg)
    except Exception as exc:  # configuration errors carry a Chinese message
        typer.echo(f"无法启动服务 {service}：{exc}", err=True)
        raise typer.Exit(2)
    try:
        run([service_cls], cfg)
    except PortInUse as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3)
