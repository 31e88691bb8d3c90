"""Apply a service's Alembic migrations (the shared branch plus its own) on start."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from shared.db import Database

log = logging.getLogger(__name__)
SHARED_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(service_versions: str | Path | None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(SHARED_MIGRATIONS))
    locations = [str(SHARED_MIGRATIONS / "versions")]
    if service_versions:
        locations.append(str(service_versions))
    # a space separator is safe: the paths are the package's own
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    return cfg


def upgrade(db: Database, service_versions: str | Path | None = None) -> None:
    cfg = alembic_config(service_versions)
    with db.engine.begin() as conn:
        if db.is_postgres:
            # two instances starting together on one database must not both migrate
            conn.execute(text("SELECT pg_advisory_xact_lock(715002)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    log.info("database schema is up to date (%s)", db.engine.url.render_as_string(hide_password=True))
