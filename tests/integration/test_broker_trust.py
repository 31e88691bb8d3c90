"""BROKER_TRUST=per-county on the real broker, SQLite and PostgreSQL: the registry does
not start without the user -> county map; a forwarded message whose validated AMQP
`user_id` is not mapped to every county it names goes to cqo.dead (COUNTY_NOT_TRUSTED),
into the audit trail, and no decision goes anywhere; the mapped county is decided as
usual. The publishing user is the login user of the test connection (the broker refuses
a `user_id` that is not), mapped to 130921."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from kombu import Connection, Queue
from nameko.containers import ServiceContainer
from sqlalchemy import text

from services.registry.service import RegistryService
from shared.config import SettingError
from shared.keys import Keys
from shared.messaging import topology
from tests.integration.registry_support import CountySide, registry_config

pytestmark = pytest.mark.integration

MAPPED, OTHER = "130921", "130922"
ROOT = Path(__file__).resolve().parents[2]


def login_user(amqp_uri: str) -> str:
    return Connection(amqp_uri).userid


class Tap:
    """A queue of the test's own on an exchange: what the registry published there."""

    def __init__(self, connection, exchange, routing_key=""):
        self.channel = connection.channel()
        self.queue = Queue(f"test.tap.{uuid.uuid4().hex[:8]}", exchange=exchange,
                           routing_key=routing_key, auto_delete=False, durable=False)
        self.queue(self.channel).declare()
        self.messages = []

    def collect(self):
        while (message := self.queue(self.channel).get(no_ack=True)) is not None:
            self.messages.append(message)
        return self.messages

    def close(self):
        self.queue(self.channel).delete()


@pytest.fixture
def per_county(amqp_uri, db_config, tmp_path, free_port):
    """The registry in per-county trust; yields (county side, database, dead tap, decisions tap)."""
    config = {**registry_config(amqp_uri, db_config, tmp_path / "keys", free_port()),
              "BROKER_TRUST": "per-county",
              # as the environment gives it: JSON text
              "COUNTY_BROKER_USERS": json.dumps({login_user(amqp_uri): MAPPED})}
    container = ServiceContainer(RegistryService, config)
    container.start()
    side = CountySide(amqp_uri, Keys(config), counties=(MAPPED, OTHER))
    dead_tap = Tap(side.connection, topology.DEAD)
    decisions_tap = Tap(side.connection, topology.DECISIONS, "decision.#")
    (db_provider,) = [d for d in container.dependencies if d.attr_name == "db"]
    yield side, db_provider.database, dead_tap, decisions_tap
    dead_tap.close()
    decisions_tap.close()
    side.close()
    container.stop()


def wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def scalar(db, sql: str):
    return db.read(lambda conn: conn.execute(text(sql)).scalar())


def outbox_empty(db) -> bool:
    return scalar(db, "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL") == 0


