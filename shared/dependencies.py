"""nameko dependency providers shared by the services."""
from __future__ import annotations

import logging
from pathlib import Path

from nameko.extensions import DependencyProvider

from shared.db import Database, database_from_config
from shared.migrate import upgrade

log = logging.getLogger(__name__)


class DatabaseProvider(DependencyProvider):
    """Gives each worker the service's `Database` (use `db.unit_of_work()`).

    The schema is migrated when the container starts, before any entrypoint
    accepts work, so a service never runs against an old schema.
    """

    def __init__(self, service_versions: str | Path | None, default_sqlite: str):
        self.service_versions = service_versions
        self.default_sqlite = default_sqlite
        self.database: Database | None = None

    def setup(self):
        self.database = database_from_config(self.container.config,
                                             default_sqlite=self.default_sqlite)
        upgrade(self.database, self.service_versions)

    def stop(self):
        if self.database is not None:
            self.database.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.database


def container_databases(container) -> list[Database]:
    """The databases of a service container's DatabaseProviders, each once (what the
    health check and the metrics scrape read)."""
    found: dict[int, Database] = {}
    for dependency in container.dependencies:
        if isinstance(dependency, DatabaseProvider) and dependency.database is not None:
            found.setdefault(id(dependency.database), dependency.database)
    return list(found.values())


class FromConfig(DependencyProvider):
    """Gives every worker what `build(config)` made once when the container started:
    settings and keys are read at start, not per request.

        settings = FromConfig(Settings.from_config)
    """

    def __init__(self, build):
        self.build = build

    def setup(self):
        self.value = self.build(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.value


class TopologyDeclarer(DependencyProvider):
    """Declares the exchanges and the given queues when the container starts, so
    that messages published before the first consumer attached are routed, not
    returned as unroutable."""

    def __init__(self, queues):
        self.queues = queues  # callable(config) -> list of kombu Queues

    def setup(self):
        from kombu import Connection
        from nameko.constants import AMQP_URI_CONFIG_KEY

        from shared.messaging import topology

        from shared.messaging.broker import connect

        with Connection(self.container.config[AMQP_URI_CONFIG_KEY]) as connection:
            connect(connection, rounds=6, interval=4.0)  # each node of a cluster, for ~20 s
            topology.declare(connection, self.queues(self.container.config))

    def get_dependency(self, worker_ctx):
        return None
