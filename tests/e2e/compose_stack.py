"""The compose stack (docker-compose.yml) under podman-compose for one test: a project
of its own (its own containers, network and volumes, removed afterwards), host ports
that collide with nothing (the host's broker and database, a developer's stack on
18001..., other runs), its own keys from `cqo keys init`, the token secret of the e2e
helpers (tests/e2e/support.SECRET) so that their tokens and probes work on it.

`ComposeDeployment` gives the stack the face of tests/e2e/support.Deployment (the URLs
the helpers read), so a test drives it with the same helpers as a stack of processes.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cqo.cli_keys import init_keys
from cqo.compose_health import endpoints, wait_healthy
from tests.e2e.support import SECRET, Deployment, _port_free

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("registry", "talent", "notify", "filing_130921", "filing_130922")
COUNTIES = ("130921", "130922")
SERVICE_UID = 10001  # the app image's user: it reads the secrets


def podman_compose() -> list[str]:
    found = shutil.which("podman-compose", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "podman_compose"]


def free_ports(count: int) -> list[int]:
    import random

    rng, found = random.Random(), []
    while len(found) < count:
        port = rng.randrange(20000, 30000)  # below the ephemeral range, clear of 25672
        if port != 25672 and port not in found and _port_free(port):
            found.append(port)
    return found


class ComposeStack:
    def __init__(self, workdir: Path, env: dict | None = None, prefix: str = "cqotest"):
        """`env`: extra environment for every application service (e.g. BATCH_CHUNK_SIZE);
        the project is named `prefix` and a random suffix."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.project = f"{prefix}{secrets.token_hex(3)}"
        self.file = self.workdir / "docker-compose.yml"
        self.secret_file = self.workdir / "secrets" / "auth_secret"
        ports = free_ports(len(APP_SERVICES) + 3)
        self.ports = dict(zip((*APP_SERVICES, "amqp", "management", "postgres"), ports))
        self._write(env or {})
        init_keys(self.workdir / "secrets", owner=SERVICE_UID)
        with open(self.secret_file, "w", encoding="utf-8") as f:  # in place: owner and mode kept
            f.write(SECRET)
        self.log = open(self.workdir / "podman-compose.log", "ab")

    def _write(self, env: dict) -> None:
        """The repository's compose file with this project's name and ports (the YAML
        merge keys expanded by the loader, the rest as written)."""
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        compose["name"] = self.project
        services = compose["services"]
        for name in APP_SERVICES:
            service = services[name]
            inner = service["environment"]["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1]
            service["ports"] = [f"127.0.0.1:{self.ports[name]}:{inner}"]
            service["environment"].update({k: str(v) for k, v in env.items()})
        services["rabbitmq"]["ports"] = [f"127.0.0.1:{self.ports['amqp']}:5672",
                                         f"127.0.0.1:{self.ports['management']}:15672"]
        services["postgres"]["ports"] = [f"127.0.0.1:{self.ports['postgres']}:5432"]
        for service in services.values():
            service.pop("build", None)  # the images are built already (`make images`)
        self.file.write_text(yaml.safe_dump(compose, allow_unicode=True, sort_keys=False),
                             encoding="utf-8")

    # URLs
    @property
    def amqp_uri(self) -> str:
        return f"amqp://cqo:cqo@127.0.0.1:{self.ports['amqp']}/"

    @property
    def management_url(self) -> str:
        return f"http://cqo:cqo@127.0.0.1:{self.ports['management']}"

    @property
    def postgres_url(self) -> str:
        return f"postgresql://cqo:cqo@127.0.0.1:{self.ports['postgres']}/cqo"

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    # the stack
    def compose(self, *args: str, timeout: float = 300) -> None:
        subprocess.run([*podman_compose(), "-p", self.project, "-f", str(self.file), *args],
                       cwd=self.workdir, stdout=self.log, stderr=self.log, check=True,
                       timeout=timeout)

    def up(self, timeout: float = 300) -> float:
        """`up -d`, then every service healthy (cqo.compose_health); returns the seconds."""
        start = time.monotonic()
        self.compose("up", "-d")
        wait_healthy(endpoints(self.file), timeout)
        return time.monotonic() - start

    def wait_healthy(self, timeout: float = 180, only: tuple[str, ...] = ()) -> float:
        """Every service healthy again (or those named in `only`)."""
        found = [e for e in endpoints(self.file) if not only or e.name in only]
        return wait_healthy(found, timeout)

    def down(self) -> None:
        try:
            self.compose("down", "-v", "-t", "5", timeout=180)
        finally:
            self.log.close()

    def container(self, service: str) -> str:
        names = podman("ps", "-a", "--format", "{{.Names}}",
                       "--filter", f"label=io.podman.compose.project={self.project}",
                       "--filter", f"label=com.docker.compose.service={service}").split()
        if len(names) != 1:
            raise RuntimeError(f"container of {service} in {self.project}: {names}")
        return names[0]

    def podman(self, verb: str, service: str, *args: str) -> str:
        return podman(verb, *args, self.container(service))

    def logs(self, service: str, lines: int = 40) -> str:
        try:
            return podman("logs", "--tail", str(lines), self.container(service))
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            return f"(no logs: {exc})"

    def queue_depth(self, queue: str) -> int:
        from kombu import Connection

        with Connection(self.amqp_uri, connect_timeout=5) as conn:
            return conn.channel().queue_declare(queue, passive=True).message_count


def podman(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, ["podman", *args],
                                            result.stdout, result.stderr)
    return result.stdout


class ComposeDeployment(Deployment):
    """A running compose stack seen through Deployment's helpers (ledger, county totals,
    batches, campaign): the same HTTP calls, to the published ports."""

    def __init__(self, stack: ComposeStack):  # noqa: super().__init__ would start processes
        self.compose_stack, self.counties = stack, COUNTIES
        self.amqp_uri = stack.amqp_uri
        self.closed = True  # nothing of Deployment's own to stop

    @property
    def registry_url(self) -> str:
        return self.compose_stack.base_url("registry") + "/api/v1"

    def county_url(self, county: str) -> str:
        return self.compose_stack.base_url(f"filing_{county}") + "/api/v1"


def postgres_rows(stack: ComposeStack, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(stack.postgres_url, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
