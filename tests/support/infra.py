"""Where the tests (and benchmarks) find a broker and a database, and how they isolate.

The services named by AMQP_URI / DATABASE_URL, defaulting to the local ones. The tests
marked `containers` take throw-away containers instead (tests/support/containers.py):
the path is chosen per test, never for the whole run. Each run gets its own RabbitMQ vhost and its own
PostgreSQL schema, so two runs (or a run beside the demo) never share a message or a row.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import requests

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Broker:
    """A RabbitMQ endpoint: AMQP URI of the root vhost and the management API."""

    amqp_uri: str
    management_url: str  # http://user:pass@host:15672

    def _api(self, method: str, path: str, **kw) -> requests.Response:
        parts = urlsplit(self.management_url)
        base = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""),
                           "", "", ""))
        resp = requests.request(method, base + "/api" + path,
                                auth=(parts.username or "guest", parts.password or "guest"),
                                timeout=15, **kw)
        resp.raise_for_status()
        return resp

    def vhost_uri(self, vhost: str) -> str:
        parts = urlsplit(self.amqp_uri)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))

    def create_vhost(self, vhost: str) -> str:
        user = urlsplit(self.amqp_uri).username or "guest"
        self._api("PUT", f"/vhosts/{quote(vhost, safe='')}", json={})
        self._api("PUT", f"/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                  json={"configure": ".*", "write": ".*", "read": ".*"})
        return self.vhost_uri(vhost)

    def delete_vhost(self, vhost: str) -> None:
        try:
            self._api("DELETE", f"/vhosts/{quote(vhost, safe='')}")
        except requests.RequestException:
            pass

    def queue(self, vhost: str, name: str) -> dict:
        return self._api("GET", f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}").json()

    def exchanges(self, vhost: str) -> list[dict]:
        """Every exchange of `vhost` (the default one has the name "")."""
        return self._api("GET", f"/exchanges/{quote(vhost, safe='')}").json()

    def bindings_from(self, vhost: str, exchange: str) -> list[dict]:
        return self._api("GET", f"/exchanges/{quote(vhost, safe='')}/"
                                f"{quote(exchange, safe='')}/bindings/source").json()

    def set_tracing(self, vhost: str, on: bool) -> None:
        """The vhost's firehose: a copy of every publish on `amq.rabbitmq.trace`."""
        self._api("PUT", f"/vhosts/{quote(vhost, safe='')}", json={"tracing": bool(on)})

    def close_connections(self, vhost: str) -> None:
        for conn in self._api("GET", f"/vhosts/{quote(vhost, safe='')}/connections").json():
            try:
                self._api("DELETE", f"/connections/{quote(conn['name'], safe='')}")
            except requests.HTTPError as exc:
                # a short-lived connection (a health check's) closed by itself meanwhile
                if exc.response is None or exc.response.status_code != 404:
                    raise


@contextmanager
def broker() -> Iterator[Broker]:
    uri = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    parts = urlsplit(uri)
    mgmt = os.environ.get(
        "RABBITMQ_MANAGEMENT_URL",
        f"http://{parts.username or 'guest'}:{parts.password or 'guest'}@{parts.hostname}:15672")
    yield Broker(urlunsplit((parts.scheme, parts.netloc, "/", "", "")), mgmt)


@contextmanager
def postgres() -> Iterator[str]:
    yield os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def run_id() -> str:
    return secrets.token_hex(4)


def drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    from shared.db import normalise_url

    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()
