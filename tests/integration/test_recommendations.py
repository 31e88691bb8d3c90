"""Replacement recommendations (art. 10) at the registry, on the real broker, SQLite and
PostgreSQL: issue, scope, answer, withdraw, close, 未响应 as of a day, settled by a change."""
import json
from datetime import date, timedelta

import pytest
import requests
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from services.registry.oversight import overdue
from shared import clock
from services.registry.models import AuditEntry, Recommendation
from tests.support.factories import uscc_for
from tests.integration.oversight_support import Notices, establish, get, post
from tests.integration.registry_support import token

pytestmark = pytest.mark.integration

PATH = "/api/v1/recommendations"
INCIDENT = {"incident": "2026年10月发生批次性产品质量安全事件，造成不良社会影响",
            "incident_on": "2026-10-08", "reason": "首席质量官未履行质量安全一票否决职责（第十条）"}


@pytest.fixture
def notices(amqp_uri):
    n = Notices(amqp_uri)
    yield n
    n.close()


def officer(county="130921"):
    return {"role": "county_officer", "county": county}


def firm(uscc):
    return {"role": "enterprise", "uscc": uscc}


def issue(base, uscc, who=None, **extra):
    return post(base, PATH, {"uscc": uscc, **INCIDENT, **extra}, **(who or officer()))


