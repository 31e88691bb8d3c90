"""A city and its counties in-process for the progress, assessment and move tests: the
registry and county filing services (nameko ServiceContainers) on a vhost of their own,
each with its own database (SQLite files, or PostgreSQL schemas), sharing the keys."""
from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import requests
from nameko.containers import ServiceContainer
from sqlalchemy import text

from shared.clock import today
from services.registry.service import RegistryService
from shared.keys import Keys
from tests.integration import filing_support as fs
from tests.integration.registry_support import CountySide, registry_config, token

CAMPAIGN_YEAR = today().year


def campaign_body(year: int = CAMPAIGN_YEAR) -> dict:
    """A campaign whose window includes today (so counties tag new filings with it)."""
    return {"year": year, "notice_number": f"沧市监〔{year}〕12号",
            "title": f"{year}年度首席质量官集中备案通告", "notice_text": "各县（市、区）市场监管局：……",
            "opens_on": (today() - timedelta(days=5)).isoformat(),
            "closes_on": (today() + timedelta(days=60)).isoformat()}


class City:
    """The registry in-process, seen through HTTP and its database."""

    def __init__(self, amqp_uri: str, db_config: dict, keys_dir, port: int):
        self.config = registry_config(amqp_uri, db_config, keys_dir, port)
        self.container = ServiceContainer(RegistryService, self.config)
        self.base = f"http://127.0.0.1:{port}"
        self.db = None

    def start(self) -> "City":
        self.container.start()
        (provider,) = [d for d in self.container.dependencies if d.attr_name == "db"]
        self.db = provider.database
        return self

    def stop(self) -> None:
        self.container.stop()

    def get(self, path: str, role: str = "city_officer", **claims):
        return requests.get(self.base + path, headers={"Authorization": token(role, **claims)},
                            timeout=30)

    def post(self, path: str, body=None, role: str = "city_officer", **claims):
        return requests.post(self.base + path, json=body, timeout=30,
                             headers={"Authorization": token(role, **claims)})

    def scalar(self, sql: str, **params):
        return self.db.read(lambda conn: conn.execute(text(sql), params).scalar())

    def rows(self, sql: str, **params) -> list:
        return self.db.read(lambda conn: conn.execute(text(sql), params).all())


@contextlib.contextmanager
def site(broker, run_id: str, backend: str, tmp, postgres_url: str | None, *,
         counties=("130921", "130922"), progress_interval: float = 0.3, tag: str = "rep",
         filing_services: bool = True):
    """(city, {county: FilingStack}, county_side, amqp_uri), all stopped and removed after.
    Without `filing_services` the counties are only the test's CountySide (it publishes
    filings as a county's relay does and reads the decisions sent back)."""
    with contextlib.ExitStack() as stack:
        name = f"cqo_test_{run_id}_{tag}_{backend}_{uuid.uuid4().hex[:6]}"
        uri = stack.enter_context(fs.vhost(broker, name))
        keys = tmp / "keys"
        registry_db = stack.enter_context(fs.database_config(backend, tmp, postgres_url, f"{tag}_city"))
        city = City(uri, registry_db, keys, fs.free_port()).start()
        stack.callback(city.stop)
        side = CountySide(uri, Keys(city.config), counties=counties)
        stack.callback(side.close)
        services = {}
        for county in counties if filing_services else ():
            db_config = stack.enter_context(
                fs.database_config(backend, tmp, postgres_url, f"{tag}_{county}"))
            services[county] = stack.enter_context(fs.FilingStack(
                uri, db_config, keys, county=county,
                extra={"PROGRESS_INTERVAL_S": progress_interval}))
        yield city, services, side, uri


def file_and_review(county_stack, decision: str | None = "approve", uscc: str | None = None,
                    **overrides) -> dict:
    """An enterprise files at the county; the county officer reviews it (or not)."""
    filing = county_stack.file(uscc, **overrides)
    if decision is not None:
        filing = county_stack.review(filing["id"], decision,
                                     "材料不全，请补正" if decision == "return" else None)
    return filing
