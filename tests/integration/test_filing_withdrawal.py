"""County and city together on the real broker, SQLite and PostgreSQL (issue 8, defect 2):
a change after a refused establishment is decided at once; a filing the city holds for
its predecessor can be withdrawn through the county (撤回申请中), the city's answer wins,
and the enterprise can file again afterwards."""
import json
import uuid
from datetime import timedelta

import pytest
from alembic import command
from nameko.containers import ServiceContainer
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shared.clock import today
from services.filing.service import MIGRATIONS
from services.registry.service import RegistryService
from shared.contracts import WithdrawalRequestSchema
from shared.keys import Keys
from shared.migrate import alembic_config, upgrade
from tests.support import factories
from tests.integration import filing_support as fs
from tests.integration.filing_support import COUNTY, assert_problem, enterprise, new_uscc, officer
from tests.integration.registry_support import registry_config

pytestmark = pytest.mark.integration

# the city's art. 6 rules are stricter than the county's here (the city's findings are the
# authoritative ones): 大学专科 without a title is refused instead of left to the county
CITY_RULES = {"severities": {"QUAL_EDUCATION_CONFIRM": "blocking"}}
JUNIOR_COLLEGE = {"cqo__education_level": "junior_college", "cqo__title_level": "none"}


@pytest.fixture
def fast_teardown():
    """Replaces nameko's autouse fixture of that name for this module. It makes every
    consumer created during a test stop consuming when that test ends; here the city
    restarted by one test serves the next ones, and the next `stop_registry` would wait
    forever for its exited consumer thread to cancel its consumer. The containers are
    stopped before their vhost goes (see `env`), so there is nothing to speed up."""
    yield


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, broker, run_id, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"withdrawal_{request.param}")
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with fs.vhost(broker, f"cqo_test_{run_id}_withdrawal_{request.param}") as uri, \
            fs.database_config(request.param, tmp, pg, f"wd_{run_id}") as county_db, \
            fs.database_config(request.param, tmp, pg, f"wd_city_{run_id}") as city_db, \
            fs.FilingStack(uri, county_db, tmp / "keys") as stack:
        # one message at a time: the tests that stop the city choose the order it decides in
        config = {**registry_config(uri, city_db, tmp / "keys", fs.free_port()),
                  "QUALIFICATION_RULES": CITY_RULES, "INTAKE_PREFETCH": 1}
        city = Env(uri, stack, config)
        city.start_registry()
        try:
            yield city
        finally:
            city.stop_registry()


class Env:
    def __init__(self, uri, stack, city_config):
        self.uri, self.stack, self.city_config = uri, stack, city_config
        self.keys = Keys(city_config)
        self.registry = None

    def start_registry(self):
        self.registry = ServiceContainer(RegistryService, self.city_config)
        self.registry.start()
        (provider,) = [d for d in self.registry.dependencies if d.attr_name == "db"]
        self.city_db = provider.database

    def stop_registry(self):
        self.registry.stop()

    # the county, through its HTTP interface
    def filing(self, uscc, fid, role=None):
        resp = self.stack.get(f"/filings/{fid}", role or enterprise(uscc))
        assert resp.status_code == 200, resp.text
        return resp.json()

    def forward(self, uscc, **overrides):
        filing = self.stack.file(uscc, **overrides)
        assert self.stack.review(filing["id"])["status"] == "forwarded"
        return filing

    def settled(self, uscc, fid, *statuses, timeout=20.0):
        """The filing once the county shows one of `statuses`."""
        fs.wait_for(lambda: self.filing(uscc, fid)["status"] in statuses, timeout,
                    message=f"filing {fid} in {statuses}")
        return self.filing(uscc, fid)

    def waiting_change(self):
        """A change with no establishment anywhere: the city holds it for its predecessor."""
        uscc = new_uscc()
        change = self.forward(uscc, kind="change")
        assert self.settled(uscc, change["id"], "waiting", "accepted", "rejected")["status"] == "waiting"
        return uscc, change

    # the city
    def city(self, sql, **params):
        with self.city_db.unit_of_work() as uow:
            return uow.session.execute(text(sql), params).all()

    def city_outcome(self, fid):
        [(outcome,)] = self.city("SELECT outcome FROM filing_ledger WHERE filing_id = :f", f=fid)
        return outcome

    def city_processed(self, message_id):
        return bool(self.city("SELECT 1 FROM inbox_messages WHERE consumer = 'registry.intake' "
                              "AND message_id = :m", m=message_id))

    def county_processed(self, city_message_id):
        return self.stack.count("inbox_messages", "consumer = :c AND message_id = :m",
                                c=f"filing_{COUNTY}.decisions",
                                m=f"decisions:{city_message_id}:{COUNTY}") == 1

    def establishment_from_elsewhere(self, uscc, n):
        """The predecessor reaching the city (sent as a county's relay sends it)."""
        body = factories.filing_message(
            county=COUNTY, uscc=uscc, person=n, hmac_key=self.keys.get("ID_HMAC_KEY"),
            city_public_key=self.keys.get("CITY_PUBLIC_KEY"),
            appointed_on=today() - timedelta(days=400), submitted=today() - timedelta(days=390))
        fs.publish(self.uri, "cqo.filings", f"filing.{COUNTY}.establishment", body,
                   message_id=f"filing:{body['filing_id']}:v1")
        return body


