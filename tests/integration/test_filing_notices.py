"""The county's notices inbox on the real broker, SQLite and PostgreSQL: every notice the
city sends on filing.<county>.notices is kept once and shown to whom it concerns; and
end to end, a recommendation and a term reminder from the registry reach the enterprise
through its county."""
import time
from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from nameko.containers import ServiceContainer

from services.registry.oversight import terms
from services.registry.domain import oversight as rules
from shared import clock
from services.registry.service import RegistryService
from tests.integration import filing_support as fs
from tests.integration import oversight_support as city
from tests.integration.filing_support import COUNTY, assert_problem, enterprise, new_uscc, officer
from tests.integration.registry_support import registry_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, broker, run_id, tmp_path_factory):
    """A vhost of this module, the 130921 filing service and the city registry on it."""
    tmp = tmp_path_factory.mktemp(f"notices_{request.param}")
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with fs.vhost(broker, f"cqo_test_{run_id}_notices_{request.param}") as uri, \
            fs.database_config(request.param, tmp, pg, f"notices_{run_id}") as county_db, \
            fs.database_config(request.param, tmp, pg, f"notices_city_{run_id}") as city_db, \
            fs.FilingStack(uri, county_db, tmp / "keys") as stack:
        port = fs.free_port()
        registry = ServiceContainer(RegistryService, registry_config(uri, city_db, tmp / "keys", port))
        registry.start()
        try:
            (db_provider,) = [d for d in registry.dependencies if d.attr_name == "db"]
            yield Env(uri, stack, f"http://127.0.0.1:{port}", db_provider.database)
        finally:
            registry.stop()


