"""`cqo stack up|status|down` as an operator runs it: separate CLI processes (the
installed `cqo` console script), the services as real processes in between, found
again through the stack folder. `--port-offset` keeps clear of a demo or another run
on the default ports.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from shared.stack import CITY_PORTS, FIRST_COUNTY_PORT
from tests.e2e.support import free_port_offset, wait_for

pytestmark = pytest.mark.e2e

COUNTIES = ("130921", "130922")
CITY = ("registry", "talent", "notify")

def cqo_command() -> list[str]:
    script = shutil.which("cqo", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "shared.cli"]


def run(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) is not running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def cli_env(broker, tmp_path):
    vhost = f"cqo_e2e_cli_{os.getpid()}_{int(time.monotonic() * 1000) % 100000}"
    broker.create_vhost(vhost)
    offset = free_port_offset(len(COUNTIES), CITY)
    workdir = tmp_path / "stack"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    env.pop("DATABASE_URL", None)  # the CLI's default: a SQLite file per service
    yield {"env": env, "dir": workdir, "offset": offset, "amqp_uri": broker.vhost_uri(vhost)}
    # whatever happened, nothing keeps running and the vhost goes
    if (workdir / "stack.json").exists():
        run(cqo_command() + ["stack", "down", "--dir", str(workdir)], env, timeout=60)
    for pid in started_in(workdir):  # anything the record lost track of
        os.kill(pid, signal.SIGKILL)
    broker.delete_vhost(vhost)


def started_in(workdir) -> list[int]:
    """Live `cqo serve` processes running in `workdir` (the stack's folder is their cwd):
    only processes this test started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") != str(workdir.resolve()):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmdline and alive(int(entry)):
            found.append(int(entry))
    return found


def test_stack_up_status_down(cli_env):
    env, workdir, offset = cli_env["env"], cli_env["dir"], cli_env["offset"]
    cqo = cqo_command()
    up = cqo + ["stack", "up", "--dir", str(workdir), "--port-offset", str(offset),
                "--counties", ",".join(COUNTIES), "--amqp-uri", cli_env["amqp_uri"]]

    started = time.monotonic()
    result = run(up, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "服务栈已启动" in result.stdout
    up_seconds = time.monotonic() - started
    ports = {name: CITY_PORTS[name] + offset for name in CITY}
    ports.update({f"filing_{c}": FIRST_COUNTY_PORT + i + offset for i, c in enumerate(COUNTIES)})
    for name, port in ports.items():
        assert f"{name} 已就绪" in result.stdout, result.stdout
        health = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
        assert health.status_code == 200 and health.json()["service"] == name, health.text

    # status, from another process: every service running and healthy
    result = run(cqo + ["stack", "status", "--dir", str(workdir)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, port in ports.items():
        line = next(line for line in result.stdout.splitlines() if name in line)
        assert str(port) in line and "是" in line and "正常" in line, line
    pids = {s["name"]: s["pid"] for s in
            json.loads((workdir / "stack.json").read_text(encoding="utf-8"))["specs"]}
    assert set(pids) == set(ports) and all(alive(p) for p in pids.values())
    assert sorted(started_in(workdir)) == sorted(pids.values())

    # a second `up` on the same folder refuses (ports in use) and leaves the running
    # stack and its record alone
    result = run(up, env)
    assert result.returncode == 1 and "端口" in result.stdout, result.stdout + result.stderr
    assert all(alive(p) for p in pids.values())
    result = run(cqo + ["stack", "status", "--dir", str(workdir)], env)
    assert result.returncode == 0, result.stdout + result.stderr

    # down: graceful (SIGTERM is enough, nothing had to be killed), everything gone
    started = time.monotonic()
    result = run(cqo + ["stack", "down", "--dir", str(workdir)], env, timeout=90)
    down_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "服务栈已停止" in result.stdout and "强制终止" not in result.stdout, result.stdout
    wait_for(lambda: not any(alive(p) for p in pids.values()), 15,
             lambda: f"still running: {[n for n, p in pids.items() if alive(p)]}")
    assert started_in(workdir) == []
    for name, port in ports.items():
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
    result = run(cqo + ["stack", "status", "--dir", str(workdir)], env)
    assert result.returncode == 1  # nothing healthy any more
    assert all("否" in line for line in result.stdout.splitlines() if any(n in line for n in ports))
    print(f"\nstack up {up_seconds:.1f}s, down {down_seconds:.1f}s")


def test_stack_status_and_down_without_a_stack(cli_env):
    env, workdir = cli_env["env"], cli_env["dir"]
    for command in ("status", "down"):
        result = run(cqo_command() + ["stack", command, "--dir", str(workdir)], env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "没有正在运行的服务栈记录" in result.stdout
