"""Shared plumbing of the benchmarks: broker vhost, PostgreSQL schema, processes."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import requests

from cqo.demo import redact
from tests.support import infra

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # as cqo.cli does
ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789-abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def management_problem(management_url: str, exc: requests.RequestException) -> str:
    """The one line a benchmark ends with when the broker's management API (which makes
    its vhost) cannot be used."""
    where = redact(management_url)
    if isinstance(exc, requests.HTTPError) and exc.response is not None \
            and exc.response.status_code in (401, 403):
        return (f"RabbitMQ 管理接口 {where} 拒绝了登录（HTTP {exc.response.status_code}）："
                "请检查 RABBITMQ_MANAGEMENT_URL 中的用户名和密码")
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        return (f"RabbitMQ 管理接口 {where} 无法连接：请启用管理插件"
                "（rabbitmq-plugins enable rabbitmq_management），"
                "或用环境变量 RABBITMQ_MANAGEMENT_URL 指定管理接口地址")
    return (f"RabbitMQ 管理接口 {where} 未能创建基准测试专用的虚拟主机（{type(exc).__name__}）："
            "请确认 rabbitmq_management 插件已启用且消息服务器运行正常")


@contextmanager
def isolated_infra(tag: str):
    """(amqp_uri of a fresh vhost, postgres url, schema prefix); removed afterwards.
    Without a usable management API: one line and exit status 2, not a traceback."""
    run = secrets.token_hex(3)
    with infra.broker() as broker, infra.postgres() as pg_url:
        vhost = f"cqo_bench_{tag}_{run}"
        try:
            broker.create_vhost(vhost)
        except requests.RequestException as exc:
            broker.delete_vhost(vhost)  # in case only the permissions failed
            print(management_problem(broker.management_url, exc), file=sys.stderr)
            raise SystemExit(2) from None
        schemas: list[str] = []
        try:
            yield broker.vhost_uri(vhost), pg_url, f"bench_{tag}_{run}", schemas
        finally:
            broker.delete_vhost(vhost)
            for schema in schemas:
                infra.drop_schema(pg_url, schema)


def spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "ab")
    try:
        return subprocess.Popen(args, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, cwd=ROOT,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        handle.close()


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cqo_args(*args: str) -> list[str]:
    """The `cqo` command line, run with this interpreter."""
    return [sys.executable, "-m", "cqo.cli", *args]


def serve_args(service: str, *extra: str) -> list[str]:
    return cqo_args("serve", service, *extra)
