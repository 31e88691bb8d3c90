import pytest
from nameko.containers import ServiceContainer

from services.registry.service import RegistryService
from shared.keys import Keys
from tests.integration.registry_support import CountySide, registry_config


@pytest.fixture
def registry(amqp_uri, db_config, tmp_path, free_port):
    """The registry in-process; yields (county side, base URL, database)."""
    port = free_port()
    config = registry_config(amqp_uri, db_config, tmp_path / "keys", port)
    container = ServiceContainer(RegistryService, config)
    container.start()
    county = CountySide(amqp_uri, Keys(config))
    (db_provider,) = [d for d in container.dependencies if d.attr_name == "db"]
    yield county, f"http://127.0.0.1:{port}", db_provider.database
    county.close()
    container.stop()
