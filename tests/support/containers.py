"""The container path of the tests: a broker and a database started by testcontainers
from the locally built images (`make images`), through a Docker API (podman's here).

Only the tests marked `containers` take this path; every other test keeps the local
services (tests/support/infra.py). Without an engine or without the images the marked
tests are skipped with the reason; CQO_REQUIRE_CONTAINERS=1 (or --require-containers)
turns that skip into a failure, for CI. Settings of /work/shared/CONTAINERS.md:
the reaper image cannot be pulled (TESTCONTAINERS_RYUK_DISABLED: we remove what we
start), and a `/.dockerenv` on these machines makes testcontainers believe it runs in a
container (TESTCONTAINERS_CONNECTION_MODE=docker_host).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.support import polling
from tests.support.infra import Broker

PODMAN_SOCKET = Path("/run/podman/podman.sock")
IMAGES = {"rabbitmq": "localhost/cqo-rabbitmq:latest",
          "postgres": "localhost/cqo-postgres:latest",
          "app": "localhost/cqo-app:latest"}
# what a started container answers with: the images' defaults as the official ones
BROKER_USER, BROKER_PASSWORD = "cqo", "cqo-test"
DB_USER, DB_PASSWORD, DB_NAME = "cqo", "cqo-test", "test"


@dataclass
class Engine:
    """The outcome of looking for an engine, once per session."""

    ok: bool
    reason: str = ""
    docker_host: str = ""
    started_service: subprocess.Popen | None = field(default=None, repr=False)


def _settings() -> None:
    # read by testcontainers when it is imported: set before that
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


def _start_podman_service(log_dir: Path) -> subprocess.Popen | None:
    """podman's Docker API on PODMAN_SOCKET, when podman is installed and nobody serves
    it yet (`.ci/run` starts it; a developer may not have)."""
    if shutil.which("podman") is None:
        return None
    PODMAN_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "podman-service.log", "ab")
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{PODMAN_SOCKET}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not PODMAN_SOCKET.exists():
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    return proc


def find_engine(log_dir: Path) -> Engine:
    """An engine that answers a ping and holds the images, or the reason why not."""
    _settings()
    started = None
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        if not PODMAN_SOCKET.exists():
            try:
                started = _start_podman_service(log_dir)
            except OSError as exc:
                return Engine(False, f"could not start podman's API service: {exc}")
        if PODMAN_SOCKET.exists():
            host = f"unix://{PODMAN_SOCKET}"
        elif Path("/var/run/docker.sock").exists():
            host = "unix:///var/run/docker.sock"
        else:
            return Engine(False, "no container engine: podman is not installed (or its API "
                                 "service did not start) and DOCKER_HOST is not set "
                                 "(.ci/run installs podman; see README 'Tests')")
        os.environ["DOCKER_HOST"] = host
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        _stop(started)
        return Engine(False, f"the container engine at {host} does not answer: "
                             f"{type(exc).__name__}: {exc}")
    missing = []
    for image in (IMAGES["rabbitmq"], IMAGES["postgres"]):
        try:
            client.images.get(image)
        except Exception:  # noqa: BLE001 - not found, or an answer we cannot use
            missing.append(image)
    client.close()
    if missing:
        _stop(started)
        return Engine(False, f"image(s) {', '.join(missing)} missing at {host}: run `make images`")
    return Engine(True, docker_host=host, started_service=started)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def stop_engine(engine: Engine) -> None:
    """Stops podman's API service if this session started it."""
    _stop(engine.started_service)


@contextmanager
def broker() -> Iterator[Broker]:
    """A throw-away localhost/cqo-rabbitmq (management API published too)."""
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(IMAGES["rabbitmq"], username=BROKER_USER,
                                  password=BROKER_PASSWORD).with_exposed_ports(15672)
    with container as rabbit:
        host = rabbit.get_container_host_ip()
        port, mport = rabbit.get_exposed_port(5672), rabbit.get_exposed_port(15672)
        found = Broker(f"amqp://{BROKER_USER}:{BROKER_PASSWORD}@{host}:{port}/",
                       f"http://{BROKER_USER}:{BROKER_PASSWORD}@{host}:{mport}")
        _wait_management(found)
        yield found


