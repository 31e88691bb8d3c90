"""County filing service on the broker: forwarding, batch submission, campaign notices,
decisions, dead letters, and accepting work while the broker is unreachable."""
import json
import time
from datetime import timedelta

import pytest
from shared.clock import today
from services.filing.wire import batch_message_check
from shared.contracts import FilingMessageSchema
from shared.keys import Keys
from shared.personal_data import id_hmac, unseal
from tests.support.tcp_proxy import TcpProxy
from tests.integration import filing_support as fs
from tests.integration.filing_support import (COUNTY, assert_problem, enterprise, filing_payload,
                                              new_uscc, officer)

pytestmark = pytest.mark.integration

CAMPAIGN_COUNTY = "130922"  # 青县: a second county on the same broker
OUTAGE_COUNTY = "130923"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, broker, run_id, tmp_path_factory):
    """A vhost and a database factory per backend; `env.stack` is the 130921 service."""
    tmp = tmp_path_factory.mktemp(f"filing_msg_{request.param}")
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    vhost_name = f"cqo_test_{run_id}_filing_msg_{request.param}"
    with fs.vhost(broker, vhost_name) as uri, \
            fs.database_config(request.param, tmp, pg, f"msg_{run_id}") as db_config, \
            fs.FilingStack(uri, db_config, tmp / "keys") as stack:
        sink = fs.Probe(uri, "cqo.filings", f"filing.{COUNTY}.*")  # stands in for the city
        yield Env(request.param, uri, vhost_name, broker, tmp, pg, stack, run_id)
        sink.close()


class Env:
    def __init__(self, backend, uri, vhost, broker, tmp, pg, stack, run_id):
        self.backend, self.uri, self.vhost, self.broker = backend, uri, vhost, broker
        self.tmp, self.pg, self.stack, self.run_id = tmp, pg, stack, run_id

    def database(self, tag):
        return fs.database_config(self.backend, self.tmp, self.pg, f"{tag}_{self.run_id}")

    def send_decisions(self, decisions, county=COUNTY, message_id=None) -> str:
        return fs.publish(self.uri, "cqo.decisions", f"decision.{county}",
                          {"county": county, "decisions": decisions}, message_id=message_id)

    def processed(self, message_id, county=COUNTY, kind="decisions") -> bool:
        return self.stack.count("inbox_messages", "consumer = :c AND message_id = :m",
                                c=f"filing_{county}.{kind}", m=message_id) == 1

    def settle(self, queue) -> None:
        """Everything published to `queue` so far was delivered; a moment for the last
        handlers to finish (copies that are skipped leave no trace to wait for)."""
        fs.wait_for(lambda: fs.ready_messages(self.uri, queue) == 0, message=f"{queue} drained")
        time.sleep(0.3)


def forwarded(stack, uscc=None, **overrides):
    filing = stack.file(uscc, **overrides)
    assert stack.review(filing["id"])["status"] == "forwarded"
    return stack.get(f"/filings/{filing['id']}", officer(stack.county)).json()


def test_proactive_filing_is_forwarded_when_approved(env):
    stack = env.stack
    probe = fs.Probe(env.uri, "cqo.filings", f"filing.{COUNTY}.*")
    try:
        body = filing_payload(new_uscc(), kind="change", cqo__training_certificate=None)
        number = body["cqo"]["id_number"]
        resp = stack.post("/filings", body, enterprise(body["enterprise"]["uscc"]))
        assert resp.status_code == 201, resp.text
        filing = resp.json()
        assert stack.count("outbox_messages") == stack.count("outbox_messages", "sent_at IS NOT NULL")
        before = stack.count("outbox_messages")
        stack.review(filing["id"])
        assert stack.count("outbox_messages") == before + 1  # written with the approval

        message_id = f"filing:{filing['id']}:v1"
        [message] = [m for m in probe.collect(
            lambda ms: any(m.properties.get("message_id") == message_id for m in ms))
            if m.properties.get("message_id") == message_id]
        assert message.delivery_info["routing_key"] == f"filing.{COUNTY}.change"
        assert message.content_type == "application/json"
        assert number not in fs.body_text(message)
        wire = FilingMessageSchema().load(json.loads(fs.body_text(message)))
        assert (wire["kind"], wire["channel"], wire["campaign_year"]) == ("change", "proactive", None)
        assert wire["submitted_to_county_on"] == today() == wire["approved_on"]
        assert wire["effective_on"] == today() - timedelta(days=10)
        assert wire["approved_by"] == f"county_officer:{COUNTY}"
        assert {f["code"] for f in wire["findings"]} == {"QUAL_TRAINING", "FILING_NO_PRIOR"}
        keys = Keys(stack.config)
        assert wire["cqo"]["id_hmac"] == id_hmac(keys.get("ID_HMAC_KEY"), "resident_id", number)
        assert unseal(keys.get("CITY_PRIVATE_KEY"), wire["cqo"]["id_sealed"]) == number
        fs.wait_for(lambda: stack.backlog() == 0, message="outbox drained")
    finally:
        probe.close()