def test_lifecycle_scope_and_notices(registry, notices):
    county, base, db = registry
    a = establish(county, n=1)["enterprise"]["uscc"]
    other = establish(county, "130922", n=1)["enterprise"]["uscc"]
    today = clock.today()

    created = issue(base, a)
    assert created.status_code == 201, created.text
    rec = created.json()
    assert created.headers["Location"] == f"{PATH}/{rec['id']}"
    assert (rec["status"], rec["status_name"], rec["cqo_name"], rec["issuer_name"]) == (
        "pending", "待答复", "质量官1", "沧县市场监督管理局")
    assert (rec["issued_on"], rec["respond_by"]) == (
        today.isoformat(), (today + relativedelta(months=1)).isoformat())
    assert (rec["issuer_county"], rec["county"], rec["incident_on"]) == ("130921", "130921", "2026-10-08")
    assert [e["action_name"] for e in rec["events"]] == ["提出撤换建议"]

    again = issue(base, a, who={"role": "city_officer"})
    assert again.status_code == 409 and again.json()["code"] == "RECOMMENDATION_OPEN"

    # another county's officer neither issues for, nor sees, this county's enterprise
    foreign = issue(base, a, who=officer("130922"))
    assert foreign.status_code == 404 and foreign.json()["code"] == "ENTERPRISE_NOT_FOUND"
    assert get(base, f"{PATH}/{rec['id']}", **officer("130922")).status_code == 404
    assert get(base, PATH, **officer("130922")).json()["total"] == 0
    assert get(base, PATH, params={"county": "130921"}, **officer("130922")).status_code == 403
    assert post(base, f"{PATH}/{rec['id']}/withdraw", {"comment": "误发"}, **officer("130922")).status_code == 404
    # an enterprise answers only its own
    for path in (f"{PATH}/{rec['id']}", f"{PATH}/{rec['id']}/answer"):
        resp = (get(base, path, **firm(other)) if path.endswith(str(rec["id"]))
                else post(base, path, {"text": "不是我们的"}, **firm(other)))
        assert resp.status_code == 404 and resp.json()["code"] == "RECOMMENDATION_NOT_FOUND"
    assert get(base, PATH, **firm(other)).json()["total"] == 0
    assert get(base, PATH, params={"uscc": a}, **firm(other)).status_code == 403
    assert post(base, PATH, {"uscc": a, **INCIDENT}, **firm(a)).status_code == 403

    mine = get(base, PATH, **firm(a)).json()
    assert [i["id"] for i in mine["items"]] == [rec["id"]] and "events" not in mine["items"][0]
    answered = post(base, f"{PATH}/{rec['id']}/answer", {"text": "已开展内部调查，拟于下月调整首席质量官"}, **firm(a))
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["status"], body["status_name"], body["answer"]) == (
        "answered", "已答复", "已开展内部调查，拟于下月调整首席质量官")
    more = post(base, f"{PATH}/{rec['id']}/answer", {"text": "补充：已召开董事会"}, **firm(a)).json()
    assert more["answer"] == "补充：已召开董事会" and more["answered_at"] == body["answered_at"]
    assert [e["action"] for e in more["events"]] == ["issued", "answered", "answered"]
    # answered: never 未响应, whatever the day
    later = (today + relativedelta(months=3)).isoformat()
    assert get(base, f"{PATH}/{rec['id']}", **officer()).json()["status"] == "answered"
    assert get(base, PATH, params={"status": "unanswered", "as_of": later}).json()["total"] == 0

    # the city's own recommendation: the county cannot withdraw it, the city can
    b = establish(county, n=2)["enterprise"]["uscc"]
    city = issue(base, b, who={"role": "city_officer"}).json()
    assert city["issuer_name"] == "市市场监督管理局" and city["issuer_county"] is None
    denied = post(base, f"{PATH}/{city['id']}/withdraw", {"comment": "撤回"}, **officer())
    assert denied.status_code == 403 and denied.json()["code"] == "RECOMMENDATION_NOT_ISSUER"
    withdrawn = post(base, f"{PATH}/{city['id']}/withdraw", {"comment": "经核实事件与该企业无关"})
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status_name"], withdrawn.json()["conclusion"]) == ("已撤回", "经核实事件与该企业无关")
    late = post(base, f"{PATH}/{city['id']}/answer", {"text": "收到"}, **firm(b))
    assert late.status_code == 409 and late.json()["code"] == "RECOMMENDATION_CONCLUDED"
    assert post(base, f"{PATH}/{city['id']}/close", {"comment": "x"}).status_code == 409

    # the issuing county closes its own
    closed = post(base, f"{PATH}/{rec['id']}/close", {"comment": "企业答复已说明整改情况"}, **officer())
    assert closed.status_code == 200 and closed.json()["status_name"] == "已关闭"
    assert get(base, PATH, params={"status": "closed"}, **officer()).json()["total"] == 1

    expected = {f"recommendation:{rec['id']}:issued", f"recommendation:{city['id']}:issued",
                f"recommendation:{city['id']}:withdrawn", f"recommendation:{rec['id']}:closed"}
    seen = notices.wait(lambda ns: expected <= {n["message_id"] for n in ns}
                        and len([n for n in ns if n["body"]["type"] == "recommendation.answered"]) == 2)
    issued = next(n for n in seen if n["message_id"] == f"recommendation:{rec['id']}:issued")
    assert issued["routing_key"] == "notice.130921"
    assert (issued["body"]["type"], issued["body"]["uscc"], issued["body"]["county"]) == (
        "recommendation.issued", a, "130921")
    assert issued["body"]["recommendation"]["incident"] == INCIDENT["incident"]
    assert "撤换首席质量官质量官1" in issued["body"]["message"]
    assert {n["body"]["type"] for n in seen} == {
        "recommendation.issued", "recommendation.answered", "recommendation.withdrawn",
        "recommendation.closed"}
    with db.unit_of_work() as uow:
        actions = uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.uscc == a, AuditEntry.action.like("recommendation.%")).order_by(AuditEntry.id)).all()
    assert actions == ["recommendation.issued", "recommendation.answered", "recommendation.answered",
                       "recommendation.closed"]


