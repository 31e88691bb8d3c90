"""The container tooling without an engine: the key files of a deployment, the compose
file's health endpoints, and the start-up wait for the broker and the database."""
from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

import pytest
import yaml

from cqo.cli_keys import DEFAULT_INSTANCES, init_keys
from cqo.compose_health import endpoints
from cqo.startup import DependencyUnavailable, wait_for_dependencies
from shared.keys import Keys, public_pem_of

ROOT = Path(__file__).resolve().parents[2]


def test_keys_init_writes_every_secret_the_compose_file_mounts_once(tmp_path):
    written = init_keys(tmp_path / "secrets")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    files = {Path(s["file"]).name for s in compose["secrets"].values()}
    assert files == set(written)
    for name in written:
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600
    private = (tmp_path / "secrets/city_private_key.pem").read_text()
    assert public_pem_of(private) == (tmp_path / "secrets/city_public_key.pem").read_text()
    # what the services read: the token secret strong enough, a Fernet key per instance
    secret = Keys({"AUTH_SECRET": f"@{tmp_path}/secrets/auth_secret"}).auth_secret()
    before = {n: (tmp_path / "secrets" / n).read_text() for n in written}
    # again, with a new county: only its key is added, nothing is replaced
    assert init_keys(tmp_path / "secrets", (*DEFAULT_INSTANCES, "filing_130923")) == \
        ["id_encryption_keys.filing_130923"]
    assert {n: (tmp_path / "secrets" / n).read_text() for n in written} == before
    assert Keys({"AUTH_SECRET": f"@{tmp_path}/secrets/auth_secret"}).auth_secret() == secret


def test_health_endpoints_follow_the_published_ports(monkeypatch):
    found = endpoints(ROOT / "docker-compose.yml",
                      environ={"CQO_REGISTRY_PORT": "28001", "CQO_DB_PASSWORD": "s3cret"})
    urls = {e.name: e.url for e in found}
    assert set(urls) == {"rabbitmq", "postgres", "registry", "talent", "notify",
                         "filing_130921", "filing_130922"}
    assert urls["registry"] == "http://127.0.0.1:28001/api/v1/health"
    assert urls["filing_130921"] == "http://127.0.0.1:18011/api/v1/health"
    # the broker and the database: a login as the compose file's user, on the host port
    assert urls["rabbitmq"] == "amqp://cqo:cqo@127.0.0.1:35672/"
    assert urls["postgres"] == "postgresql://cqo:s3cret@127.0.0.1:35432/cqo"
    assert next(e for e in found if e.name == "postgres").shown == \
        "postgresql://cqo:***@127.0.0.1:35432/cqo"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


def test_start_gives_up_after_the_wait_with_a_chinese_message():
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as caught:
        wait_for_dependencies({"AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}/"}, timeout=1.5)
    assert 1.5 <= time.monotonic() - started < 10
    assert "消息队列" in str(caught.value)


def test_sqlite_is_not_waited_for():
    wait_for_dependencies({"DATABASE_URL": "sqlite:///nowhere/x.db"}, timeout=0)


def test_a_stop_ends_the_process_even_when_the_hub_is_blocked():
    """The watchdog is an OS thread: a call blocking every greenthread (here a plain
    sleep without eventlet's patch) cannot hold it."""
    import subprocess
    import sys

    code = ("import eventlet; eventlet.monkey_patch()\n"
            "from cqo.runner import _exit_later\n"
            "import eventlet.patcher\n"
            "_exit_later(0.5)\n"
            "eventlet.patcher.original('time').sleep(30)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20, cwd=ROOT)
    assert done.returncode == 1 and time.monotonic() - started < 15
    assert b"exiting" in done.stderr
