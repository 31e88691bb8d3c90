import pytest
from kombu import Connection
from nameko.containers import ServiceContainer

from services.talent.service import TalentService
from shared.messaging import topology
from tests.support import infra
from tests.integration.registry_support import registry_config, running_registry


@pytest.fixture
def registry(amqp_uri, db_config, tmp_path, free_port):
    """The registry in-process; yields (county side, base URL, database)."""
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port()) as world:
        yield world


def _own_database(db_config, name):
    """A database of service `name`'s own beside `db_config` (same backend), so a test
    can run the registry and that service together."""
    if "DATABASE_SCHEMA" not in db_config:
        url = db_config["DATABASE_URL"]
        yield {"DATABASE_URL": url.rsplit("/", 1)[0] + f"/{name}.db"}
        return
    schema = db_config["DATABASE_SCHEMA"] + f"_{name}"
    yield {**db_config, "DATABASE_SCHEMA": schema}
    infra.drop_schema(db_config["DATABASE_URL"], schema)


@pytest.fixture
def talent_db_config(db_config):
    yield from _own_database(db_config, "talent")


@pytest.fixture
def notify_db_config(db_config):
    yield from _own_database(db_config, "notify")


@pytest.fixture
def talent(amqp_uri, talent_db_config, tmp_path, free_port):
    """The talent service in-process; yields (base URL, database, config). The domain
    events' queues live in the run's vhost: they are emptied first, so events of earlier
    tests (other databases) do not reach this one."""
    purge_queues(amqp_uri, [q.name for q in topology.event_queues()])
    port = free_port()
    config = registry_config(amqp_uri, talent_db_config, tmp_path / "keys", port)
    container = ServiceContainer(TalentService, config)
    container.start()
    (db_provider,) = [d for d in container.dependencies if d.attr_name == "db"]
    yield f"http://127.0.0.1:{port}", db_provider.database, config
    container.stop()


def purge_queues(amqp_uri: str, names: list[str]) -> None:
    with Connection(amqp_uri) as conn:
        topology.declare(conn, topology.event_queues())
        channel = conn.channel()
        for name in names:
            channel.queue_purge(name)
