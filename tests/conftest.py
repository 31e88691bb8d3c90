"""Test harness: real broker and real databases, isolated per run.

eventlet must patch the standard library before anything else is imported, as in
a nameko process: the services under test run in-process on the same hub.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402

import itertools
import socket

import pytest

from shared.db import Database
from tests.support import infra

_RUN = infra.run_id()
_schema_counter = itertools.count(1)


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