class Env:
    def __init__(self, uri, stack, city_base, city_db):
        self.uri, self.stack, self.city_base, self.city_db = uri, stack, city_base, city_db

    def notice(self, body, routing_key=f"notice.{COUNTY}", message_id=None) -> str:
        return fs.publish(self.uri, "cqo.notices", routing_key, body, message_id=message_id)

    def processed(self, message_id) -> bool:
        return self.stack.count("inbox_messages", "consumer = :c AND message_id = :m",
                                c=f"filing_{COUNTY}.notices", m=message_id) == 1

    def notices(self, headers, **params) -> dict:
        resp = self.stack.get("/notices", headers, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()


def test_notices_are_kept_once_and_shown_to_whom_they_concern(env):
    stack = env.stack
    x, y = new_uscc(), new_uscc()
    recommendation = {"type": "recommendation.issued", "county": COUNTY, "uscc": x,
                      "enterprise_name": "沧州甲有限公司", "title": "首席质量官撤换建议",
                      "message": "沧县市场监督管理局建议撤换首席质量官……",
                      "recommendation": {"id": 7, "status": "pending", "status_name": "待答复"}}
    first = env.notice(recommendation, message_id=f"recommendation:7:issued:{x}")
    env.notice(recommendation, message_id=first)  # redelivered: kept once
    reminder = env.notice({"type": "term.expiring", "county": COUNTY, "uscc": y, "days": 90,
                           "title": "首席质量官任期即将届满", "message": "……还有90天……"})
    future = env.notice({"type": "inspection.scheduled", "county": COUNTY, "on": "2027-03-01"})
    everyone = env.notice({"type": "campaign.opened", "campaign": {
        "year": 2026, "title": "2026年度首席质量官集中备案", "notice_number": "沧市监〔2026〕8号",
        "opens_on": "2026-03-01", "closes_on": "2026-04-30"}}, routing_key="notice.all")
    elsewhere = env.notice({"type": "term.lapsed", "county": "130922", "uscc": y})  # misrouted
    fs.wait_for(lambda: all(env.processed(m) for m in (first, reminder, future, everyone)),
                message="notices stored")
    fs.wait_for(lambda: stack.count("dead_letters", "message_id = :m", m=elsewhere) == 1,
                message="misrouted notice dead-lettered")
    time.sleep(0.3)
    assert stack.count("notices", "message_id = :m", m=first) == 1
    assert stack.count("dead_letters", "message_id = :m AND error_code = 'NOTICE_WRONG_COUNTY'",
                       m=elsewhere) == 1

    mine = {(n["type"], n["uscc"]) for n in env.notices(officer())["items"]}
    assert {("recommendation.issued", x), ("term.expiring", y), ("inspection.scheduled", None),
            ("campaign.opened", None)} <= mine
    as_x = env.notices(enterprise(x))
    assert [n["type"] for n in as_x["items"] if n["type"] != "campaign.opened"] == ["recommendation.issued"]
    item = next(n for n in as_x["items"] if n["type"] == "recommendation.issued")
    assert (item["type_name"], item["title"], item["audience"], item["enterprise_name"]) == (
        "撤换建议", "首席质量官撤换建议", "enterprise", "沧州甲有限公司")
    assert item["data"]["recommendation"]["id"] == 7
    assert any(n["type"] == "campaign.opened" and n["audience"] == "all" for n in as_x["items"])
    as_y = env.notices(enterprise(y))
    assert {n["type"] for n in as_y["items"]} == {"term.expiring", "campaign.opened"}
    assert all(n["type"] != "inspection.scheduled" for n in as_y["items"])  # officers only
    unknown = next(n for n in env.notices(officer(), type="inspection.scheduled")["items"])
    assert (unknown["type_name"], unknown["audience"]) == ("市局通知", "officers")

    assert {n["type"] for n in env.notices(officer(), type="term.")["items"]} == {"term.expiring"}
    assert [n["uscc"] for n in env.notices(officer(), uscc=x)["items"]] == [x]
    assert_problem(stack.get("/notices", officer("130922")), 403)
    assert_problem(stack.get("/notices", enterprise(x), params={"uscc": y}), 403)
    assert_problem(stack.get("/notices", enterprise(x, county="130922")), 403)
    assert_problem(stack.get("/notices", officer(), params={"page_size": 0}), 422)
    assert_problem(stack.get("/notices", officer(), params={"uscc": "91130921M00000019Y"}), 422)
    assert_problem(stack.get("/notices"), 401)
    assert stack.get("/campaign", officer()).status_code in (200, 404)  # campaigns still applied


def test_registry_recommendation_and_term_reminder_reach_the_enterprise(env):
    stack = env.stack
    filing = stack.file()
    assert stack.review(filing["id"])["status"] == "forwarded"
    fs.wait_for(lambda: stack.get(f"/filings/{filing['id']}", officer()).json()["status"] == "accepted",
                timeout=20, message="the city accepted the filing")
    uscc = filing["uscc"]

    created = city.post(env.city_base, "/api/v1/recommendations", {
        "uscc": uscc, "incident": "产品质量安全事故", "reason": "首席质量官未履行职责"},
        role="county_officer", county=COUNTY)
    assert created.status_code == 201, created.text
    rec = created.json()

    def inbox(kind):
        return [n for n in env.notices(enterprise(uscc))["items"] if n["type"] == kind]

    fs.wait_for(lambda: inbox("recommendation.issued"), timeout=15, message="recommendation at the county")
    [issued] = inbox("recommendation.issued")
    assert issued["data"]["recommendation"]["id"] == rec["id"]
    assert issued["title"] == "首席质量官撤换建议" and "撤换首席质量官" in issued["message"]
    assert all(n["uscc"] != uscc for n in env.notices(enterprise(new_uscc()))["items"])

    # the enterprise answers at the city; its county hears of it
    answered = city.post(env.city_base, f"/api/v1/recommendations/{rec['id']}/answer",
                         {"text": "已收到，正在研究"}, role="enterprise", uscc=uscc)
    assert answered.status_code == 200, answered.text
    fs.wait_for(lambda: inbox("recommendation.answered"), timeout=15, message="answer at the county")

    # a term reminder from the city's term check (its term ends three years after appointment)
    term_end = clock.today() - timedelta(days=10) + relativedelta(years=3)
    stats = terms.check_terms(env.city_db, as_of=term_end - timedelta(days=30))
    assert stats["reminders"]["30"] >= 1
    fs.wait_for(lambda: inbox("term.expiring"), timeout=15, message="term reminder at the county")
    [reminder] = inbox("term.expiring")
    assert (reminder["data"]["days"], reminder["type_name"]) == (30, "任期届满提醒")
    assert reminder["data"]["term_end"] == term_end.isoformat()
    assert stack.count("notices", "uscc = :u", u=uscc) == 3
    assert issued["data"]["recommendation"]["status_name"] == rules.STATUS_NAMES["pending"]
