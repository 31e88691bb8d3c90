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


def _interpolate(text: str, environ) -> str:
    def repl(match: re.Match) -> str:
        name, op, default = match.groups()
        value = environ.get(name)
        if op == ":-" and not value or op == "-" and value is None:
            return default
        return value or ""
    return _VAR.sub(repl, text)


def endpoints(compose_file: Path, host: str = "127.0.0.1", environ=None) -> list[Endpoint]:
    """The health URL of every service that runs `cqo serve` (those with a command), on
    the host port published for its WEB_SERVER_ADDRESS port."""
    environ = os.environ if environ is None else environ
    compose = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    found = []
    for name, service in compose.get("services", {}).items():
        address = (service.get("environment") or {}).get("WEB_SERVER_ADDRESS")
        if "command" not in service or not address:
            continue
        container_port = str(address).rsplit(":", 1)[1]
        for mapping in service.get("ports", []):
            parts = _interpolate(str(mapping), environ).split(":")
            if parts[-1] == container_port:
                found.append(Endpoint(name, f"http://{host}:{parts[-2]}/api/v1/health"))
                break
        else:
            raise ValueError(f"服务 {name} 没有发布端口 {container_port}")
    return found


def probe(endpoint: Endpoint) -> bool:
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
