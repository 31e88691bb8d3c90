"""A filing's trace endpoints, county and city on one vhost (no shovel between them), on
SQLite and PostgreSQL: each site answers the hops it saw, in time order, with the
message ids that tie them; only officers of the filing's county and the city's read it;
`cqo trace` merges both and says when a site does not answer (the multi-site run with
shovels: test_multisite.py). The migrations that add the trace columns, down and up."""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from alembic import command
from nameko.containers import ServiceContainer
from sqlalchemy import text
from typer.testing import CliRunner

from cqo.cli import app
from services.filing.service import MIGRATIONS as FILING_MIGRATIONS
from services.registry.service import MIGRATIONS as REGISTRY_MIGRATIONS, RegistryService
from shared.auth import issue_token
from shared.migrate import alembic_config, upgrade
from tests.integration import filing_support as fs
from tests.integration import registry_support as rs
from tests.integration.filing_support import COUNTY, assert_problem

pytestmark = pytest.mark.integration

COUNTY_HOPS = ["submitted", "reviewed", "outbox_written", "published", "decision_applied"]
CITY_HOPS = ["received", "decided", "decision_published"]


@pytest.fixture
def fast_teardown():
    """nameko's autouse fixture of that name stops the consumers at each test's end; the
    module's services serve every test of it (stopped before their vhost goes)."""
    yield


class Env:
    def __init__(self, stack: fs.FilingStack, registry_port: int):
        self.stack = stack
        self.county_base = f"http://127.0.0.1:{stack.port}"
        self.city_base = f"http://127.0.0.1:{registry_port}"

    def accepted(self) -> dict:
        """A proactive filing, approved (forwarded) and back accepted from the city."""
        filing = self.stack.file()
        assert self.stack.review(filing["id"])["status"] == "forwarded"
        fs.wait_for(lambda: self.stack.get(f"/filings/{filing['id']}", fs.officer()).json()["status"]
                    == "accepted", timeout=30, message="the city's decision applied")
        return filing

    def county_trace(self, filing_id: str, headers=None):
        return requests.get(f"{self.county_base}/api/v1/filings/{filing_id}/trace",
                            headers=headers or fs.officer(), timeout=10)

    def city_trace(self, filing_id: str, role="city_officer", **claims):
        return rs.get(self.city_base, f"/api/v1/filings/{filing_id}/trace", role, **claims)

    def cli(self, *args: str, registry_url: str | None = None):
        return CliRunner().invoke(app, [
            "trace", *args, "--registry-url", registry_url or self.city_base,
            "--county-url", f"{COUNTY}={self.county_base}",
            "--token", issue_token(rs.SECRET, "city_officer"),
            "--county-token", issue_token(fs.SECRET, "city_officer")], env={"COLUMNS": "220"})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, broker, run_id, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"trace_{request.param}")
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    port = fs.free_port()
    with fs.vhost(broker, f"cqo_test_{run_id}_trace_{request.param}") as uri, \
            fs.database_config(request.param, tmp, pg, f"tr_{run_id}") as county_db, \
            fs.database_config(request.param, tmp, pg, f"tr_city_{run_id}") as city_db, \
            fs.FilingStack(uri, county_db, tmp / "keys") as stack:
        registry = ServiceContainer(RegistryService, rs.registry_config(uri, city_db, tmp / "keys", port))
        registry.start()
        try:
            yield Env(stack, port)
        finally:
            registry.stop()


def test_each_site_answers_the_hops_it_saw_in_order(env):
    filing = env.accepted()
    message, decisions = f"filing:{filing['id']}:v1", f"decisions:filing:{filing['id']}:v1:{COUNTY}"

    county = env.county_trace(filing["id"])
    assert county.status_code == 200, county.text
    body = county.json()
    assert (body["filing_id"], body["site"], body["county"]) == (filing["id"], "county", COUNTY)
    assert [h["hop"] for h in body["hops"]] == COUNTY_HOPS
    by_hop = {h["hop"]: h for h in body["hops"]}
    assert by_hop["outbox_written"]["message_id"] == by_hop["published"]["message_id"] == message
    assert by_hop["decision_applied"]["message_id"] == decisions
    assert by_hop["reviewed"]["detail"] == "预审通过" and by_hop["decision_applied"]["detail"] == "备案通过"
    assert {h["site"] for h in body["hops"]} == {COUNTY}
    times = [h["at"] for h in body["hops"]]
    assert times == sorted(times) and all(t.endswith("+00:00") for t in times)

    city = env.city_trace(filing["id"])
    assert city.status_code == 200, city.text
    body = city.json()
    assert (body["site"], body["county"]) == ("city", COUNTY)
    assert [h["hop"] for h in body["hops"]] == CITY_HOPS  # one vhost: no shovel hop
    assert body["hops"][0]["message_id"] == message and body["hops"][2]["message_id"] == decisions
    # the city's county officer of the filing's county reads it too
    assert env.city_trace(filing["id"], "county_officer", county=COUNTY).status_code == 200

    result = env.cli(filing["id"], "--json")
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)
    assert merged["complete"] and merged["found"]
    assert [h["hop"] for h in merged["hops"]] == \
        ["submitted", "reviewed", "outbox_written", "published", *CITY_HOPS, "decision_applied"]
    table = env.cli(filing["id"])
    assert table.exit_code == 0, table.output
    for name in ("县局受理", "县局预审", "报送消息已发布", "市局接收", "市局作出决定", "县局收到决定", message):
        assert name in table.output, table.output


