"""Time to healthy of the compose stack, measured from outside: every application
service's `/api/v1/health` on its published host port answers 200 with its database
and its broker checked (not podman's or docker's health state, which podman without
systemd never updates). What `cqo stack health` runs.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

# ${VAR}, ${VAR:-default}, ${VAR-default}: the forms the compose file uses for ports
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")
REQUIRED_CHECKS = ("database", "broker")


@dataclass
class Endpoint:
    name: str
    url: str
    healthy_after_s: float | None = None
    last: str = "未应答"
    kind: str = "http"   # http: a service's /api/v1/health; amqp, postgresql: a login

    @property
    def shown(self) -> str:
        """The URL without its password, for printing."""
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", self.url)


def _interpolate(text: str, environ) -> str:
    def repl(match: re.Match) -> str:
        name, op, default = match.groups()
        value = environ.get(name)
        if op == ":-" and not value or op == "-" and value is None:
            return default
        return value or ""
    return _VAR.sub(repl, text)


def endpoints(compose_file: Path, host: str = "127.0.0.1", environ=None) -> list[Endpoint]:
    """What to poll: the health URL of every service that runs `cqo serve` (those with
    a command), on the host port published for its WEB_SERVER_ADDRESS port, and the
    broker and the database (a login as the compose file's user)."""
    environ = os.environ if environ is None else environ
    compose = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    found = []
    for name, service in compose.get("services", {}).items():
        env = {k: _interpolate(str(v), environ) for k, v in (service.get("environment") or {}).items()}
        if "RABBITMQ_DEFAULT_USER" in env or "POSTGRES_USER" in env:
            found.append(_backing_service(name, service, env, host, environ))
            continue
        address = env.get("WEB_SERVER_ADDRESS")
        if "command" not in service or not address:
            continue
        port = _published(name, service, str(address).rsplit(":", 1)[1], environ)
        found.append(Endpoint(name, f"http://{host}:{port}/api/v1/health"))
    return found


def _published(name: str, service: dict, container_port: str, environ) -> str:
    for mapping in service.get("ports", []):
        parts = _interpolate(str(mapping), environ).split(":")
        if parts[-1] == container_port:
            return parts[-2]
    raise ValueError(f"服务 {name} 没有发布端口 {container_port}")


def _backing_service(name: str, service: dict, env: dict, host: str, environ) -> Endpoint:
    """The broker or the database: healthy when the compose file's user logs in through
    the published port."""
    from urllib.parse import quote

    if "RABBITMQ_DEFAULT_USER" in env:
        user, password = env["RABBITMQ_DEFAULT_USER"], env.get("RABBITMQ_DEFAULT_PASS", "")
        port = _published(name, service, "5672", environ)
        return Endpoint(name, f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/",
                        kind="amqp")
    user, password = env["POSTGRES_USER"], env.get("POSTGRES_PASSWORD", "")
    port = _published(name, service, "5432", environ)
    return Endpoint(name, f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
                          f"{env.get('POSTGRES_DB', user)}", kind="postgresql")


def _login(endpoint: Endpoint) -> bool:
    try:
        if endpoint.kind == "amqp":
            from kombu import Connection

            with Connection(endpoint.url, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1)
        else:
            import psycopg2

            psycopg2.connect(endpoint.url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - anything but a login is "not yet"
        endpoint.last = type(exc).__name__
        return False
    endpoint.last = "ok"
    return True


def probe(endpoint: Endpoint) -> bool:
    if endpoint.kind != "http":
        return _login(endpoint)
    try:
        resp = requests.get(endpoint.url, timeout=3)
    except requests.RequestException as exc:
        endpoint.last = type(exc).__name__
        return False
    try:
        checks = resp.json().get("checks", {})
    except ValueError:
        checks = {}
    endpoint.last = f"{resp.status_code} {checks}"
    return resp.status_code == 200 and all(checks.get(c) == "ok" for c in REQUIRED_CHECKS)


def wait_healthy(found: list[Endpoint], timeout: float, interval: float = 0.5,
                 on_healthy=None) -> float:
    """Polls until every endpoint is healthy; returns the seconds it took (raises
    TimeoutError naming the ones that are not)."""
    start = time.monotonic()
    while True:
        for endpoint in found:
            if endpoint.healthy_after_s is None and probe(endpoint):
                endpoint.healthy_after_s = time.monotonic() - start
                if on_healthy:
                    on_healthy(endpoint)
        if all(e.healthy_after_s is not None for e in found):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            waiting = [f"{e.name}（{e.last}）" for e in found if e.healthy_after_s is None]
            raise TimeoutError(f"{timeout:.0f} 秒内未就绪：{'、'.join(waiting)}")
        time.sleep(interval)
