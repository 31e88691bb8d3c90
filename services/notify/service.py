"""Notify service (city): turns domain events into Chinese notices and delivers them.

Only the service shell exists so far (health, OpenAPI, its database); delivery
channels are built in their own issue.
"""
from pathlib import Path

from nameko.dependency_providers import Config

from shared.dependencies import DatabaseProvider
from shared.http import HttpBase

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class NotifyService(HttpBase):
    name = "notify"
    config = Config()
    db = DatabaseProvider(MIGRATIONS, default_sqlite="var/notify.db")


def build_service(config: dict) -> type:
    return NotifyService