def _wait_management(found: Broker, timeout: float = 60) -> None:
    """AMQP answers a little before the management API does."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            found._api("GET", "/overview")
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def postgres() -> Iterator[str]:
    """A throw-away localhost/cqo-postgres; its URL (psycopg2)."""
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(IMAGES["postgres"], username=DB_USER, password=DB_PASSWORD,
                           dbname=DB_NAME, driver=None) as pg:
        yield pg.get_connection_url()


# -- a three-node cluster (the clustered city broker, docs/multisite.md) ------------------

@dataclass
class ClusterNode:
    """One node of `rabbitmq_cluster()`: host name rmq<i> on the cluster's network, its
    AMQP and management ports published on free host ports."""

    name: str  # rmq1: the container's host name, the node is rabbit@rmq1
    container: object = field(repr=False)
    host: str = "127.0.0.1"
    amqp_port: int = 0
    management_port: int = 0

    @property
    def node(self) -> str:
        return f"rabbit@{self.name}"

    @property
    def broker(self) -> Broker:
        """This node's AMQP (root vhost) and management API."""
        auth = f"{BROKER_USER}:{BROKER_PASSWORD}"
        return Broker(f"amqp://{auth}@{self.host}:{self.amqp_port}/",
                      f"http://{auth}@{self.host}:{self.management_port}")


@dataclass
class RabbitCluster:
    nodes: list[ClusterNode]
    killed: set[str] = field(default_factory=set)

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def living(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.name not in self.killed]

    @property
    def broker(self) -> Broker:
        """A living node's management API (vhosts and users are cluster-wide)."""
        return self.living[0].broker

    def failover_uri(self, vhost: str = "/") -> str:
        """AMQP_URI listing every node, kombu's failover form."""
        from shared.messaging.broker import with_vhost

        return with_vhost(";".join(n.broker.amqp_uri for n in self.nodes), vhost)

    def kill(self, name: str) -> None:
        """SIGKILL the node's container (`podman kill`): no clean leave of the cluster."""
        self.node(name).container.get_wrapped_container().kill()
        self.killed.add(name)

    def running_nodes(self) -> set[str]:
        """Node names the cluster (asked through a living node) reports running."""
        return {n["name"] for n in self.broker._api("GET", "/nodes").json() if n.get("running")}


@contextmanager
def rabbitmq_cluster(size: int = 3, start_timeout: float = 240) -> Iterator[RabbitCluster]:
    """`size` localhost/cqo-rabbitmq nodes on a network of their own (host names
    rmq1..rmqN, one Erlang cookie), rmq2.. joined to rmq1, the user BROKER_USER on
    all; removed afterwards with the network. Only AMQP and management are published,
    on ports the engine picks (never the host broker's 25672)."""
    import secrets
    from concurrent.futures import ThreadPoolExecutor

    from testcontainers.community.rabbitmq import RabbitMqContainer
    from testcontainers.core.network import Network

    cookie = secrets.token_hex(20)
    with Network() as network:
        containers = []
        for i in range(1, size + 1):
            name = f"rmq{i}"
            containers.append(
                RabbitMqContainer(IMAGES["rabbitmq"], username=BROKER_USER, password=BROKER_PASSWORD)
                .with_exposed_ports(15672)
                .with_network(network).with_network_aliases(name)
                .with_kwargs(hostname=name)
                .with_env("RABBITMQ_NODENAME", f"rabbit@{name}")
                .with_env("RABBITMQ_ERLANG_COOKIE", cookie))
        started: list = []
        try:
            # in parallel: each node takes ~10-30 s to boot on a loaded machine
            with ThreadPoolExecutor(size) as pool:
                for container in pool.map(lambda c: c.start(), containers):
                    started.append(container)
            nodes = [ClusterNode(f"rmq{i}", c, c.get_container_host_ip(), int(c.get_exposed_port(5672)),
                                 int(c.get_exposed_port(15672)))
                     for i, c in enumerate(started, 1)]
            for node in nodes[1:]:
                for command in ("stop_app", f"join_cluster {nodes[0].node}", "start_app"):
                    code, out = node.container.exec(["rabbitmqctl", *command.split()])
                    if code != 0:
                        raise RuntimeError(f"{node.name}: rabbitmqctl {command}: {out.decode(errors='replace')}")
            cluster = RabbitCluster(nodes)
            for node in nodes:
                _wait_management(node.broker, start_timeout)
            everyone = {n.node for n in nodes}
            polling.wait_for(lambda: _running_or_none(cluster) == everyone, start_timeout,
                             lambda: f"the cluster formed: running {_running_or_none(cluster)}",
                             interval=1)
            yield cluster
        finally:
            for container in containers:
                try:
                    container.stop()
                except Exception:  # noqa: BLE001 - never started, or gone already
                    pass


def _running_or_none(cluster: RabbitCluster) -> set[str] | None:
    import requests

    try:
        return cluster.running_nodes()
    except requests.RequestException:
        return None
