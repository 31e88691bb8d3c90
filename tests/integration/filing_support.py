"""Helpers of the county filing service tests: valid payloads, an in-process service on
the real broker and database, and probes that read what the service published."""
from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

import requests
from kombu import Connection, Exchange, Producer, Queue
from nameko.containers import ServiceContainer
from sqlalchemy import text

from shared.clock import today
from services.filing.service import build_service
from shared.auth import issue_token
from shared.db import Database
from tests.support import infra, polling
from shared.validators import make_resident_id, make_uscc

SECRET = "filing-test-secret-0123456789abcdefghijklmnop"
COUNTY = "130921"
PROBLEM = "application/problem+json"
_rng = random.Random()
_seq = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_uscc(county: str = COUNTY) -> str:
    while True:
        try:
            return make_uscc(division=county, org_body=f"{_rng.randrange(10**8):08d}")
        except Exception:  # an org body whose check char is not a USCC character
            continue


def resident_id(county: str = COUNTY) -> str:
    return make_resident_id(county, date(1980, 1, 1) + timedelta(days=next(_seq) % 5000),
                            next(_seq) % 1000)


def filing_payload(uscc: str, *, county: str = COUNTY, kind: str = "establishment",
                   **overrides) -> dict:
    """A complete, qualified filing; `cqo__x=` / `appointment__x=` / `enterprise__x=`
    override nested fields (None drops the key)."""
    appointed = today() - timedelta(days=10)
    body = {
        "kind": kind,
        "enterprise": {"uscc": uscc, "name": "沧州示例制造有限公司", "county": county,
                       "category": "industrial_above_scale"},
        "cqo": {"name": "张质量", "id_type": "resident_id", "id_number": resident_id(county),
                "phone": "13800138000", "email": "cqo@example.cn", "position": "副总经理",
                "is_decision_level": True, "education_level": "bachelor",
                "title_level": "intermediate", "years_quality_work": 8,
                "training_certificate": "CZCQO-2026-0001", "attests_law_knowledge": True,
                "attests_organisational_ability": True},
        "appointment": {"appointed_by": "李总", "appointed_by_top_manager": True,
                        "appointed_on": appointed.isoformat(), "letter_number": "沧示质〔2026〕1号",
                        "letter_date": appointed.isoformat()},
    }
    if kind in ("change", "end"):
        body["effective_on"] = appointed.isoformat()
    if kind == "end":
        body["end_reason"] = "首席质量官离职"
    for key, value in overrides.items():
        target, name = body, key
        if "__" in key:
            section, name = key.split("__", 1)
            target = body[section]
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return body


def bearer(role: str, **claims) -> dict:
    return {"Authorization": "Bearer " + issue_token(SECRET, role, **claims)}


def enterprise(uscc: str, **claims) -> dict:
    return bearer("enterprise", uscc=uscc, **claims)


def officer(county: str = COUNTY) -> dict:
    return bearer("county_officer", county=county)


def assert_problem(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM), resp.headers["Content-Type"]
    body = resp.json()
    assert body["status"] == status and body["title"]
    if code:
        assert body["code"] == code, body
    return body


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    return polling.wait_for(predicate, timeout, message, interval)


# -- databases and vhosts -----------------------------------------------------------------

@contextlib.contextmanager
def database_config(backend: str, tmp_dir, postgres_url: str | None, tag: str) -> Iterator[dict]:
    if backend == "sqlite":
        yield {"DATABASE_URL": f"sqlite:///{tmp_dir / f'{tag}.db'}"}
        return
    schema = f"f_{tag}_{uuid.uuid4().hex[:8]}"
    try:
        yield {"DATABASE_URL": postgres_url, "DATABASE_SCHEMA": schema}
    finally:
        infra.drop_schema(postgres_url, schema)


@contextlib.contextmanager
def vhost(broker: infra.Broker, name: str) -> Iterator[str]:
    """A vhost of its own: queues such as filing.<county>.decisions never carry
    another test module's messages."""
    broker.create_vhost(name)
    try:
        yield broker.vhost_uri(name)
    finally:
        broker.delete_vhost(name)


# -- the service ----------------------------------------------------------------------------