def test_forged_county_is_dead_lettered_audited_and_answered_to_nobody(per_county, amqp_uri):
    side, db, dead_tap, decisions_tap = per_county
    user = login_user(amqp_uri)
    forged_route_and_body = side.filing(OTHER, n=1)
    forged_body = side.filing(OTHER, n=2)
    batch = side.batch([side.filing(MAPPED, n=3), side.filing(OTHER, n=4)], county=MAPPED)
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    progress = {"type": "campaign.progress", "county": OTHER, "year": 2026, "as_of": t0.isoformat(),
                "counts": dict.fromkeys(("submitted", "returned", "approved", "forwarded",
                                         "accepted", "rejected"), 0)}
    sent = {  # message id -> (routing key, body)
        "forged-route-and-body": (f"filing.{OTHER}.establishment", forged_route_and_body),
        "forged-body": (f"filing.{MAPPED}.establishment", forged_body),
        "forged-batch-item": (f"filing.{MAPPED}.batch", batch),
        "forged-progress": (f"filing.{OTHER}.progress", progress),
    }
    ids = {}
    for name, (routing_key, body) in sent.items():
        ids[name] = f"{name}:{uuid.uuid4().hex[:8]}"
        side.publish(body, routing_key=routing_key, message_id=ids[name], user_id=user)

    # in cqo.dead, each with its code and reason
    def dead_copies():
        by_id = {m.properties.get("message_id"): m for m in dead_tap.collect()}
        return by_id if set(ids.values()) <= set(by_id) else None

    copies = wait(dead_copies)
    for name, message_id in ids.items():
        headers = copies[message_id].headers
        assert headers["x-error-code"] == "COUNTY_NOT_TRUSTED", name
        assert user in headers["x-error-reason"] and MAPPED in headers["x-error-reason"], name
        assert headers["x-original-routing-key"] == sent[name][0]
        assert json.loads(copies[message_id].body) == json.loads(json.dumps(sent[name][1]))

    # recorded as dead letters and in the audit trail
    recorded = db.read(lambda conn: dict(conn.execute(text(
        "SELECT message_id, error_code FROM dead_letters WHERE consumer = 'registry.intake'")).all()))
    assert all(recorded.get(message_id) == "COUNTY_NOT_TRUSTED" for message_id in ids.values())
    audit = db.read(lambda conn: conn.execute(text(
        "SELECT actor, detail, filing_id FROM register_audit WHERE action = 'message.untrusted'")).all())
    details = {json.loads(d)["message_id"]: (actor, json.loads(d), filing_id) for actor, d, filing_id in audit}
    assert set(details) == set(ids.values())
    actor, detail, filing_id = details[ids["forged-route-and-body"]]
    assert actor == f"broker:{user}" and filing_id == forged_route_and_body["filing_id"]
    assert detail["user_county"] == MAPPED and detail["claimed_counties"] == [OTHER]
    assert details[ids["forged-batch-item"]][1]["claimed_counties"] == [MAPPED, OTHER]

    # nothing applied, no decision to anyone (whatever the registry queued is sent by now)
    wait(lambda: outbox_empty(db))
    time.sleep(0.5)
    assert decisions_tap.collect() == []
    assert scalar(db, "SELECT count(*) FROM filing_ledger") == 0
    assert scalar(db, "SELECT count(*) FROM county_campaign_progress") == 0


def test_the_mapped_county_is_decided_as_usual(per_county, amqp_uri):
    side, db, dead_tap, decisions_tap = per_county
    user = login_user(amqp_uri)
    single = side.filing(MAPPED, n=5)
    batch = side.batch([side.filing(MAPPED, n=6), side.filing(MAPPED, n=7)], county=MAPPED)
    side.publish(single, user_id=user)
    side.publish(batch, routing_key=f"filing.{MAPPED}.batch", user_id=user)
    wanted = {(f["filing_id"], 1) for f in (single, *batch["filings"])}
    decisions = side.drain(MAPPED, until=lambda d: wanted <= set(d))
    assert {decisions[k]["outcome"] for k in wanted} == {"accepted"}
    wait(lambda: outbox_empty(db))
    assert dead_tap.collect() == []
    assert scalar(db, "SELECT count(*) FROM register_audit WHERE action = 'message.untrusted'") == 0


def test_registry_refuses_to_start_per_county_without_the_map(amqp_uri, tmp_path, free_port):
    config = {**registry_config(amqp_uri, {"DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"},
                                tmp_path / "keys", free_port()), "BROKER_TRUST": "per-county"}
    container = ServiceContainer(RegistryService, config)
    try:
        with pytest.raises(SettingError, match="COUNTY_BROKER_USERS"):
            container.start()
    finally:
        container.kill()


@pytest.mark.parametrize("service,env,setting", [
    ("registry", {"BROKER_TRUST": "per-county"}, "COUNTY_BROKER_USERS"),
    ("registry", {"QUALIFICATION_RULES": '{"min_years": 3,}'}, "QUALIFICATION_RULES"),
    ("filing", {"QUALIFICATION_RULES": "@/nonexistent/rules.yaml"}, "QUALIFICATION_RULES"),
])
def test_cqo_serve_refuses_a_bad_setting_with_one_clear_message(service, env, setting, tmp_path,
                                                                 free_port):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("BROKER_TRUST", "COUNTY_BROKER_USERS", "QUALIFICATION_RULES")}
    environ.update(env, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}", DEV_KEYS_DIR=str(tmp_path / "keys"),
                   DATABASE_URL=f"sqlite:///{tmp_path / 's.db'}")
    done = subprocess.run([sys.executable, "-m", "cqo.cli", "serve", service], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"invalid setting {setting}: " in done.stderr  # the English log line
    assert f"无法启动服务 {service}：配置项 {setting} 无效：" in done.stderr
