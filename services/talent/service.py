"""Talent service (city): training, talent pool, experts and panel draws (art. 15 人才建设).

Only the service shell exists so far (health, OpenAPI, its database); the talent
pool itself is built in its own issue.
"""
from pathlib import Path

from nameko.dependency_providers import Config

from shared.dependencies import DatabaseProvider
from shared.http import HttpBase

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class TalentService(HttpBase):
    name = "talent"
    config = Config()
    db = DatabaseProvider(MIGRATIONS, default_sqlite="var/talent.db")


def build_service(config: dict) -> type:
    return TalentService