def test_decisions_are_applied_once_and_shown(env):
    stack = env.stack
    a, b = forwarded(stack), forwarded(stack)
    first = env.send_decisions([fs.decision(a, "waiting", reasons=[
        {"code": "WAITING_PREDECESSOR", "message": "等待前序备案"}])])
    fs.wait_for(lambda: env.processed(first), message="waiting applied")
    assert stack.get(f"/filings/{a['id']}", officer()).json()["status"] == "waiting"

    final = fs.decision(a, "accepted", late=True, days_late=3, deadline=today().isoformat())
    refused = fs.decision(b, "rejected", reasons=[{"code": "QUAL_YEARS", "message": "年限不足"}])
    second = env.send_decisions([final, refused])
    env.send_decisions([final, refused], message_id=second)      # the same message again
    third = env.send_decisions([final, refused])                 # same decisions, new message id
    fs.wait_for(lambda: env.processed(second) and env.processed(third), message="decisions")
    env.settle(f"filing.{COUNTY}.decisions")

    detail = stack.get(f"/filings/{a['id']}", enterprise(a["uscc"])).json()
    assert detail["status"] == "accepted" and detail["status_name"] == "备案通过"
    assert detail["decision"]["outcome"] == "accepted" and detail["decision"]["outcome_name"] == "备案通过"
    assert (detail["late"], detail["days_late"], detail["decision"]["deadline"]) == (
        True, 3, today().isoformat())
    assert [d["outcome"] for d in detail["decisions"]] == ["waiting", "accepted"]
    assert stack.count("filing_decisions", "filing_id = :f", f=a["id"]) == 2
    rejected = stack.get(f"/filings/{b['id']}", enterprise(b["uscc"])).json()
    assert rejected["status"] == "rejected"
    assert rejected["decision"]["reasons"] == [{"code": "QUAL_YEARS", "message": "年限不足"}]

    # a late "waiting" changes nothing; the refused filing is corrected as version 2 and
    # a stale copy of the version-1 refusal does not touch it
    stale = env.send_decisions([fs.decision(a, "waiting"), refused])
    fs.wait_for(lambda: env.processed(stale), message="stale decisions")
    assert stack.get(f"/filings/{a['id']}", officer()).json()["status"] == "accepted"
    resp = stack.put(f"/filings/{b['id']}", filing_payload(b["uscc"]), enterprise(b["uscc"]))
    assert resp.status_code == 200 and resp.json()["version"] == 2
    older = env.send_decisions([fs.decision(b, "accepted", version=1)])
    fs.wait_for(lambda: env.processed(older), message="older version decision")
    detail = stack.get(f"/filings/{b['id']}", officer()).json()
    assert (detail["status"], detail["decision"]) == ("submitted", None)
    assert [(d["version"], d["outcome"], d["applied"]) for d in detail["decisions"]] == [
        (1, "rejected", True), (1, "accepted", False)]


def test_concurrent_copies_of_a_decision_apply_once(env):
    stack = env.stack
    filing = forwarded(stack)
    copies = [env.send_decisions([fs.decision(filing, "accepted")]) for _ in range(6)]
    fs.wait_for(lambda: all(env.processed(m) for m in copies), message="all copies")
    assert stack.count("filing_decisions", "filing_id = :f", f=filing["id"]) == 1
    assert stack.get(f"/filings/{filing['id']}", officer()).json()["status"] == "accepted"