def reason_codes(detail) -> list[str]:
    return [r["code"] for r in detail["decision"]["reasons"]]


def test_change_after_the_city_refused_the_establishment_is_rejected_at_once(env):
    uscc = new_uscc()
    establishment = env.forward(uscc, **JUNIOR_COLLEGE)  # the county only warns (县局确认)
    refused = env.settled(uscc, establishment["id"], "accepted", "rejected")
    assert refused["status"] == "rejected" and reason_codes(refused) == ["QUALIFICATION_NOT_MET"]

    change = env.forward(uscc, kind="change")  # the county has no filed CQO: a warning only
    decided = env.settled(uscc, change["id"], "waiting", "accepted", "rejected")
    assert decided["status"] == "rejected", decided["status"]  # not held until the timeout
    assert reason_codes(decided) == ["ESTABLISHMENT_REJECTED"]
    assert "岗位设立" in decided["decision"]["reasons"][0]["message"]
    assert not env.city("SELECT 1 FROM filing_ledger WHERE outcome = 'waiting' AND uscc = :u", u=uscc)

    # nothing blocks the corrected establishment
    resp = env.stack.put(f"/filings/{establishment['id']}", fs.filing_payload(uscc), enterprise(uscc))
    assert resp.status_code == 200, resp.text
    env.stack.review(establishment["id"])
    assert env.settled(uscc, establishment["id"], "accepted", "rejected")["status"] == "accepted"