class FilingStack:
    """One county filing service in-process (nameko ServiceContainer)."""

    def __init__(self, amqp_uri: str, db_config: dict, keys_dir, *, county: str = COUNTY,
                 extra: dict | None = None):
        self.county = county
        self.port = free_port()
        self.config = {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}",
                       "COUNTY_CODE": county, "DEV_KEYS_DIR": str(keys_dir),
                       "AUTH_SECRET": SECRET,
                       # campaign progress snapshots (filing.<county>.progress) only where a
                       # test asks for them: the others count exactly what they published
                       "PROGRESS_INTERVAL_S": 3600, **db_config, **(extra or {})}
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.service_cls = build_service(self.config)
        self.container = ServiceContainer(self.service_cls, self.config)
        self.db: Database | None = None

    def start(self) -> "FilingStack":
        self.container.start()
        self.db = Database(self.config["DATABASE_URL"], schema=self.config.get("DATABASE_SCHEMA"))
        return self

    def stop(self) -> None:
        try:
            self.container.stop()
        finally:
            if self.db is not None:
                self.db.dispose()

    def __enter__(self) -> "FilingStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # HTTP
    def post(self, path: str, body=None, headers=None, **kw):
        return requests.post(self.url + path, json=body, headers=headers, timeout=30, **kw)

    def put(self, path: str, body=None, headers=None, **kw):
        return requests.put(self.url + path, json=body, headers=headers, timeout=30, **kw)

    def get(self, path: str, headers=None, **kw):
        return requests.get(self.url + path, headers=headers, timeout=30, **kw)

    def file(self, uscc: str | None = None, **overrides) -> dict:
        uscc = uscc or new_uscc(self.county)
        resp = self.post("/filings", filing_payload(uscc, county=self.county, **overrides),
                         enterprise(uscc))
        assert resp.status_code == 201, resp.text
        return resp.json()

    def review(self, filing_id: str, decision: str = "approve", comment: str | None = None):
        resp = self.post(f"/filings/{filing_id}/review",
                         {"decision": decision, "comment": comment}, officer(self.county))
        assert resp.status_code == 200, resp.text
        return resp.json()

    # database
    def count(self, table: str, where: str = "1=1", **params) -> int:
        with self.db.unit_of_work() as uow:
            return uow.session.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"),
                                       params).scalar_one()

    def counts(self) -> dict:
        return {t: self.count(t) for t in ("filings", "filing_versions", "filing_reviews",
                                           "outbox_messages", "filing_batches")}

    def backlog(self) -> int:
        return self.count("outbox_messages", "sent_at IS NULL")


# -- the broker, from the test's side --------------------------------------------------------

class Probe:
    """A queue bound to an exchange in the test vhost; collects what arrives."""

    def __init__(self, amqp_uri: str, exchange: str, routing_key: str, *, type_: str = "topic"):
        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"probe.{uuid.uuid4().hex[:10]}",
                           Exchange(exchange, type=type_, durable=True),
                           routing_key=routing_key, auto_delete=False, durable=False)
        self.bound = self.queue(self.conn.channel())
        self.bound.declare()

    def get_all(self) -> list:
        out = []
        while True:
            message = self.bound.get(no_ack=True)
            if message is None:
                return out
            out.append(message)

    def collect(self, predicate, timeout: float = 10.0) -> list:
        """Messages until predicate(messages_so_far) is true."""
        seen: list = []
        deadline = time.monotonic() + timeout
        while not predicate(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"probe: condition not met in {timeout}s; got {len(seen)} "
                                     f"messages: {[m.properties.get('message_id') for m in seen]}")
            got = self.get_all()
            seen.extend(got)
            if not got:
                time.sleep(0.05)
        return seen

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.bound.delete()
        self.conn.release()


def ready_messages(amqp_uri: str, queue: str) -> int:
    """Messages waiting in `queue` now (a passive declare: no management-API lag)."""
    with Connection(amqp_uri) as conn:
        return conn.channel().queue_declare(queue, passive=True).message_count


def body_text(message) -> str:
    """The body of a received message as text (py-amqp decodes it when the publisher
    set a content encoding)."""
    body = message.body
    return body if isinstance(body, str) else body.decode("utf-8")


def publish(amqp_uri: str, exchange: str, routing_key: str, body, *, message_id=None,
            raw: bytes | None = None, content_type: str = "application/json") -> str:
    message_id = message_id or str(uuid.uuid4())
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        payload = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        producer.publish(payload, exchange=exchange, routing_key=routing_key,
                         content_type=content_type, content_encoding="utf-8",
                         message_id=message_id, delivery_mode=2, retry=False)
    return message_id


def decision(filing: dict, outcome: str = "accepted", *, version: int | None = None,
             county: str = COUNTY, **extra) -> dict:
    return {"filing_id": filing["id"], "version": version or filing["version"], "county": county,
            "uscc": filing["uscc"], "outcome": outcome, "reasons": extra.pop("reasons", []),
            "findings": extra.pop("findings", []), "late": extra.pop("late", False),
            "days_late": extra.pop("days_late", 0), "deadline": extra.pop("deadline", None),
            "decided_at": extra.pop("decided_at", datetime.now(timezone.utc).isoformat()),
            **extra}