def test_malformed_messages_are_dead_lettered_and_the_consumer_goes_on(env):
    stack = env.stack
    probe = fs.Probe(env.uri, "cqo.dead", "", type_="fanout")
    try:
        filing = forwarded(stack)
        bad = [
            fs.publish(env.uri, "cqo.decisions", f"decision.{COUNTY}", None, raw=b"{oops"),
            env.send_decisions([{"filing_id": "nope"}]),
            env.send_decisions([fs.decision(filing, "accepted", county="130922")]),
            # an unknown but well-formed type is kept (test_filing_notices.py); this is no notice
            fs.publish(env.uri, "cqo.notices", f"notice.{COUNTY}", {"type": "Weather report!"}),
        ]
        good = env.send_decisions([fs.decision(filing, "accepted")])
        fs.wait_for(lambda: env.processed(good), message="valid decision after poison")
        dead = probe.collect(lambda ms: {m.properties.get("message_id") for m in ms} >= set(bad))
        codes = {m.properties["message_id"]: m.headers["x-error-code"] for m in dead}
        assert [codes[m] for m in bad] == ["MALFORMED_MESSAGE", "VALIDATION_FAILED",
                                           "DECISION_WRONG_COUNTY", "NOTICE_INVALID"]
        assert all(m.headers.get("x-error-reason") for m in dead)
        assert stack.count("dead_letters", "message_id IN (:a, :b, :c, :d)",
                           a=bad[0], b=bad[1], c=bad[2], d=bad[3]) == 4
        assert stack.get(f"/filings/{filing['id']}", officer()).json()["status"] == "accepted"
    finally:
        probe.close()


def test_campaign_notices_and_batch_submission(env):
    """A second county on the same broker: notices, campaign channel, chunked batches."""
    county = CAMPAIGN_COUNTY
    with env.database("campaign") as db_config, \
            fs.FilingStack(env.uri, db_config, env.tmp / "keys", county=county,
                           extra={"BATCH_CHUNK_SIZE": 3}) as stack:
        probe = fs.Probe(env.uri, "cqo.filings", f"filing.{county}.*")
        try:
            _campaign_round(env, stack, probe)
        finally:
            probe.close()


def _campaign_round(env, stack, probe):
    county, token = stack.county, officer(stack.county)
    assert_problem(stack.get("/campaign", token), 404)
    opened = {"type": "campaign.opened", "campaign": {  # as services/registry/campaigns/lifecycle.py sends it
        "year": 2026, "notice_number": "沧市监〔2026〕8号", "title": "2026年度首席质量官集中备案",
        "notice_text": "各县（市、区）市场监管局：……", "status": "open", "opened_by": "city_officer:x",
        "created_at": "2026-03-01T08:00:00+00:00", "closed_at": None,
        "opens_on": (today() - timedelta(days=1)).isoformat(),
        "closes_on": (today() + timedelta(days=30)).isoformat()}}
    notice = fs.publish(env.uri, "cqo.notices", "notice.all", opened)  # city-wide notice
    fs.publish(env.uri, "cqo.notices", "notice.all", opened, message_id=notice)  # redelivered
    fs.wait_for(lambda: stack.get("/campaign", token).status_code == 200, message="campaign open")
    campaign = stack.get("/campaign", enterprise(new_uscc(county))).json()
    assert (campaign["year"], campaign["notice_number"], campaign["status"], campaign["text"]) == (
        2026, "沧市监〔2026〕8号", "open", "各县（市、区）市场监管局：……")

    filings = [stack.file(new_uscc(county)) for _ in range(5)]
    assert {(f["channel"], f["campaign_year"], f["channel_name"]) for f in filings} == {
        ("campaign", 2026, "集中报送")}
    outbox = stack.count("outbox_messages")
    for f in filings[:4]:
        assert stack.review(f["id"])["status"] == "approved"  # waits for the batch
    assert stack.count("outbox_messages") == outbox

    # one filing not approved: the listed batch is refused as a whole
    listed = [f["id"] for f in filings]
    before = stack.counts()
    problem = assert_problem(stack.post("/batches", {"filing_ids": listed}, token), 409,
                             "BATCH_NOT_ALLOWED")
    assert list(problem["errors"]) == ["filing_ids.4"]
    assert_problem(stack.post("/batches", {}, enterprise(filings[0]["uscc"])), 403)
    assert_problem(stack.post("/batches", {}, officer(COUNTY)), 403)
    assert stack.counts() == before

    resp = stack.post("/batches", None, token)  # no body: every approved campaign filing
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert (batch["count"], batch["chunks"], batch["chunk_size"], batch["campaign_years"]) == (
        4, 2, 3, [2026])
    messages = probe.collect(lambda ms: len(ms) >= 2)
    assert sorted(m.properties["message_id"] for m in messages) == [
        f"batch:{batch['batch_id']}:1", f"batch:{batch['batch_id']}:2"]
    bodies = [json.loads(fs.body_text(m)) for m in messages]
    for m, body in zip(messages, bodies):
        assert m.delivery_info["routing_key"] == f"filing.{county}.batch"
        batch_message_check(body)
        assert body["chunks"] == 2 and body["county"] == county
    sent = sorted(f["filing_id"] for body in bodies for f in body["filings"])
    assert sent == sorted(listed[:4])
    # each filing's trace names the chunk that carried it, written and then published
    for m, body in zip(messages, bodies):
        for f in body["filings"]:
            def carried():
                hops = stack.get(f"/filings/{f['filing_id']}/trace", token).json()["hops"]
                return [(h["hop"], h["message_id"]) for h in hops if h["message_id"]]
            chunk = m.properties["message_id"]
            fs.wait_for(lambda: carried() == [("outbox_written", chunk), ("published", chunk)],
                        message=lambda: f"trace of {f['filing_id']}: {carried()}")
    assert all(f["channel"] == "campaign" and f["campaign_year"] == 2026
               for body in bodies for f in body["filings"])
    listing = stack.get("/filings", token, params={"batch_id": batch["batch_id"]}).json()
    assert listing["total"] == 4 and {f["status"] for f in listing["items"]} == {"forwarded"}
    assert stack.get(f"/batches/{batch['batch_id']}", token).json()["count"] == 4
    assert_problem(stack.post("/batches", {}, token), 422, "BATCH_EMPTY")

    # decisions for this county reach this county only
    decision = env.send_decisions([fs.decision(filings[0], county=county)], county=county)
    fs.wait_for(lambda: stack.count("inbox_messages", "message_id = :m", m=decision) == 1,
                message="second county's decision")
    assert not env.processed(decision)  # the 130921 service never saw it
    assert stack.get(f"/filings/{filings[0]['id']}", token).json()["status"] == "accepted"

    closed = fs.publish(env.uri, "cqo.notices", f"notice.{county}",
                        {"type": "campaign.closed", "campaign": {"year": 2026}})
    fs.wait_for(lambda: stack.get("/campaign", token).status_code == 404, message="closed")
    late_open = fs.publish(env.uri, "cqo.notices", "notice.all", opened)  # out of order
    fs.wait_for(lambda: stack.count("inbox_messages", "message_id = :m", m=late_open) == 1,
                message="late opened notice")
    assert stack.get("/campaign", token).status_code == 404  # closing is final
    assert stack.file(new_uscc(county))["channel"] == "proactive"
    assert closed


def test_keeps_accepting_while_the_broker_is_unreachable(env):
    port = int(env.uri.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    county = OUTAGE_COUNTY
    probe = fs.Probe(env.uri, "cqo.filings", f"filing.{county}.*")  # straight to the broker
    with TcpProxy("127.0.0.1", port) as proxy, env.database("outage") as db_config:
        uri = env.uri.replace(f":{port}/", f":{proxy.port}/")
        with fs.FilingStack(uri, db_config, env.tmp / "keys", county=county) as stack:
            try:
                proxy.cut(pause=True)  # the broker is gone for the service
                ids = []
                for _ in range(3):
                    ids.append(forwarded(stack)["id"])
                assert stack.backlog() == 3
                time.sleep(1.0)
                assert stack.backlog() == 3  # held, not lost
                health = stack.get("/health").json()
                assert health["outbox_backlog"] == 3 and health["outbox_oldest_pending_s"] > 0
                assert probe.get_all() == []
                proxy.resume()
                fs.wait_for(lambda: stack.backlog() == 0, timeout=20, message="backlog drained")
                got = probe.collect(lambda ms: len(ms) >= 3)
                assert sorted(m.properties["message_id"] for m in got) == sorted(
                    f"filing:{i}:v1" for i in ids)
                # the decisions consumer reconnected too
                filing = stack.get(f"/filings/{ids[0]}", officer(county)).json()
                env.send_decisions([fs.decision(filing, county=county)], county=county)
                fs.wait_for(lambda: stack.get(f"/filings/{ids[0]}", officer(county))
                            .json()["status"] == "accepted", timeout=30,
                            message="decision after the outage")
            finally:
                probe.close()