def test_a_waiting_filing_is_withdrawn_through_the_county(env):
    stack = env.stack
    probe = fs.Probe(env.uri, "cqo.filings", f"filing.{COUNTY}.withdraw")
    try:
        uscc, change = env.waiting_change()
        env.stop_registry()  # the city answers only once the county has shown 撤回申请中
        try:
            resp = stack.post(f"/filings/{change['id']}/withdraw", headers=enterprise(uscc))
            assert resp.status_code == 200, resp.text
            assert (resp.json()["status"], resp.json()["status_name"]) == ("withdrawing", "撤回申请中")
            assert env.filing(uscc, change["id"], officer())["status"] == "withdrawing"
            again = stack.post(f"/filings/{change['id']}/withdraw", headers=enterprise(uscc))
            assert again.status_code == 200 and again.json()["status"] == "withdrawing"
            fs.wait_for(lambda: fs.ready_messages(env.uri, "registry.intake") == 1, 20,
                        message="one request queued at the city")
        finally:
            env.start_registry()

        message_id = f"withdraw:{change['id']}:v1"
        [request] = [m for m in probe.collect(lambda ms: any(
            m.properties.get("message_id") == message_id for m in ms))]
        assert request.delivery_info["routing_key"] == f"filing.{COUNTY}.withdraw"
        body = json.loads(fs.body_text(request))
        loaded = WithdrawalRequestSchema().load(body)
        assert (str(loaded["filing_id"]), loaded["version"], loaded["uscc"]) == (change["id"], 1, uscc)

        withdrawn = env.settled(uscc, change["id"], "withdrawn", "accepted", "rejected")
        assert withdrawn["status"] == "withdrawn" and withdrawn["decision_outcome"] == "withdrawn"
        assert reason_codes(withdrawn) == ["FILING_WITHDRAWN"]
        assert withdrawn["decision"]["outcome_name"] == "已撤回"
        assert env.city_outcome(change["id"]) == "withdrawn"
        assert len(env.city("SELECT 1 FROM register_audit WHERE action = 'filing.withdrawn' "
                            "AND filing_id = :f", f=change["id"])) == 1
        assert stack.count("outbox_messages", "routing_key = :k", k=f"filing.{COUNTY}.withdraw") == 1

        # a redelivery (same message id) and a duplicate request (another id) change nothing
        fs.publish(env.uri, "cqo.filings", f"filing.{COUNTY}.withdraw", body, message_id=message_id)
        duplicate = fs.publish(env.uri, "cqo.filings", f"filing.{COUNTY}.withdraw", body)
        fs.wait_for(lambda: env.county_processed(duplicate), 20, message="duplicate answered")
        answers = [json.loads(r) if isinstance(r, str) else r for (r,) in env.city(
            "SELECT payload FROM outbox_messages WHERE message_id = :m",
            m=f"decisions:{duplicate}:{COUNTY}")]
        [answer] = answers[0]["decisions"]
        assert answer["outcome"] == "withdrawn" and "WITHDRAWAL_REPEATED" in [
            r["code"] for r in answer["reasons"]]
        assert len(env.city("SELECT 1 FROM register_audit WHERE action = 'filing.withdrawn' "
                            "AND filing_id = :f", f=change["id"])) == 1
        after = env.filing(uscc, change["id"])
        assert (after["status"], after["updated_at"]) == ("withdrawn", withdrawn["updated_at"])
        assert [d["outcome"] for d in after["decisions"]] == ["waiting", "withdrawn"]

        # the enterprise is no longer blocked: a corrected establishment goes through
        establishment = env.forward(uscc)
        assert env.settled(uscc, establishment["id"], "accepted", "rejected")["status"] == "accepted"

        # a filing that is not waiting at the city keeps its behaviour
        refused = stack.post(f"/filings/{establishment['id']}/withdraw", headers=enterprise(uscc))
        assert_problem(refused, 409, "FILING_INVALID_STATE")
    finally:
        probe.close()


def test_forwarded_filing_not_yet_waiting_cannot_be_withdrawn(env):
    env.stop_registry()  # the city has not answered yet
    try:
        uscc = new_uscc()
        change = env.forward(uscc, kind="change")
        resp = env.stack.post(f"/filings/{change['id']}/withdraw", headers=enterprise(uscc))
        assert_problem(resp, 409, "FILING_INVALID_STATE")
        assert env.filing(uscc, change["id"])["status"] == "forwarded"
    finally:
        env.start_registry()
    assert env.settled(uscc, change["id"], "waiting")["status"] == "waiting"


def test_withdrawal_request_crossing_the_decision_yields_to_it(env):
    """The predecessor reaches the city before the request: the city decides the change,
    answers the request with that decision, and the county applies it once."""
    uscc, change = env.waiting_change()
    env.stop_registry()
    try:
        establishment = env.establishment_from_elsewhere(uscc, n=8101)
        resp = env.stack.post(f"/filings/{change['id']}/withdraw", headers=enterprise(uscc))
        assert resp.json()["status"] == "withdrawing"
        fs.wait_for(lambda: fs.ready_messages(env.uri, "registry.intake") == 2, 20,
                    message="establishment, then the request, queued at the city")
    finally:
        env.start_registry()
    decided = env.settled(uscc, change["id"], "accepted", "rejected", "withdrawn")
    assert decided["status"] == "accepted" and decided["decision_outcome"] == "accepted"
    assert env.city_outcome(change["id"]) == "accepted"
    assert env.city_outcome(establishment["filing_id"]) == "accepted"
    request = f"withdraw:{change['id']}:v1"
    fs.wait_for(lambda: env.city_processed(request) and env.county_processed(request), 20,
                message="the request answered")
    [(payload,)] = env.city("SELECT payload FROM outbox_messages WHERE message_id = :m",
                            m=f"decisions:{request}:{COUNTY}")
    [answer] = (json.loads(payload) if isinstance(payload, str) else payload)["decisions"]
    assert answer["outcome"] == "accepted" and "WITHDRAWAL_TOO_LATE" in [r["code"] for r in answer["reasons"]]
    after = env.filing(uscc, change["id"])
    assert after["status"] == "accepted"
    assert [d["outcome"] for d in after["decisions"]] == ["waiting", "accepted"]
    history = env.city("SELECT ended_on FROM appointments WHERE uscc = :u ORDER BY id", u=uscc)
    assert [e is None for (e,) in history] == [False, True]