def test_only_the_issuer_concludes_an_admin_overrides_audited(registry, notices):
    """Art. 10 (docs/architecture.md): the issuer withdraws or closes its recommendation; the
    city does not close a county's (nor a county the city's); an admin may, as the
    operator's override, recorded as one in the audit trail and the notice."""
    county, base, db = registry
    uscc = establish(county, n=6)["enterprise"]["uscc"]
    rec = issue(base, uscc).json()  # the county's (130921)
    for action in ("withdraw", "close"):
        denied = post(base, f"{PATH}/{rec['id']}/{action}", {"comment": "市局认为可以办结"},
                      role="city_officer")
        assert denied.status_code == 403, denied.text
        problem = denied.json()
        assert denied.headers["Content-Type"].startswith("application/problem+json")
        assert problem["code"] == "RECOMMENDATION_NOT_ISSUER"
        assert "沧县市场监督管理局" in problem["detail"]
    # nothing changed, nothing announced, nothing audited
    assert get(base, f"{PATH}/{rec['id']}").json()["status"] == "pending"
    with db.unit_of_work() as uow:
        assert uow.session.scalars(select(AuditEntry.action).where(
            AuditEntry.uscc == uscc, AuditEntry.action.like("recommendation.%"))).all() == [
            "recommendation.issued"]

    overridden = post(base, f"{PATH}/{rec['id']}/close", {"comment": "运维代为办结"}, role="admin")
    assert overridden.status_code == 200, overridden.text
    assert (overridden.json()["status"], overridden.json()["conclusion"]) == ("closed", "运维代为办结")
    with db.unit_of_work() as uow:
        detail = uow.session.scalars(select(AuditEntry.detail).where(
            AuditEntry.uscc == uscc, AuditEntry.action == "recommendation.closed")).one()
    assert json.loads(detail) == {
        "recommendation_id": rec["id"], "comment": "运维代为办结", "override": True,
        "issuer_role": "county_officer", "issuer_county": "130921"}
    seen = notices.wait(lambda ns: f"recommendation:{rec['id']}:closed" in {n["message_id"] for n in ns})
    closed = next(n for n in seen if n["message_id"] == f"recommendation:{rec['id']}:closed")
    assert "系统管理员（代沧县市场监督管理局）关闭" in closed["body"]["message"]


def test_unanswered_after_the_response_period_as_of_a_day(registry):
    county, base, db = registry
    uscc = establish(county, n=3)["enterprise"]["uscc"]
    rec = issue(base, uscc).json()
    respond_by = date.fromisoformat(rec["respond_by"])
    on_time = get(base, f"{PATH}", params={"as_of": respond_by.isoformat()}, **officer()).json()
    assert [(i["status"], i["status_name"]) for i in on_time["items"]] == [("pending", "待答复")]
    after = (respond_by + timedelta(days=1)).isoformat()
    overdue_list = get(base, PATH, params={"status": "unanswered", "as_of": after}, **officer()).json()
    assert [(i["id"], i["status_name"], i["days_overdue"]) for i in overdue_list["items"]] == [
        (rec["id"], "未响应", 1)]
    assert get(base, PATH, params={"status": "pending", "as_of": after}).json()["total"] == 0
    assert get(base, PATH, params={"status": "open", "as_of": after}).json()["total"] == 1
    with db.unit_of_work() as uow:
        row = {r["county"]: r for r in overdue.per_county(uow, respond_by + timedelta(days=1))}["130921"]
        assert (row["recommendations_open"], row["recommendations_unanswered"]) == (1, 1)
        row = {r["county"]: r for r in overdue.per_county(uow, respond_by)}["130921"]
        assert (row["recommendations_open"], row["recommendations_unanswered"]) == (1, 0)
        # the stored status stays pending: 未响应 is not a flag
        assert uow.session.get(Recommendation, rec["id"]).status == "pending"
    # an answer after the period still answers it
    answered = post(base, f"{PATH}/{rec['id']}/answer", {"text": "迟复为歉"}, **firm(uscc)).json()
    assert answered["status_name"] == "已答复"
    assert get(base, PATH, params={"status": "unanswered", "as_of": after}).json()["total"] == 0


