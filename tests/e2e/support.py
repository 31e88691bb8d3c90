"""Helpers of the end-to-end fault tests: a whole deployment (the registry and county
filing services as real `cqo serve` processes, started by cqo.stack.Stack) on a vhost
and PostgreSQL schemas of its own, and the probes the tests read it with.

Everything a test starts is stopped and removed by `Deployment.close()`: processes,
the vhost (with its queues) and the schemas.
"""
from __future__ import annotations

import json
import os
import random
import socket
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

import requests
from kombu import Connection, Producer
from sqlalchemy import text

from services.filing.domain import APPROVED, CAMPAIGN
from shared.clock import today
from services.filing.models import Filing
from services.filing.schemas import FilingIn
from services.filing import identity
from services.filing.settings import Settings
from services.filing.use_cases import FilingApp
from services.filing.wire import wire_message
from shared.auth import issue_token
from shared.db import Database
from shared.messaging import topology
from tests.support import polling
from cqo.stack import CITY_PORTS, FIRST_COUNTY_PORT, Stack
from tests.support import infra
from tests.support.factories import resident_id_for, uscc_for

SECRET = "e2e-fault-secret-0123456789-abcdefghijklmnopq"
HTTP_TIMEOUT = 30


# -- waiting ---------------------------------------------------------------------------------

def wait_for(predicate: Callable[[], object], timeout: float, message: str | Callable[[], str],
             interval: float = 0.1):
    return polling.wait_for(predicate, timeout, message, interval)


# -- tokens ----------------------------------------------------------------------------------

def auth(role: str, **claims) -> dict:
    return {"Authorization": "Bearer " + issue_token(SECRET, role, **claims)}


def officer(county: str) -> dict:
    return auth("county_officer", county=county)


def city() -> dict:
    return auth("city_officer")


def enterprise(uscc: str) -> dict:
    return auth("enterprise", uscc=uscc)


# -- ports -----------------------------------------------------------------------------------

def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_offset(counties: int, services: Iterable[str] = ("registry",)) -> int:
    """A `Stack(port_offset=...)` whose every port is free: the default ports
    (8001..., 8011...) may belong to a demo or another run on this machine."""
    rng = random.Random()
    for _ in range(500):
        # below the ephemeral range (32768-): a client's outgoing connection cannot take them
        offset = rng.randrange(10000, 24000)
        ports = [CITY_PORTS[s] + offset for s in services]
        ports += [FIRST_COUNTY_PORT + i + offset for i in range(counties)]
        if all(_port_free(p) for p in ports):
            return offset
    raise RuntimeError("no free port range found for the stack")


# -- a deployment ----------------------------------------------------------------------------