def test_withdrawal_request_before_the_predecessor_wins(env):
    """The request reaches the city first: the change is withdrawn, and the establishment
    arriving next does not bring it back."""
    uscc, change = env.waiting_change()
    env.stop_registry()
    try:
        resp = env.stack.post(f"/filings/{change['id']}/withdraw", headers=enterprise(uscc))
        assert resp.json()["status"] == "withdrawing"
        fs.wait_for(lambda: fs.ready_messages(env.uri, "registry.intake") == 1, 20,
                    message="the request queued at the city")
        establishment = env.establishment_from_elsewhere(uscc, n=8201)
    finally:
        env.start_registry()
    assert env.settled(uscc, change["id"], "withdrawn", "accepted", "rejected")["status"] == "withdrawn"
    fs.wait_for(lambda: env.city("SELECT 1 FROM filing_ledger WHERE filing_id = :f",
                                 f=establishment["filing_id"]), 20, message="establishment decided")
    assert env.city_outcome(establishment["filing_id"]) == "accepted"
    assert env.city_outcome(change["id"]) == "withdrawn"
    assert len(env.city("SELECT 1 FROM appointments WHERE uscc = :u", u=uscc)) == 1


def _filing_row(uscc, status):
    now = "2026-12-01 00:00:00"
    return {"id": str(uuid.uuid4()), "county": COUNTY, "uscc": uscc,
            "enterprise_name": "沧州示例", "category": "other", "kind": "change",
            "channel": "proactive", "status": status, "version": 1,
            "submitted_to_county_on": "2026-12-01", "created_at": now, "updated_at": now,
            "created_by": "t", "cqo_name": "张", "cqo_id_masked": "1309**"}


def _insert(database, row):
    with database.unit_of_work() as uow:
        uow.session.execute(text(
            "INSERT INTO filings (id, county, uscc, enterprise_name, category, kind, channel, status,"
            " version, submitted_to_county_on, created_at, updated_at, created_by, cqo_name,"
            " cqo_id_masked) VALUES (:id, :county, :uscc, :enterprise_name, :category, :kind,"
            " :channel, :status, :version, :submitted_to_county_on, :created_at, :updated_at,"
            " :created_by, :cqo_name, :cqo_id_masked)"), row)
        uow.commit()


def test_a_filing_whose_withdrawal_is_asked_still_blocks_another(database):
    """Migration f0004 (both dialects): 撤回申请中 is open for the one-open-filing index,
    and the migration goes down and up again."""
    upgrade(database, MIGRATIONS)
    uscc = new_uscc()
    _insert(database, _filing_row(uscc, "withdrawing"))
    with pytest.raises(IntegrityError):
        _insert(database, _filing_row(uscc, "submitted"))
    cfg = alembic_config(MIGRATIONS)
    with database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "f0003_notices")
    with database.engine.begin() as conn:  # the row is open no more under the old index
        conn.execute(text("DELETE FROM filings WHERE uscc = :u"), {"u": uscc})
    upgrade(database, MIGRATIONS)
    _insert(database, _filing_row(uscc, "withdrawn"))
    _insert(database, _filing_row(uscc, "withdrawing"))