def test_an_accepted_change_settles_it_and_an_end_of_the_post_closes_it(registry, notices):
    county, base, db = registry
    first = establish(county, n=4)
    uscc = first["enterprise"]["uscc"]
    rec = issue(base, uscc).json()
    post(base, f"{PATH}/{rec['id']}/answer", {"text": "将按建议更换"}, **firm(uscc))
    # a contact update is no change of person: the recommendation stays open
    update = county.filing("130921", n=4, kind="update", person=4, cqo_overrides={"phone": "13900000000"})
    county.publish(update)
    assert county.decision_of(update)["outcome"] == "accepted"
    assert get(base, f"{PATH}/{rec['id']}").json()["status"] == "answered"

    change = county.filing("130921", n=4, kind="change", person=400, effective_on=date(2026, 11, 1),
                           submitted=date(2026, 11, 10), cqo_overrides={"name": "新质量官"})
    county.publish(change)
    assert county.decision_of(change)["outcome"] == "accepted"
    settled = get(base, f"{PATH}/{rec['id']}", **firm(uscc)).json()
    assert (settled["status"], settled["status_name"], settled["closed_by_filing_id"]) == (
        "replaced", "已更换", change["filing_id"])
    assert settled["events"][-1]["action_name"] == "企业已办理变更备案"
    assert settled["concluded_by"] == "registry.intake:130921"
    # the new CQO can be the subject of a new recommendation
    new = issue(base, uscc).json()
    assert new["cqo_name"] == "新质量官"
    end = county.filing("130921", n=4, kind="end", person=400, effective_on=date(2026, 11, 20),
                        submitted=date(2026, 11, 21))
    county.publish(end)
    assert county.decision_of(end)["outcome"] == "accepted"
    ended = get(base, f"{PATH}/{new['id']}").json()
    assert (ended["status_name"], ended["closed_by_filing_id"]) == ("已关闭", end["filing_id"])
    none_left = issue(base, uscc)
    assert none_left.status_code == 409 and none_left.json()["code"] == "NO_CURRENT_CQO"

    seen = notices.wait(lambda ns: {f"recommendation:{rec['id']}:replaced",
                                    f"recommendation:{new['id']}:post_ended"} <= {n["message_id"] for n in ns})
    replaced = next(n for n in seen if n["message_id"] == f"recommendation:{rec['id']}:replaced")
    assert (replaced["routing_key"], replaced["body"]["type"], replaced["body"]["filing_id"]) == (
        "notice.130921", "recommendation.closed", change["filing_id"])
    assert replaced["body"]["recommendation"]["status_name"] == "已更换"
    with db.unit_of_work() as uow:
        assert [r.status for r in uow.session.scalars(
            select(Recommendation).order_by(Recommendation.id))] == ["replaced", "closed"]


def test_input_is_checked(registry):
    county, base, _ = registry
    uscc = establish(county, n=5)["enterprise"]["uscc"]
    missing = post(base, PATH, {"uscc": uscc}, **officer())
    assert missing.status_code == 422
    assert set(missing.json()["errors"]) == {"incident", "reason"}
    assert missing.json()["errors"]["incident"] == ["必填字段缺失"]
    blank = issue(base, uscc, reason="   ")
    assert blank.status_code == 422 and blank.json()["errors"]["reason"] == ["建议理由不能为空"]
    future = issue(base, uscc, incident_on=(clock.today() + timedelta(days=3)).isoformat())
    assert future.status_code == 422 and future.json()["code"] == "INCIDENT_DATE_FUTURE"
    bad = issue(base, "91130921M00000019Y")
    assert bad.status_code == 422 and bad.json()["code"] == "USCC_CHECK"
    unknown = issue(base, uscc_for("130921", 999))
    assert unknown.status_code == 404 and unknown.json()["code"] == "ENTERPRISE_NOT_FOUND"
    assert get(base, f"{PATH}/999999").json()["code"] == "RECOMMENDATION_NOT_FOUND"
    assert get(base, PATH, params={"status": "lost"}).status_code == 422
    assert post(base, f"{PATH}/1/answer", {"text": ""}, **firm(uscc)).status_code == 422
    rec = issue(base, uscc).json()
    empty = post(base, f"{PATH}/{rec['id']}/withdraw", {}, **officer())
    assert empty.status_code == 422 and empty.json()["errors"]["comment"] == ["必填字段缺失"]
    assert post(base, f"{PATH}/{rec['id']}/withdraw", {"comment": "x"}, **firm(uscc)).status_code == 403
    problem = requests.post(base + PATH, data=b"{oops", timeout=10, headers={
        "Authorization": token("county_officer", county="130921"), "Content-Type": "application/json"})
    assert problem.status_code == 400 and problem.json()["code"] == "BAD_JSON"
    assert problem.headers["Content-Type"].startswith("application/problem+json")