class Deployment:
    """The registry and county filing services as processes, isolated for one test.

    `env` goes to every process, `process_env` to single ones ({"registry": {...},
    "filing_130921": {...}}), e.g. a small BATCH_CHUNK_SIZE for one county.
    `database="sqlite"` gives each process a SQLite file in `workdir` instead.
    `amqp_uri_for(vhost)` gives the processes' (and the probes') AMQP_URI of the
    deployment's vhost, e.g. a cluster's failover URI listing every node.
    """

    def __init__(self, broker: infra.Broker, postgres_url: str, workdir: Path, *,
                 counties=("130921",), services=("registry",), env: dict | None = None,
                 process_env: dict | None = None, amqp_uri: str | None = None,
                 amqp_uri_for: Callable[[str], str] | None = None,
                 tag: str = "e2e", database: str = "postgresql"):
        if database not in ("postgresql", "sqlite"):
            raise ValueError(f"unknown database: {database}")
        postgres_url = postgres_url if database == "postgresql" else None
        self.broker, self.postgres_url, self.workdir = broker, postgres_url, Path(workdir)
        self.counties = tuple(counties)
        run = uuid.uuid4().hex[:8]
        self.vhost = f"cqo_e2e_{tag}_{run}"
        self.schema_prefix = f"e2e_{run}"
        broker.create_vhost(self.vhost)
        self.amqp_uri = (amqp_uri_for or broker.vhost_uri)(self.vhost)
        self.keys_dir = self.workdir / "keys"
        self.stack = Stack(self.workdir, amqp_uri=amqp_uri or self.amqp_uri, counties=counties,
                           services=services, database_url=postgres_url,
                           schema_prefix=self.schema_prefix,
                           port_offset=free_port_offset(len(counties), services),
                           extra_env={"CQO_AUTH_SECRET": SECRET, "LOG_LEVEL": "INFO",
                                      **(env or {})})
        for name, values in (process_env or {}).items():
            self.stack.spec(name).env.update({k: str(v) for k, v in values.items()})
        self._dbs: dict[str, Database] = {}
        self.closed = False

    # names
    def schema(self, name: str) -> str:
        return f"{self.schema_prefix}_{name}"

    @property
    def registry_url(self) -> str:
        return self.stack.spec("registry").base_url + "/api/v1"

    def county_url(self, county: str) -> str:
        return self.stack.spec(f"filing_{county}").base_url + "/api/v1"

    @property
    def notify_url(self) -> str:  # with services=(..., "notify")
        return self.stack.spec("notify").base_url + "/api/v1"

    # lifecycle
    def start(self) -> "Deployment":
        self.stack.start(wait=90)
        return self

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.stack.stop()
        finally:
            for db in self._dbs.values():
                db.dispose()
            self.broker.delete_vhost(self.vhost)
            for spec in self.stack.specs if self.postgres_url else ():
                infra.drop_schema(self.postgres_url, self.schema(spec.name))

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for spec in self.stack.specs:
            path = self.workdir / f"{spec.name}.log"
            if path.exists():
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                out.append(f"----- {path} (last {len(tail)} lines) -----\n" + "\n".join(tail))
        return "\n".join(out)

    # databases, read directly (what the services' HTTP APIs do not show)
    def db(self, name: str) -> Database:
        if name not in self._dbs:
            if self.postgres_url:
                self._dbs[name] = Database(self.postgres_url, schema=self.schema(name), pool_size=2)
            else:  # the process's own file (cqo.stack.Stack)
                self._dbs[name] = Database(f"sqlite:///{self.stack.workdir / (name + '.db')}")
        return self._dbs[name]

    def registry_db(self) -> Database:
        return self.db("registry")

    def county_db(self, county: str) -> Database:
        return self.db(f"filing_{county}")

    def outbox_backlog(self, name: str) -> int:
        """Messages process `name` has written to its outbox and not yet published."""
        return self.scalar(self.db(name), "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL")

    @staticmethod
    def scalar(db: Database, sql: str, **params):
        return db.read(lambda conn: conn.execute(text(sql), params).scalar())

    @staticmethod
    def rows(db: Database, sql: str, **params) -> list:
        return db.read(lambda conn: conn.execute(text(sql), params).all())

    # the services over HTTP
    def ledger(self, **filters) -> dict:
        params = {"page_size": 1, **filters}
        resp = requests.get(self.registry_url + "/filings", params=params, headers=city(),
                            timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def ledger_total(self, **filters) -> int:
        return self.ledger(**filters)["total"]

    def county_filings(self, county: str, **filters) -> dict:
        params = {"page_size": 1, **filters}
        resp = requests.get(self.county_url(county) + "/filings", params=params,
                            headers=officer(county), timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def county_total(self, county: str, **filters) -> int:
        return self.county_filings(county, **filters)["total"]

    def county_health(self, county: str) -> dict:
        return requests.get(self.county_url(county) + "/health", timeout=HTTP_TIMEOUT).json()

    def enterprise(self, uscc: str) -> dict:
        resp = requests.get(f"{self.registry_url}/enterprises/{uscc}", headers=city(),
                            timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def submit_batch(self, county: str, body: dict | None = None) -> dict:
        resp = requests.post(self.county_url(county) + "/batches", json=body or {},
                             headers=officer(county), timeout=120)
        assert resp.status_code == 201, resp.text
        return resp.json()

    # the annual campaign (art. 13), opened by the city, announced to every county
    def open_campaign(self, year: int | None = None) -> dict:
        day = today()
        year = year or day.year
        body = {"year": year, "notice_number": f"沧质监〔{year}〕1号",
                "title": f"{year}年度首席质量官集中备案", "notice_text": "各县（市、区）：请组织集中备案。",
                "opens_on": (day - timedelta(days=1)).isoformat(),
                "closes_on": (day + timedelta(days=60)).isoformat()}
        resp = requests.post(self.registry_url + "/campaigns", json=body, headers=city(),
                             timeout=HTTP_TIMEOUT)
        assert resp.status_code == 201, resp.text
        for county in self.counties:
            wait_for(lambda: requests.get(self.county_url(county) + "/campaign",
                                          headers=officer(county),
                                          timeout=HTTP_TIMEOUT).status_code == 200,
                     30, f"campaign {year} announced to county {county}")
        return resp.json()

    # the county's settings, as its process builds them (same keys folder)
    def county_app(self, county: str) -> FilingApp:
        settings = Settings.from_config({"COUNTY_CODE": county, "DEV_KEYS_DIR": str(self.keys_dir)})
        return FilingApp(self.county_db(county), settings)

    # the broker
    def publish(self, routing_key: str, body=None, *, raw: bytes | None = None,
                message_id: str | None = None, exchange: str = topology.FILINGS.name,
                content_type: str = "application/json") -> str:
        return publish(self.amqp_uri, exchange, routing_key, body, raw=raw,
                       message_id=message_id, content_type=content_type)

    def queue_depth(self, queue: str) -> int:
        """Ready messages in `queue` now (passive declare: no management-API lag)."""
        with Connection(self.amqp_uri) as conn:
            return conn.channel().queue_declare(queue, passive=True).message_count

    def dead_letters(self) -> list[dict]:
        """Take every message waiting in this vhost's `cqo.dead` queue."""
        return take_all(self.amqp_uri, topology.DEAD_QUEUE_NAME)


# -- filings ---------------------------------------------------------------------------------

def filing_form(county: str, n: int, *, kind: str = "establishment", person: int | None = None,
                appointed_on: date | None = None, effective_on: date | None = None) -> dict:
    """A complete, qualified intake form (POST /filings) for the n-th enterprise; its CQO
    is the `person`-th (default: the n-th), appointed 20 days ago unless `appointed_on`;
    a change or end takes `effective_on`."""
    appointed = appointed_on or today() - timedelta(days=20)
    person = n if person is None else person
    form = {
        "kind": kind,
        "enterprise": {"uscc": uscc_for(county, n), "name": f"沧州故障测试企业{n:05d}有限公司",
                       "county": county, "category": "industrial_above_scale"},
        "cqo": {"name": f"质量官{person}", "id_type": "resident_id",
                "id_number": resident_id_for(person, county), "phone": "13800138000",
                "email": f"cqo{person}@example.cn", "position": "副总经理", "is_decision_level": True,
                "education_level": "bachelor", "title_level": "intermediate",
                "years_quality_work": 6, "training_certificate": f"CZCQO-{person:06d}",
                "attests_law_knowledge": True, "attests_organisational_ability": True},
        "appointment": {"appointed_by": "李总经理", "appointed_by_top_manager": True,
                        "appointed_on": appointed.isoformat(),
                        "letter_number": f"沧质任〔{appointed.year}〕{n}号",
                        "letter_date": appointed.isoformat()},
    }
    if effective_on is not None:
        form["effective_on"] = effective_on.isoformat()
    return form


def submit_over_http(deployment: Deployment, county: str, numbers: Iterable[int]) -> list[str]:
    """Enterprises file and the county officer approves, through the county's HTTP API."""
    return submit_forms(deployment, county, (filing_form(county, n) for n in numbers))


def submit_forms(deployment: Deployment, county: str, forms: Iterable[dict], *,
                 status: str = APPROVED) -> list[str]:
    """submit_over_http with the intake forms given; `status` is the one each filing has
    after its approval (a proactive filing outside a campaign is forwarded at once)."""
    ids = []
    session = requests.Session()
    base = deployment.county_url(county)
    for form in forms:
        resp = session.post(base + "/filings", json=form,
                            headers=enterprise(form["enterprise"]["uscc"]), timeout=HTTP_TIMEOUT)
        assert resp.status_code == 201, resp.text
        filing = resp.json()
        resp = session.post(f"{base}/filings/{filing['id']}/review",
                            json={"decision": "approve", "comment": "材料齐全"},
                            headers=officer(county), timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == status, resp.json()
        ids.append(filing["id"])
    session.close()
    return ids


def seed_approved(deployment: Deployment, county: str, numbers: Iterable[int], *,
                  campaign_year: int | None = None, status: str = APPROVED) -> list[str]:
    """Approved campaign filings written straight into the county's database, as the
    county's own use cases build them (intake form loaded by FilingIn, ID number
    protected with the county's keys, art. 6 findings, the wire message fixed at
    approval): 1,000 of them in about a second instead of 2,000 HTTP requests."""
    app = deployment.county_app(county)
    campaign_year = campaign_year or today().year
    now, day = datetime.now(timezone.utc), today()
    principal_subject = f"county_officer:{county}"

    class _Who:  # FilingApp._new_version reads only .subject
        subject = "enterprise:e2e"

    filings, versions = [], []
    schema = FilingIn()
    for n in numbers:
        data = schema.load(filing_form(county, n))
        protected = identity.protect(app.settings, data["cqo"])
        findings = app._findings(data["kind"], data, False)
        filing_id = str(uuid.uuid4())
        filing = Filing(
            id=filing_id, county=county, uscc=data["enterprise"]["uscc"],
            enterprise_name=data["enterprise"]["name"], category=data["enterprise"]["category"],
            kind=data["kind"], channel=CAMPAIGN, campaign_year=campaign_year, status=status,
            version=1, submitted_to_county_on=day, created_at=now, updated_at=now,
            created_by=_Who.subject, cqo_name=data["cqo"]["name"], cqo_id_masked=protected.masked,
            approved_on=day, approved_by=principal_subject)
        version = app._new_version(filing_id, 1, _Who, data, protected, findings, now)
        version.wire = wire_message(filing, version)
        filings.append(filing)
        versions.append(version)
    with deployment.county_db(county).unit_of_work() as uow:
        uow.session.add_all(filings)
        uow.session.flush()
        uow.session.add_all(versions)
        uow.commit()
    return [f.id for f in filings]


def wire_of(deployment: Deployment, county: str, filing_id: str) -> dict:
    """The FilingMessageSchema body the county fixed for the filing's current version."""
    row = Deployment.rows(deployment.county_db(county),
                          "SELECT v.wire FROM filing_versions v JOIN filings f "
                          "ON f.id = v.filing_id AND f.version = v.version WHERE f.id = :id",
                          id=filing_id)
    wire = row[0][0]
    return json.loads(wire) if isinstance(wire, str) else wire


# -- the broker, from the test's side --------------------------------------------------------

def publish(amqp_uri: str, exchange: str, routing_key: str, body=None, *,
            raw: bytes | None = None, message_id: str | None = None,
            content_type: str = "application/json") -> str:
    """Publish one persistent message with publisher confirms; returns its message id."""
    message_id = message_id or str(uuid.uuid4())
    payload = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.channel()).publish(
            payload, exchange=exchange, routing_key=routing_key, content_type=content_type,
            content_encoding="utf-8", message_id=message_id, delivery_mode=2, retry=False)
    return message_id


def take_all(amqp_uri: str, queue: str) -> list[dict]:
    """Consume (and ack) every message waiting in `queue`."""
    out = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        while True:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                return out
            body = message.body
            out.append({"body": body if isinstance(body, bytes) else body.encode("utf-8"),
                        "headers": dict(message.headers or {}),
                        "message_id": message.properties.get("message_id")})
            channel.basic_ack(message.delivery_tag)


# -- which broker connections a process holds (Linux /proc, no management-API lag) ----------

def tcp_ports(pid: int, remote_port: int) -> set[int]:
    """Local ports of the established TCP connections of process `pid` to `remote_port`."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], parts[9]
            established = state == "01"
            if established and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports
