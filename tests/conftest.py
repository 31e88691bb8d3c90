"""Test harness: real broker and real databases, isolated per run.

eventlet must patch the standard library before anything else is imported, as in
a nameko process: the services under test run in-process on the same hub.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402

import collections
import itertools
import os
import socket

import pytest

from shared.db import Database
from tests.support import containers, infra

_RUN = infra.run_id()
_schema_counter = itertools.count(1)


# -- which path each test takes: containers (marked) or the local services ----------------

CONTAINER_FIXTURES = {"container_engine", "container_broker", "container_postgres_url"}
LOCAL_FIXTURES = {"broker", "postgres_url", "amqp_uri", "db_config"}
_outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_container_tests: dict[str, str] = {}


def pytest_addoption(parser):
    parser.addoption("--require-containers", action="store_true",
                     default=os.environ.get("CQO_REQUIRE_CONTAINERS", "") not in ("", "0"),
                     help="fail (not skip) the tests marked `containers` when no engine or "
                          "image is there (CI; also CQO_REQUIRE_CONTAINERS=1)")


def infra_path(item) -> str:
    if item.get_closest_marker("containers") or CONTAINER_FIXTURES & set(item.fixturenames):
        return "containers"
    if LOCAL_FIXTURES & set(item.fixturenames):
        return "local services"
    return "none"


def pytest_collection_modifyitems(config, items):
    for item in items:
        # in the JUnit XML report too (--junitxml): <property name="infra" .../>
        item.user_properties.append(("infra", infra_path(item)))


def pytest_runtest_logreport(report):
    path = dict(report.user_properties).get("infra")
    if path is None or not (report.when == "call" or report.outcome != "passed"):
        return  # one outcome per test: its call, or the setup/teardown that failed or skipped
    outcome = "error" if report.failed and report.when != "call" else report.outcome
    _outcomes[path][outcome] += 1
    if path == "containers":
        _container_tests[report.nodeid] = outcome


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    terminalreporter.write_sep("-", "infrastructure path of each test")
    for path, counts in sorted(_outcomes.items()):
        shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        terminalreporter.write_line(f"{path}: {shown}")
    for nodeid, outcome in sorted(_container_tests.items()):
        terminalreporter.write_line(f"  containers: {nodeid} {outcome}")


@pytest.fixture(scope="session")
def container_engine(request, tmp_path_factory):
    """podman's (or Docker's) API with the images built: skipped with the reason
    otherwise, or failed when containers are required (CI)."""
    engine = containers.find_engine(tmp_path_factory.mktemp("engine"))
    if not engine.ok:
        if request.config.getoption("--require-containers"):
            pytest.fail(f"containers required (CQO_REQUIRE_CONTAINERS) but: {engine.reason}",
                        pytrace=False)
        pytest.skip(f"container tests skipped: {engine.reason}")
    yield engine
    containers.stop_engine(engine)


@pytest.fixture(autouse=True)
def _containers_marker(request):
    """A marked test needs the engine even if it takes none of the container fixtures
    (the compose stack of the chaos test)."""
    if request.node.get_closest_marker("containers"):
        request.getfixturevalue("container_engine")


@pytest.fixture(scope="module")
def container_broker(container_engine):
    """A throw-away broker from localhost/cqo-rabbitmq (testcontainers), for one module:
    it does not stay up beside the other (heavier) container tests."""
    with containers.broker() as b:
        yield b


@pytest.fixture(scope="module")
def container_postgres_url(container_engine):
    """A throw-away PostgreSQL from localhost/cqo-postgres (testcontainers), for one module."""
    with containers.postgres() as url:
        yield url


# -- the local services (every test not marked `containers`) -----------------------------

@pytest.fixture(scope="session")
def run_id() -> str:
    return _RUN


@pytest.fixture(scope="session")
def broker():
    with infra.broker() as b:
        yield b


@pytest.fixture(scope="session")
def amqp_vhost(broker, run_id):
    """A vhost of this run's own; deleted at the end."""
    vhost = f"cqo_test_{run_id}"
    broker.create_vhost(vhost)
    yield vhost
    broker.delete_vhost(vhost)


@pytest.fixture(scope="session")
def amqp_uri(broker, amqp_vhost) -> str:
    return broker.vhost_uri(amqp_vhost)


@pytest.fixture(scope="session")
def postgres_url():
    with infra.postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_config(request, tmp_path, run_id):
    """DATABASE_URL/DATABASE_SCHEMA for a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield {"DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}"}
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{run_id}_{next(_schema_counter)}"
    yield {"DATABASE_URL": url, "DATABASE_SCHEMA": schema}
    infra.drop_schema(url, schema)


@pytest.fixture
def database(db_config):
    db = Database(db_config["DATABASE_URL"], schema=db_config.get("DATABASE_SCHEMA"))
    yield db
    db.dispose()


@pytest.fixture
def free_port():
    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    return _free_port
