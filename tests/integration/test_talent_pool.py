"""The talent pool (art. 15 人才建设) on the real broker, SQLite and PostgreSQL: members
from the register's events and from its existing appointments (the initial fill at
start), city-level experts suspended and reinstated by what happens at the registry,
scopes, masking and the history a draw is verified against."""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import date

import pytest
import requests
from kombu import Connection, Producer
from nameko.containers import ServiceContainer
from sqlalchemy import func, select

from services.talent.pool.models import ExpertAction, ExpertState, PoolBackfill, PoolMember
from services.talent.service import TalentService
from shared.contracts import events
from shared.messaging import topology
from shared.messaging.models import OutboxMessage
from tests.integration.conftest import purge_queues
from tests.integration.oversight_support import establish, post as registry_post
from tests.integration.registry_support import registry_config, token
from tests.support import factories
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration

COUNTY, OTHER = "130921", "130922"
INCIDENT = {"incident": "发生批次性产品质量安全事件", "incident_on": "2026-10-08",
            "reason": "首席质量官未履行质量安全一票否决职责（第十条）"}
PHONE, EMAIL = "13912345678", "zhang.san@example.cn"


def call(base, method, path, role="city_officer", body=None, params=None, **claims):
    return requests.request(method, base + "/api/v1" + path, json=body, params=params, timeout=15,
                            headers={"Authorization": token(role, **claims)})


def wait(check, what="a condition", timeout=20.0):
    return wait_for(check, timeout, what)


def member_of(base, uscc, **filters):
    items = call(base, "GET", "/pool", params={"uscc": uscc, **filters}).json()["items"]
    return items[0] if len(items) == 1 else None


def expert(base, expert_id):
    return call(base, "GET", f"/experts/{expert_id}").json()


def designate(base, member_id, **overrides):
    body = {"member_id": member_id, "expertise": ["C", "13"], "term_start": "2026-06-01",
            "term_end": "2029-05-31", "phone": PHONE, "email": EMAIL, "consent_to_contact": True,
            **overrides}
    return call(base, "POST", "/experts", body=body)


def states(db, expert_id):
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(ExpertState).where(ExpertState.expert_id == expert_id)
                                   .order_by(ExpertState.seq)).all()
        return [json.loads(r.state) for r in rows]


def test_the_register_fills_the_pool_and_suspends_and_reinstates_an_expert(registry, talent, caplog):
    caplog.set_level(logging.DEBUG)
    county, registry_base, _ = registry
    base, db, _ = talent
    filing = establish(county, n=1)
    uscc = filing["enterprise"]["uscc"]
    member = wait(lambda: member_of(base, uscc), what="pool member from the establishment")
    assert (member["source"], member["status"], member["county"]) == ("appointment", "active", COUNTY)
    assert member["id_masked"] == filing["cqo"]["id_masked"] and member["appointment_id"]

    created = designate(base, member["id"])
    assert created.status_code == 201, created.text
    expert_id = created.json()["id"]
    assert created.json()["status"] == "active"
    assert [f["code"] for f in created.json()["expertise"]] == ["C", "13"]

    # contact details: masked in every listing and answer, clear only where consented
    listing = call(base, "GET", "/experts")
    assert listing.status_code == 200 and listing.json()["total"] == 1
    for text in (listing.text, created.text, call(base, "GET", f"/experts/{expert_id}").text):
        assert PHONE not in text and EMAIL not in text
    item = listing.json()["items"][0]
    assert (item["phone_masked"], item["email_masked"]) == ("139****5678", "z***@example.cn")
    contact = call(base, "GET", f"/experts/{expert_id}/contact")
    assert contact.json() == {"id": expert_id, "name": member["name"], "phone": PHONE, "email": EMAIL}

    # a replacement recommendation for the expert's enterprise suspends; withdrawn, reinstated
    rec = registry_post(registry_base, "/api/v1/recommendations", {"uscc": uscc, **INCIDENT},
                        role="county_officer", county=COUNTY)
    assert rec.status_code == 201, rec.text
    suspended = wait(lambda: (e := expert(base, expert_id))["status"] == "suspended" and e,
                         what="suspended for the recommendation")
    assert [(s["code"], s["ref"]) for s in suspended["suspensions"]] == [
        ("replacement_recommended", str(rec.json()["id"]))]
    withdrawn = registry_post(registry_base, f"/api/v1/recommendations/{rec.json()['id']}/withdraw",
                              {"comment": "经核实，建议撤回"}, role="county_officer", county=COUNTY)
    assert withdrawn.status_code == 200, withdrawn.text
    wait(lambda: expert(base, expert_id)["status"] == "active", what="reinstated")

    # the appointment ends (a change filing replaces the CQO): suspended with the reason
    change = county.filing(COUNTY, n=1, kind="change", person=77, effective_on=date(2026, 9, 1),
                           submitted=date(2026, 9, 2), cqo_overrides={"name": "新质量官"})
    county.publish(change)
    assert county.decision_of(change)["outcome"] == "accepted"
    ended = wait(lambda: (e := expert(base, expert_id))["status"] == "suspended" and e,
                     what="suspended when the appointment ended")
    assert [(s["code"], s["ref"], s["since"]) for s in ended["suspensions"]] == [
        ("appointment_ended", str(member["appointment_id"]), "2026-09-01")]
    left = member_of(base, uscc, status="ended")
    assert left["id"] == member["id"] and left["left_on"] == "2026-09-01"
    newcomer = wait(lambda: member_of(base, uscc, status="active"), what="the new CQO")
    assert newcomer["name"] == "新质量官" and newcomer["appointment_id"] > member["appointment_id"]

    # every change left a state for draws, and an action with its reason
    history = states(db, expert_id)
    assert [s["suspended"] for s in history] == [False, True, False, True]
    assert all(s["employer_uscc"] == uscc and s["expertise"] == ["13", "C"] for s in history)
    with db.unit_of_work() as uow:
        actions = uow.session.execute(select(ExpertAction.action, ExpertAction.code, ExpertAction.actor)
                                      .where(ExpertAction.expert_id == expert_id)
                                      .order_by(ExpertAction.id)).all()
    assert [tuple(a) for a in actions] == [
        ("designated", None, "city_officer:user"),
        ("suspended", "replacement_recommended", "register"),
        ("reinstated", "replacement_recommended", "register"),
        ("suspended", "appointment_ended", "register")]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert PHONE not in logged and EMAIL not in logged


def test_a_renewal_keeps_the_expert_and_an_open_recommendation_stands_at_designation(registry, talent):
    county, registry_base, _ = registry
    base, db, _ = talent
    filing = establish(county, n=5)
    uscc = filing["enterprise"]["uscc"]
    member = wait(lambda: member_of(base, uscc), what="pool member")
    rec = registry_post(registry_base, "/api/v1/recommendations", {"uscc": uscc, **INCIDENT})
    assert rec.status_code == 201, rec.text
    wait(lambda: _open_recommendations(db), what="the recommendation at talent")
    created = designate(base, member["id"])
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "suspended"
    assert created.json()["suspensions"][0]["code"] == "replacement_recommended"
    expert_id = created.json()["id"]

    # the same person renewed: the expert follows the new appointment and is not
    # suspended for the old one's end
    renewal = county.filing(COUNTY, n=5, kind="renewal", appointed_on=date(2026, 12, 1),
                            submitted=date(2026, 12, 2))
    county.publish(renewal)
    assert county.decision_of(renewal)["outcome"] == "accepted"
    registry_post(registry_base, f"/api/v1/recommendations/{rec.json()['id']}/close",
                  {"comment": "企业已说明情况"})
    renewed = wait(lambda: member_of(base, uscc, status="active"), what="the renewed member")
    assert renewed["id"] != member["id"]
    now = wait(lambda: (e := expert(base, expert_id))["status"] == "active"
                   and e["member_id"] == renewed["id"] and e, what="expert follows the renewal")
    assert now["suspensions"] == []


def _open_recommendations(db):
    from services.talent.pool.models import PoolRecommendation
    with db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(PoolRecommendation)
                                  .where(PoolRecommendation.status == "open"))


# -- events straight onto cqo.events: duplicates and disorder ---------------------------------

def _publish(amqp_uri, event_type, subject_id, data, *, message_id=None):
    event = events.build(event_type, subject_id, data, source="registry",
                         event_id=f"event:test:{uuid.uuid4().hex}")
    with Connection(amqp_uri) as conn:
        Producer(conn.channel()).publish(
            json.dumps(event, ensure_ascii=False).encode(), exchange=topology.EVENTS,
            routing_key=event_type, content_type="application/json", content_encoding="utf-8",
            message_id=message_id or event["event_id"], delivery_mode=2)
    return event


def _accepted(appointment_id, n=1):
    uscc = factories.uscc_for(OTHER, 900 + n)
    return {"appointment_id": appointment_id, "uscc": uscc, "enterprise_name": "测试企业",
            "county": OTHER, "filing_id": str(uuid.uuid4()), "filing_version": 1,
            "kind": "establishment", "cqo_name": f"质量官{n}", "id_type": "resident_id",
            "id_hmac": f"{n:064x}", "id_masked": "130921********123X",
            "appointed_on": date(2026, 1, 5), "term_end": date(2029, 1, 5)}


def _members(db, appointment_id):
    with db.unit_of_work() as uow:
        return [(m.status, m.left_on, m.name) for m in uow.session.scalars(
            select(PoolMember).where(PoolMember.appointment_id == appointment_id))]


def test_duplicate_and_out_of_order_events_make_one_member(talent, amqp_uri):
    base, db, _ = talent
    data = _accepted(70001, n=1)
    _publish(amqp_uri, "register.appointment.accepted", 70001, data, message_id="dup-1")
    _publish(amqp_uri, "register.appointment.accepted", 70001, data, message_id="dup-1")
    _publish(amqp_uri, "register.appointment.accepted", 70001, data)  # same fact, new message
    wait(lambda: _members(db, 70001), what="member")
    time.sleep(1.0)
    assert _members(db, 70001) == [("active", None, "质量官1")]

    # an "ended" that overtakes its "accepted": the late accepted does not revive it
    late = _accepted(70002, n=2)
    _publish(amqp_uri, "register.appointment.ended", 70002, {
        **{k: late[k] for k in ("appointment_id", "uscc", "county", "cqo_name", "id_hmac", "id_masked")},
        "ended_on": date(2026, 5, 1), "reason": "变更"})
    wait(lambda: _members(db, 70002), what="the ended appointment")
    _publish(amqp_uri, "register.appointment.accepted", 70002, late)
    wait(lambda: call(base, "GET", "/pool", params={"county": OTHER}).json()["total"] == 2)
    time.sleep(0.5)
    assert _members(db, 70002) == [("ended", date(2026, 5, 1), "质量官2")]

    # a recommendation closed before it was issued never suspends anyone
    member = member_of(base, data["uscc"])
    created = designate(base, member["id"], consent_to_contact=False)
    assert created.status_code == 201, created.text
    rec = {"recommendation_id": 80001, "uscc": data["uscc"], "county": OTHER, "appointment_id": 70001,
           "id_hmac": data["id_hmac"]}
    _publish(amqp_uri, "register.recommendation.closed", 80001, {**rec, "status": "withdrawn"})
    time.sleep(0.5)
    _publish(amqp_uri, "register.recommendation.issued", 80001, {
        **rec, "cqo_name": "质量官1", "issuer_role": "city_officer", "reason": "测试",
        "issued_on": date(2026, 6, 1), "respond_by": date(2026, 7, 1)})
    wait(lambda: _count_recs(db) == 1)
    time.sleep(0.5)
    assert expert(base, created.json()["id"])["status"] == "active"
    # without consent the contact details are not given out
    refused = call(base, "GET", f"/experts/{created.json()['id']}/contact")
    assert refused.status_code == 409 and refused.json()["code"] == "EXPERT_NO_CONSENT"


def _count_recs(db):
    from services.talent.pool.models import PoolRecommendation
    with db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(PoolRecommendation))


# -- the officers' side ------------------------------------------------------------------------

def test_nominations_scopes_and_expert_management(talent):
    base, db, _ = talent
    number = factories.resident_id_for(4242, COUNTY)
    body = {"name": "推荐人", "id_type": "resident_id", "id_number": number,
            "uscc": factories.uscc_for(COUNTY, 42), "reason": "质量管理经验丰富"}
    other = call(base, "POST", "/pool/nominations", "county_officer", {**body, "county": OTHER},
                 county=COUNTY)
    assert other.status_code == 403 and other.json()["code"] == "AUTH_FORBIDDEN"
    nominated = call(base, "POST", "/pool/nominations", "county_officer", body, county=COUNTY)
    assert nominated.status_code == 201, nominated.text
    assert number not in nominated.text and nominated.json()["id_masked"].startswith("130921")
    assert nominated.json()["source"] == "nomination" and nominated.json()["county"] == COUNTY
    again = call(base, "POST", "/pool/nominations", "county_officer", body, county=COUNTY)
    assert again.status_code == 409 and again.json()["code"] == "MEMBER_EXISTS"
    bad = call(base, "POST", "/pool/nominations", "county_officer",
               {**body, "id_number": number[:-1] + ("0" if number[-1] != "0" else "1")}, county=COUNTY)
    assert bad.status_code == 422 and number[:-1] not in bad.text
    city_without_county = call(base, "POST", "/pool/nominations", body=body)
    assert city_without_county.status_code == 422
    assert call(base, "POST", "/pool/nominations", "enterprise", body,
                uscc=body["uscc"]).status_code == 403
    with db.unit_of_work() as uow:  # the number is nowhere in the database
        rows = uow.session.execute(select(PoolMember.__table__)).all()
        assert number not in repr(rows)

    # county officers read their own county only; enterprises read no experts
    assert call(base, "GET", "/pool", "county_officer", county=COUNTY).json()["total"] == 1
    assert call(base, "GET", "/pool", "county_officer", county=OTHER).json()["total"] == 0
    assert call(base, "GET", "/pool", "county_officer", params={"county": OTHER},
                county=COUNTY).status_code == 403
    assert call(base, "GET", "/experts", "enterprise", uscc=body["uscc"]).status_code == 403

    member_id = nominated.json()["id"]
    unknown = designate(base, member_id, expertise=["C", "Z9"])
    assert unknown.status_code == 422 and unknown.json()["code"] == "EXPERTISE_UNKNOWN"
    assert designate(base, 999999).json()["code"] == "MEMBER_NOT_FOUND"
    assert designate(base, member_id, term_end="2026-01-01").json()["code"] == "EXPERT_TERM_INVALID"
    assert call(base, "POST", "/experts", "county_officer", {}, county=COUNTY).status_code == 403
    created = designate(base, member_id, expertise=["01"], email=None)
    assert created.status_code == 201, created.text
    expert_id = created.json()["id"]
    assert designate(base, member_id).json()["code"] == "EXPERT_EXISTS"
    assert call(base, "GET", f"/experts/{expert_id}", "county_officer", county=COUNTY).status_code == 200
    assert call(base, "GET", f"/experts/{expert_id}", "county_officer", county=OTHER).status_code == 403
    assert call(base, "GET", "/experts", "county_officer", county=OTHER).json()["total"] == 0

    # manual suspension and reinstatement, with reasons
    s = call(base, "POST", f"/experts/{expert_id}/suspend", body={"reason": "涉嫌违规，暂停核查"})
    assert s.status_code == 200 and s.json()["status"] == "suspended"
    assert s.json()["suspensions"][0]["note"] == "涉嫌违规，暂停核查"
    assert call(base, "POST", f"/experts/{expert_id}/suspend",
                body={"reason": "再次"}).json()["code"] == "EXPERT_ALREADY_SUSPENDED"
    r = call(base, "POST", f"/experts/{expert_id}/reinstate", body={"reason": "核查无问题"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert call(base, "POST", f"/experts/{expert_id}/reinstate",
                body={"reason": "x"}).json()["code"] == "EXPERT_NOT_SUSPENDED"

    # declared conflicts, withdrawn
    conflict_uscc = factories.uscc_for(COUNTY, 77)
    c = call(base, "POST", f"/experts/{expert_id}/conflicts", "county_officer",
             {"uscc": conflict_uscc, "since": "2025-01-01", "note": "曾任该企业顾问"}, county=COUNTY)
    assert c.status_code == 201, c.text
    assert call(base, "POST", f"/experts/{expert_id}/conflicts",
                body={"uscc": conflict_uscc, "since": "2025-01-01"}).json()["code"] == "EXPERT_CONFLICT_EXISTS"
    assert expert(base, expert_id)["conflicts"][0]["uscc"] == conflict_uscc
    w = call(base, "POST", f"/experts/{expert_id}/conflicts/{c.json()['id']}/withdraw", body={})
    assert w.status_code == 200 and w.json()["withdrawn_at"]
    assert call(base, "POST", f"/experts/{expert_id}/conflicts/{c.json()['id']}/withdraw",
                body={}).status_code == 409
    consent = call(base, "POST", f"/experts/{expert_id}/consent", body={"consent_to_contact": False})
    assert consent.json()["consent_to_contact"] is False
    assert call(base, "GET", f"/experts/{expert_id}/contact").status_code == 409

    history = states(db, expert_id)
    assert [(s["suspended"], s["conflicts"]) for s in history] == [
        (False, []), (True, []), (False, []), (False, [conflict_uscc]), (False, []), (False, [])]
    # the term and the consent as of each change: a draw is eligible-checked against them
    assert [s["consent"] for s in history] == [True] * 5 + [False]
    assert {(s["term_start"], s["term_end"]) for s in history} == {
        (created.json()["term_start"], created.json()["term_end"])}
    listing = call(base, "GET", "/expertise", "enterprise", uscc=body["uscc"])
    assert listing.status_code == 200 and len(listing.json()["items"]) == 117


# -- the initial fill, once at start ----------------------------------------------------------

def test_the_pool_is_filled_at_start_from_the_existing_appointments(
        registry, talent_db_config, amqp_uri, tmp_path, free_port):
    county, registry_base, registry_db = registry
    first = establish(county, n=11)
    second = establish(county, n=12)
    gone = establish(county, n=13)
    end = county.filing(COUNTY, n=13, kind="end", effective_on=date(2026, 4, 1),
                        submitted=date(2026, 4, 2))
    county.publish(end)
    assert county.decision_of(end)["outcome"] == "accepted"

    def relayed():
        with registry_db.unit_of_work() as uow:
            return uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.routing_key.like("register.appointment.%"))) == 0
    wait(relayed, what="registry outbox drained")
    # the events went before the talent service existed: only the fill can find them
    purge_queues(amqp_uri, [q.name for q in topology.event_queues()])

    port = free_port()
    config = {**registry_config(amqp_uri, talent_db_config, tmp_path / "keys", port), "RPC_TIMEOUT_S": 10}
    container = ServiceContainer(TalentService, config)
    container.start()
    try:
        base = f"http://127.0.0.1:{port}"
        (db,) = [d.database for d in container.dependencies if d.attr_name == "db"]
        done = wait(lambda: _backfill(db), timeout=30, what="initial fill")
        assert done == (2, True)
        items = call(base, "GET", "/pool").json()["items"]
        assert sorted(i["uscc"] for i in items) == sorted(
            f["enterprise"]["uscc"] for f in (first, second))
        assert gone["enterprise"]["uscc"] not in {i["uscc"] for i in items}
        assert all(i["source"] == "appointment" and i["status"] == "active" for i in items)
    finally:
        container.stop()

    # a second start does not fill again
    container = ServiceContainer(TalentService, config)
    container.start()
    try:
        time.sleep(1.0)
        assert _backfill(db) == (2, True)
    finally:
        container.stop()


def _backfill(db):
    with db.unit_of_work() as uow:
        row = uow.session.get(PoolBackfill, "appointments")
        return row is not None and row.completed_at is not None and (row.received, True)


def test_the_registry_answers_current_appointments_without_id_numbers(registry):
    from nameko.standalone.rpc import ClusterRpcProxy

    county, _, _ = registry
    filing = establish(county, n=21)
    with ClusterRpcProxy({"AMQP_URI": county.amqp_uri}, timeout=20) as cluster:
        page = cluster.registry.current_appointments(after_id=0, limit=1)
        rest = cluster.registry.current_appointments(after_id=page["next_after_id"], limit=1)
    [item] = page["items"]
    assert rest == {"items": [], "next_after_id": None}
    _, data = events.load({"event_id": "x", "type": "register.appointment.accepted",
                           "source": "registry", "occurred_at": "2026-01-01T00:00:00+00:00",
                           "subject": {"kind": "appointment", "id": "1"}, "data": item})
    assert (data["uscc"], data["id_hmac"], data["kind"]) == (
        filing["enterprise"]["uscc"], filing["cqo"]["id_hmac"], "establishment")
    events.refuse_id_numbers(item)
