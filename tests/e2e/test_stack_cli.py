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

from cqo.stack import CITY_PORTS, FIRST_COUNTY_PORT
from tests.e2e.support import free_port_offset, wait_for

pytestmark = pytest.mark.e2e

COUNTIES = ("130921", "130922")
CITY = ("registry", "talent", "notify")

def cqo_command() -> list[str]:
    script = shutil.which("cqo", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "cqo.cli"]


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


CAMPAIGN = {"year": 2026, "notice_number": "沧市监〔2026〕1号", "title": "2026年度首席质量官集中备案",
            "notice_text": "各县（市、区）：请组织辖区企业于3月底前完成首席质量官备案。",
            "opens_on": "2026-03-01", "closes_on": "2026-03-31"}


def recorded_pids(workdir) -> dict:
    return {s["name"]: s["pid"] for s in
            json.loads((workdir / "stack.json").read_text(encoding="utf-8"))["specs"]}


def test_stop_start_restart_one_service(cli_env):
    """Defect 12: one service of the stack is stopped, started and restarted by name,
    from shells that lack the settings `up` had, with the environment recorded at `up`
    (same database, same keys, same token secret); `status` and `down` stay right."""
    from shared.auth import issue_token

    env, workdir, offset = cli_env["env"], cli_env["dir"], cli_env["offset"]
    cqo = cqo_command()
    secret = "stack-restart-secret-0123456789-abcdefghij"
    up_env = {**env, "CQO_AUTH_SECRET": secret, "PROGRESS_INTERVAL_S": "3"}
    other_shell = {k: v for k, v in env.items() if k not in ("CQO_AUTH_SECRET", "PROGRESS_INTERVAL_S")}
    result = run(cqo + ["stack", "up", "--dir", str(workdir), "--port-offset", str(offset),
                        "--counties", "130921", "--amqp-uri", cli_env["amqp_uri"]], up_env)
    assert result.returncode == 0, result.stdout + result.stderr
    registry = f"http://127.0.0.1:{CITY_PORTS['registry'] + offset}/api/v1"
    headers = {"Authorization": "Bearer " + issue_token(secret, "city_officer")}
    created = requests.post(registry + "/campaigns", json=CAMPAIGN, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    # the record keeps the environments apart from stack.json, owner-only
    assert secret not in (workdir / "stack.json").read_text(encoding="utf-8")
    env_record = workdir / "stack.env.json"
    assert oct(env_record.stat().st_mode & 0o777) == "0o600"
    assert json.loads(env_record.read_text())["registry"]["CQO_AUTH_SECRET"] == secret
    before = recorded_pids(workdir)

    result = run(cqo + ["stack", "restart", "registry", "--dir", str(workdir)], other_shell)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "registry 已停止" in result.stdout and "registry 已就绪" in result.stdout, result.stdout
    after = recorded_pids(workdir)
    assert after["registry"] != before["registry"] and alive(after["registry"])
    assert not alive(before["registry"])
    assert {k: v for k, v in after.items() if k != "registry"} == {
        k: v for k, v in before.items() if k != "registry"}
    # same secret (from up's shell, not this one) and same database: the campaign is there
    listed = requests.get(registry + "/campaigns", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    assert [c["year"] for c in listed.json()] == [2026], listed.text
    assert sorted(started_in(workdir)) == sorted(after.values())

    county = "filing_130921"
    result = run(cqo + ["stack", "stop", county, "--dir", str(workdir)], other_shell)
    assert result.returncode == 0 and f"{county} 已停止" in result.stdout, result.stdout + result.stderr
    assert not alive(after[county]) and recorded_pids(workdir)[county] is None
    status = run(cqo + ["stack", "status", "--dir", str(workdir)], other_shell)
    assert status.returncode == 1  # one service down, and status says which
    line = next(line for line in status.stdout.splitlines() if county in line)
    assert "否" in line and "异常" in line, line
    assert "是" in next(line for line in status.stdout.splitlines() if "registry" in line)
    again = run(cqo + ["stack", "stop", county, "--dir", str(workdir)], other_shell)
    assert again.returncode == 0 and "未在运行" in again.stdout, again.stdout

    result = run(cqo + ["stack", "start", county, "--dir", str(workdir)], other_shell)
    assert result.returncode == 0, result.stdout + result.stderr
    started = recorded_pids(workdir)[county]
    assert started and alive(started)
    county_url = f"http://127.0.0.1:{FIRST_COUNTY_PORT + offset}/api/v1"
    officer = {"Authorization": "Bearer " + issue_token(secret, "county_officer", county="130921")}
    # the county's settings came back too: its token secret, and its own database
    assert requests.get(county_url + "/filings", headers=officer, timeout=30).status_code == 200
    assert (workdir / f"{county}.db").exists() and not (workdir / "var").exists()
    busy = run(cqo + ["stack", "start", county, "--dir", str(workdir)], other_shell)
    assert busy.returncode == 1 and "已在运行" in busy.stdout, busy.stdout
    unknown = run(cqo + ["stack", "restart", "filing_999999", "--dir", str(workdir)], other_shell)
    assert unknown.returncode == 2 and "registry" in unknown.stdout, unknown.stdout

    status = run(cqo + ["stack", "status", "--dir", str(workdir)], other_shell)
    assert status.returncode == 0, status.stdout
    pids = recorded_pids(workdir)
    assert sorted(started_in(workdir)) == sorted(pids.values())
    result = run(cqo + ["stack", "down", "--dir", str(workdir)], other_shell, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: not any(alive(p) for p in pids.values()), 15, "still running")
    assert started_in(workdir) == []  # nothing the record lost track of
