"""Defect 12: a benchmark run where the broker has no management API (the plugin that
makes its vhost) ends with one line saying what to enable and a non-zero status, not a
traceback. Run as the operator runs it, against a port where nothing listens."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bench.common import management_problem

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # released on close: nothing listens there


@pytest.mark.parametrize("script", ["bench.roster", "bench.lookup", "bench.forwarding",
                                    "bench.multisite"])
def test_without_the_management_plugin_one_line_and_exit_2(script):
    env = {**os.environ,
           "RABBITMQ_MANAGEMENT_URL": f"http://guest:secret-pw@127.0.0.1:{closed_port()}"}
    result = subprocess.run([sys.executable, "-m", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "rabbitmq-plugins enable rabbitmq_management" in lines[0]
    assert "secret-pw" not in lines[0]  # the URL is shown without its password
    assert "RESULT" not in result.stdout


def test_other_management_failures_say_what_they_are():
    url = "http://guest:pw@127.0.0.1:15672"
    response = requests.Response()
    response.status_code = 401
    refused = management_problem(url, requests.HTTPError(response=response))
    assert "401" in refused and "RABBITMQ_MANAGEMENT_URL" in refused and "pw" not in refused
    slow = management_problem(url, requests.ReadTimeout())
    assert "ReadTimeout" in slow and "rabbitmq_management" in slow
