"""Running the registry in-process and talking to it as a county would."""
from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Producer, Queue
from nameko.containers import ServiceContainer

from services.registry.service import RegistryService
from shared.auth import issue_token
from shared.keys import Keys
from shared.messaging import topology
from tests.support import factories

SECRET = "registry-test-secret-0123456789-abcdef"


class CountySide:
    """Publishes filings to cqo.filings and reads the decisions that come back."""

    def __init__(self, amqp_uri: str, keys: Keys, counties=("130921", "130922")):
        self.amqp_uri = amqp_uri
        self.keys = keys
        self.connection = Connection(amqp_uri)
        self.queues = {}
        channel = self.connection.channel()
        topology.declare(self.connection, topology.registry_queues())
        for county in counties:
            queue = Queue(f"test.decisions.{county}.{uuid.uuid4().hex[:6]}",
                          exchange=topology.DECISIONS, routing_key=f"decision.{county}",
                          auto_delete=False, durable=False)
            queue(channel).declare()
            self.queues[county] = queue
        self.producer = Producer(channel)
        self.decisions: dict[tuple[str, int], dict] = {}
        self.messages: list[dict] = []

    def filing(self, county="130921", n=1, **kw) -> dict:
        kw.setdefault("uscc", factories.uscc_for(county, n))
        kw.setdefault("person", n)
        return factories.filing_message(county=county, hmac_key=self.keys.get("ID_HMAC_KEY"),
                                        city_public_key=self.keys.get("CITY_PUBLIC_KEY"), **kw)

    def publish(self, body: dict, *, routing_key: str | None = None, message_id: str | None = None,
                raw: bytes | None = None, **properties):
        county = body.get("county", "130921") if isinstance(body, dict) else "130921"
        kind = "batch" if isinstance(body, dict) and "filings" in body else body.get("kind", "x")
        self.producer.publish(
            raw if raw is not None else json.dumps(body, ensure_ascii=False).encode(),
            exchange=topology.FILINGS, routing_key=routing_key or f"filing.{county}.{kind}",
            content_type="application/json", content_encoding="utf-8",
            message_id=message_id or str(uuid.uuid4()), delivery_mode=2, **properties)

    def batch(self, filings: list[dict], county="130921", chunk=1, chunks=1, batch_id=None) -> dict:
        return {"batch_id": batch_id or str(uuid.uuid4()), "county": county, "chunk": chunk,
                "chunks": chunks, "filings": filings}

    def drain(self, county="130921", *, until=None, timeout=20.0) -> dict:
        """Collect decisions until `until(decisions)` holds or the timeout passes."""
        deadline = time.monotonic() + timeout
        queue = self.queues[county]
        while time.monotonic() < deadline:
            message = queue(self.connection.channel()).get(no_ack=True)
            if message is None:
                if until is None or until(self.decisions):
                    if until is not None:
                        return self.decisions
                time.sleep(0.05)
                continue
            body = json.loads(message.body)
            self.messages.append(body)
            for decision in body["decisions"]:
                self.decisions[(decision["filing_id"], decision["version"])] = decision
            if until is not None and until(self.decisions):
                return self.decisions
        if until is not None:
            raise AssertionError(f"decisions not complete after {timeout}s: {len(self.decisions)} seen")
        return self.decisions

    def decision_of(self, filing: dict, county="130921", timeout=20.0) -> dict:
        key = (filing["filing_id"], filing["version"])
        return self.drain(county, until=lambda d: key in d, timeout=timeout)[key]

    def close(self):
        self.connection.release()


def registry_config(amqp_uri, db_config, keys_dir, port) -> dict:
    return {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "AUTH_SECRET": SECRET, "DEV_KEYS_DIR": str(keys_dir),
            "TALENT_TIMEOUT": 2, **db_config}  # a test without talent does not wait long


@contextlib.contextmanager
def running_registry(amqp_uri, db_config, keys_dir, port, **settings):
    """The registry in-process, `settings` over the tests' config; yields (county side,
    base URL, database)."""
    config = {**registry_config(amqp_uri, db_config, keys_dir, port), **settings}
    container = ServiceContainer(RegistryService, config)
    container.start()
    county = CountySide(amqp_uri, Keys(config))
    (db_provider,) = [d for d in container.dependencies if d.attr_name == "db"]
    try:
        yield county, f"http://127.0.0.1:{port}", db_provider.database
    finally:
        county.close()
        container.stop()


def token(role, **kw) -> str:
    return "Bearer " + issue_token(SECRET, role, **kw)


def get(base, path, role="city_officer", **kw):
    return requests.get(base + path, headers={"Authorization": token(role, **kw)}, timeout=10)
