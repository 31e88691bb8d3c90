"""Shared plumbing of the benchmarks: broker vhost, PostgreSQL schema, processes."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from shared.testing import infra

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789-abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def isolated_infra(tag: str):
    """(amqp_uri of a fresh vhost, postgres url, schema prefix); removed afterwards."""
    run = secrets.token_hex(3)
    with infra.broker() as broker, infra.postgres() as pg_url:
        vhost = f"cqo_bench_{tag}_{run}"
        broker.create_vhost(vhost)
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


def serve_args(service: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "shared.cli", "serve", service, *extra]
