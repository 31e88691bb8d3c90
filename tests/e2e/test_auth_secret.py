"""Defect 8: no published token secret. A service started without CQO_AUTH_SECRET uses
the secret generated into its keys folder (DEV_KEYS_DIR), which `cqo token` reads too;
without a keys folder (production) it refuses to start and names the missing setting."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import uuid

import jwt
import pytest
import requests

from cqo.runner import probe_port
from cqo.stack import Stack
from tests.e2e.support import free_port_offset

pytestmark = pytest.mark.e2e

# the value shared/auth.py and the services' config.yaml used to fall back to
PUBLISHED_SECRET = "cqo-development-secret-change-me-0123456789"


def cqo(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cqo.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def forged(role: str = "city_officer") -> str:
    """A token as anyone who read the old source could make it."""
    import time
    now = int(time.time())
    return jwt.encode({"sub": "intruder", "role": role, "iss": "cqo", "iat": now,
                       "exp": now + 3600}, PUBLISHED_SECRET, algorithm="HS256")


@pytest.fixture
def registry_without_secret(broker, tmp_path, monkeypatch):
    monkeypatch.delenv("CQO_AUTH_SECRET", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    vhost = f"cqo_e2e_secret_{uuid.uuid4().hex[:8]}"
    broker.create_vhost(vhost)
    stack = Stack(tmp_path / "stack", amqp_uri=broker.vhost_uri(vhost), counties=(),
                  services=("registry",), port_offset=free_port_offset(0, ("registry",)))
    try:
        stack.start(wait=90)
        yield stack
    finally:
        stack.stop()
        broker.delete_vhost(vhost)


def test_published_secret_refused_and_cqo_token_agrees_through_the_keys_folder(
        registry_without_secret):
    stack = registry_without_secret
    url = stack.spec("registry").base_url + "/api/v1/filings"
    keys_dir = stack.workdir / "keys"

    refused = requests.get(url, headers={"Authorization": "Bearer " + forged()}, timeout=10)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "AUTH_INVALID"

    secret_file = keys_dir / "auth_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_bytes()) >= 32

    env = {k: v for k, v in os.environ.items() if k != "CQO_AUTH_SECRET"}
    for args, extra in ((["--keys-dir", str(keys_dir)], {}),
                        ([], {"DEV_KEYS_DIR": str(keys_dir)})):
        issued = cqo("token", "--role", "city_officer", *args, env={**env, **extra})
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip()
        ok = requests.get(url, headers={"Authorization": "Bearer " + token}, timeout=10)
        assert ok.status_code == 200, ok.text


def test_refuses_to_start_without_a_secret_in_production(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "CQO_AUTH_SECRET"}
    env.update(DEV_KEYS_DIR="", DATABASE_URL=f"sqlite:///{tmp_path / 'talent.db'}",
               WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    result = subprocess.run([sys.executable, "-m", "cqo.cli", "serve", "talent"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    # the English log line names the setting, and so does the operator's message
    assert "cannot start talent: CQO_AUTH_SECRET is not set and DEV_KEYS_DIR is empty" in output
    assert "无法启动服务 talent：未设置 CQO_AUTH_SECRET" in result.stderr
    probe_port(f"127.0.0.1:{port}")  # nothing listens
    assert not (tmp_path / "var").exists()  # and no key was generated anywhere