def test_who_may_read_a_trace(env):
    filing = env.accepted()
    other = fs.officer("130922")
    assert_problem(env.county_trace(filing["id"], other), 403, "AUTH_FORBIDDEN")
    assert_problem(env.city_trace(filing["id"], "county_officer", county="130922"), 403, "AUTH_FORBIDDEN")
    assert_problem(env.county_trace(filing["id"], fs.enterprise(filing["uscc"])), 403)
    assert_problem(env.city_trace(filing["id"], "enterprise", uscc=filing["uscc"]), 403)
    assert env.county_trace(filing["id"], fs.bearer("city_officer")).status_code == 200
    unknown = str(uuid.uuid4())
    assert_problem(env.county_trace(unknown), 404, "FILING_NOT_FOUND")
    assert_problem(env.city_trace(unknown), 404, "FILING_NOT_FOUND")
    assert_problem(env.county_trace("not-a-uuid"), 404)
    assert_problem(env.city_trace("not-a-uuid"), 404)
    result = env.cli(unknown)
    assert result.exit_code == 2 and "两个站点都没有该备案的记录" in result.output, result.output


def test_a_filing_not_yet_at_the_city_and_a_site_that_does_not_answer(env):
    filing = env.stack.file()  # waiting for pre-review: the city has never heard of it
    result = env.cli(filing["id"], "--json")
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)
    assert [h["hop"] for h in merged["hops"]] == ["submitted"]
    assert merged["complete"] and merged["notes"] == []
    assert [(s["site"], s["found"]) for s in merged["sites"]] == [("city", False), ("county", True)]
    # the city down (nothing listens there): the county's hops, marked incomplete
    accepted = env.accepted()
    result = env.cli(accepted["id"], registry_url=f"http://127.0.0.1:{fs.free_port()}")
    assert result.exit_code == 1, result.output
    assert "不完整" in result.output and "市局服务" in result.output and "无应答" in result.output
    assert "县局受理" in result.output and "县局收到决定" in result.output


def _migrate(database, migrations, target: str, direction=command.upgrade) -> None:
    cfg = alembic_config(migrations)
    with database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        direction(cfg, target)


def test_county_migration_finds_the_message_of_versions_forwarded_before_it(database):
    """f0005 (both dialects): a proactive version forwarded before it gets its message id
    back from the outbox; one never forwarded stays without; down and up again."""
    _migrate(database, FILING_MIGRATIONS, "f0004_withdrawing")
    forwarded, kept = str(uuid.uuid4()), str(uuid.uuid4())
    now = "2026-12-01 00:00:00"
    with database.engine.begin() as conn:
        for filing_id in (forwarded, kept):
            conn.execute(text(
                "INSERT INTO filings (id, county, uscc, enterprise_name, category, kind, channel, status,"
                " version, submitted_to_county_on, created_at, updated_at, created_by, cqo_name, cqo_id_masked)"
                " VALUES (:id, :c, :u, 'x', 'other', 'change', 'proactive', 'forwarded', 1, '2026-12-01',"
                " :now, :now, 't', '张', '1309**')"), {"id": filing_id, "c": COUNTY, "u": fs.new_uscc(), "now": now})
            conn.execute(text(
                "INSERT INTO filing_versions (filing_id, version, submitted_at, submitted_by, data, id_type,"
                " id_encrypted, id_hmac, id_sealed, id_masked, findings) VALUES (:id, 1, :now, 't', '{}',"
                " 'resident_id', 'e', 'h', 's', 'm', '[]')"), {"id": filing_id, "now": now})
        conn.execute(text(
            "INSERT INTO outbox_messages (message_id, exchange, routing_key, payload, created_at, attempts,"
            " next_attempt_at) VALUES (:m, 'cqo.filings', 'filing.130921.change', '{}', :now, 0, :now)"),
            {"m": f"filing:{forwarded}:v1", "now": now})
    upgrade(database, FILING_MIGRATIONS)

    def message_ids():
        return dict(database.read(lambda conn: conn.execute(text(
            "SELECT filing_id, forward_message_id FROM filing_versions")).all()))

    assert message_ids() == {forwarded: f"filing:{forwarded}:v1", kept: None}
    _migrate(database, FILING_MIGRATIONS, "f0004_withdrawing", command.downgrade)
    upgrade(database, FILING_MIGRATIONS)
    assert message_ids()[forwarded] == f"filing:{forwarded}:v1"


def test_registry_migration_goes_down_and_up(database):
    upgrade(database, REGISTRY_MIGRATIONS)
    _migrate(database, REGISTRY_MIGRATIONS, "r0011_certificate_issue_order", command.downgrade)
    upgrade(database, REGISTRY_MIGRATIONS)
    columns = database.read(lambda conn: conn.execute(text(
        "SELECT message_id, shovelled_at, shovel, decision_message_id FROM filing_ledger")).all())
    assert columns == []
