"""End-to-end fault tests of issue 3, with the services as real processes.

The registry (city) and county filing services run as `cqo serve` processes started by
cqo.stack.Stack, each with its own PostgreSQL schema, on a RabbitMQ vhost of the
test's own. Faults are injected from outside, as an operator or the network would:
SIGKILL, connections closed by the broker, a broker that cannot be reached, duplicate
and malformed messages published straight onto `cqo.filings` / `cqo.decisions`.

After each fault the end state is checked, not the path: every filing is in the
register exactly once (one ledger entry, one appointment) and every county sees
every decision (all its filings accepted, one decision each), nothing is left in an
outbox or a queue.
"""
from __future__ import annotations

import json
import signal
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from services.filing.domain import FORWARDED, filing_message_id
from shared.messaging import topology
from tests.support.tcp_proxy import TcpProxy
from tests.e2e.support import (Deployment, officer, seed_approved, submit_over_http, tcp_ports,
                               wait_for, wire_of)

pytestmark = pytest.mark.e2e

COUNTY, OTHER = "130921", "130922"
N = 1000           # filings in the batch of the kill and connection tests
CHUNK = 50         # filings per batch message: decisions arrive chunk by chunk
OVER_HTTP = 20     # of them filed and pre-reviewed through the county's HTTP API
SETTLE_S = 120     # deadline for a whole batch to be decided after a fault


# -- shared steps ------------------------------------------------------------------------------

def prepare_batch(d: Deployment, county: str, count: int, *, first: int = 1) -> list[str]:
    """`count` approved campaign filings at `county` (the campaign must be open there):
    OVER_HTTP of them go through intake and pre-review over HTTP, the rest are written
    with the county's own use-case functions (tests.e2e.support.seed_approved)."""
    ids = submit_over_http(d, county, range(first, first + OVER_HTTP))
    ids += seed_approved(d, county, range(first + OVER_HTTP, first + count))
    assert d.county_total(county, status="approved", channel="campaign") == count
    return ids


def decided(d: Deployment) -> int:
    """Filings in the registry's ledger (read from its database: it answers while the
    registry process is dead or busy)."""
    return d.scalar(d.registry_db(), "SELECT count(*) FROM filing_ledger")


def county_statuses(d: Deployment, county: str) -> dict[str, int]:
    return dict(d.rows(d.county_db(county), "SELECT status, count(*) FROM filings GROUP BY status"))


def unsent(d: Deployment, name: str) -> int:
    return d.outbox_backlog(name)


def assert_registered_once_and_seen(d: Deployment, expected: dict[str, list[str]]) -> None:
    """The end state after any fault: every filing in the register exactly once, and
    every county sees every decision (and nothing else)."""
    everything = {fid for ids in expected.values() for fid in ids}
    for county, ids in expected.items():
        wait_for(lambda: d.county_total(county, status="accepted") == len(ids), SETTLE_S,
                 lambda: f"county {county}: {county_statuses(d, county)} of {len(ids)} filings "
                         f"(registry ledger: {decided(d)})")
    # the register (city): one ledger entry and one appointment per filing
    assert d.ledger_total() == len(everything)
    for county, ids in expected.items():
        assert d.ledger_total(county=county, outcome="accepted") == len(ids)
    per_filing = d.rows(d.registry_db(), "SELECT filing_id, version, count(*) FROM filing_ledger "
                                         "GROUP BY filing_id, version")
    assert {r[0] for r in per_filing} == everything
    twice = [r for r in per_filing if r[1] != 1 or r[2] != 1]
    assert not twice, twice[:5]
    appointments = d.rows(d.registry_db(), "SELECT count(*), count(DISTINCT filing_id), "
                                           "count(DISTINCT uscc) FROM appointments")[0]
    assert tuple(appointments) == (len(everything),) * 3
    assert d.scalar(d.registry_db(),
                    "SELECT count(*) FROM appointments WHERE ended_on IS NOT NULL") == 0
    # each county: all its filings accepted, one applied decision each, no foreign ones
    for county, ids in expected.items():
        db = d.county_db(county)
        assert county_statuses(d, county) == {"accepted": len(ids)}
        assert d.county_total(county) == len(ids)
        rows = d.rows(db, "SELECT filing_id, outcome, applied FROM filing_decisions")
        assert sorted(r[0] for r in rows) == sorted(ids), "one decision per filing, none foreign"
        assert {(r[1], r[2]) for r in rows} == {("accepted", True)}
    # nothing left behind: outboxes sent, queues drained, no dead letters
    for name in ["registry"] + [f"filing_{c}" for c in expected]:
        wait_for(lambda: unsent(d, name) == 0, 30, f"{name}: outbox backlog {unsent(d, name)}")
    wait_for(lambda: d.queue_depth(topology.REGISTRY_INTAKE) == 0, 30, "registry.intake drained")
    for county in expected:
        assert d.queue_depth(f"filing.{county}.decisions") == 0
        assert d.county_health(county)["outbox_backlog"] == 0
    assert d.queue_depth(topology.DEAD_QUEUE_NAME) == 0, [
        (m["headers"].get("x-error-code"), m["headers"].get("x-error-reason"))
        for m in d.dead_letters()]


def amqp_port(uri: str) -> int:
    return urlsplit(uri).port or 5672


# -- 1. the registry killed (SIGKILL) and restarted during a 1,000-filing batch ----------------

def test_registry_killed_and_restarted_during_a_batch(deploy):
    d = deploy(counties=(COUNTY,), process_env={f"filing_{COUNTY}": {"BATCH_CHUNK_SIZE": CHUNK}})
    d.open_campaign()
    ids = prepare_batch(d, COUNTY, N)

    batch = d.submit_batch(COUNTY)
    assert (batch["count"], batch["chunks"]) == (N, N // CHUNK)
    # decisions arrive chunk by chunk: kill as soon as the first ones are in the ledger
    wait_for(lambda: decided(d) > 0, 60, "no filing decided after the batch submission",
             interval=0.01)
    registry = d.stack.processes["registry"]
    d.stack.kill("registry", signal.SIGKILL)
    assert registry.returncode == -signal.SIGKILL

    at_kill = decided(d)  # the process is dead: this is the ledger at the moment of the kill
    assert 0 < at_kill < N, f"{at_kill} of {N} decided when the registry was killed"
    # the undecided chunks wait for it: what it had not acknowledged went back to the queue
    wait_for(lambda: d.queue_depth(topology.REGISTRY_INTAKE) + unsent(d, f"filing_{COUNTY}") > 0,
             30, "undecided batch chunks back in registry.intake")
    # the county keeps working while the city is down
    assert requests.get(d.county_url(COUNTY) + "/filings", params={"status": "accepted"},
                        headers=officer(COUNTY), timeout=30).status_code == 200

    d.stack.restart("registry")
    assert_registered_once_and_seen(d, {COUNTY: ids})
    print(f"\nregistry killed with {at_kill}/{N} filings decided")


# -- 2. the broker connections closed mid-batch; both services reconnect -----------------------

def test_broker_connections_closed_mid_batch(deploy, broker):
    d = deploy(counties=(COUNTY,), process_env={f"filing_{COUNTY}": {"BATCH_CHUNK_SIZE": CHUNK}})
    d.open_campaign()
    ids = prepare_batch(d, COUNTY, N)
    port = amqp_port(d.amqp_uri)
    pids = {name: d.stack.spec(name).pid for name in ("registry", f"filing_{COUNTY}")}
    before = {name: tcp_ports(pid, port) for name, pid in pids.items()}
    assert all(before.values()), f"every service holds a broker connection: {before}"

    d.submit_batch(COUNTY)
    wait_for(lambda: decided(d) > 0, 60, "no filing decided after the batch submission",
             interval=0.01)
    # the broker closes every connection of the vhost (as on a node restart or an
    # operator's "close connection"); repeated until none of the old ones is left
    at_close = []

    def old_ones_gone():
        if any(tcp_ports(pid, port) & before[name] for name, pid in pids.items()):
            at_close.append(decided(d))
            broker.close_connections(d.vhost)
            return False
        return True

    wait_for(old_ones_gone, 30, "the services' broker connections were not closed", interval=0.2)
    assert 0 < at_close[0] < N, f"{at_close[0]} of {N} decided when the connections were closed"
    # the county goes on: ten more filings approved and batch-submitted after the close
    # travel through its outbox relay's new connection
    more = seed_approved(d, COUNTY, range(N + 1, N + 11))
    assert d.submit_batch(COUNTY)["count"] == len(more)
    # both services reconnect by themselves
    wait_for(lambda: all(tcp_ports(pid, port) - before[name] for name, pid in pids.items()), 60,
             lambda: f"no new broker connection: "
                     f"{({n: tcp_ports(p, port) for n, p in pids.items()})}")
    assert_registered_once_and_seen(d, {COUNTY: ids + more})
    # reconnected, not restarted
    assert all(d.stack.processes[name].poll() is None for name in pids)
    print(f"\nconnections closed with {at_close[0]}/{N} filings decided "
          f"({len(at_close)} close calls)")


def test_registry_cut_off_from_the_broker_mid_batch(deploy, broker):
    """The registry's link to the broker reset and refused for a while (TCP proxy):
    it keeps trying, and finishes the batch once the broker is reachable again."""
    broker_host = urlsplit(broker.amqp_uri).hostname
    with TcpProxy(broker_host, amqp_port(broker.amqp_uri)) as proxy:
        d = deploy(start=False, counties=(COUNTY,),
                   process_env={f"filing_{COUNTY}": {"BATCH_CHUNK_SIZE": CHUNK}})
        parts = urlsplit(d.amqp_uri)
        proxied = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
        d.stack.spec("registry").env["AMQP_URI"] = proxied.geturl()
        try:
            _cut_off_mid_batch(d, proxy)
        finally:
            d.close()  # before the proxy goes: a service stopping without its broker waits for it


def _cut_off_mid_batch(d: Deployment, proxy: TcpProxy) -> None:
    d.start()
    d.open_campaign()
    ids = prepare_batch(d, COUNTY, N)
    d.submit_batch(COUNTY)
    wait_for(lambda: decided(d) > 0, 60, "no filing decided", interval=0.01)
    at_cut = decided(d)
    proxy.cut(pause=True)  # RST on every registry connection, new ones refused
    assert 0 < at_cut < N
    pid = d.stack.spec("registry").pid
    wait_for(lambda: not tcp_ports(pid, proxy.port), 30, "registry still connected")
    refused = proxy.refused
    wait_for(lambda: proxy.refused >= refused + 2, 60, "the registry did not try to reconnect")
    # it stays up meanwhile, and its health says what is missing
    health = requests.get(d.stack.spec("registry").base_url + "/api/v1/health", timeout=10)
    assert health.status_code == 503, health.text
    assert health.json()["checks"] == {"database": "ok", "broker": "unavailable"}
    proxy.resume()
    assert_registered_once_and_seen(d, {COUNTY: ids})
    assert d.stack.processes["registry"].poll() is None  # the same process, not a restart
    print(f"\nregistry cut off with {at_cut}/{N} decided; {proxy.refused} reconnects refused")


# -- 3. a message delivered twice -------------------------------------------------------------

def test_message_delivered_twice_is_applied_once(deploy, broker):
    d = deploy(counties=(COUNTY,))
    # three filings the county forwarded (in its database as "forwarded", their wire
    # messages fixed); the test plays the relay and delivers each more than once
    a, b, c = seed_approved(d, COUNTY, range(1, 4), status=FORWARDED)
    wires = {fid: wire_of(d, COUNTY, fid) for fid in (a, b, c)}
    key = f"filing.{COUNTY}.establishment"
    batch_key = f"filing.{COUNTY}.batch"
    same_id = filing_message_id(a, 1)
    b_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    c_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    published = 0
    # A: the same message (same message id) twice, as a relay that lost a confirm resends it
    for _ in range(2):
        d.publish(key, wires[a], message_id=same_id)
        published += 1
    # B: the same filing under two message ids, delivered concurrently
    threads = [threading.Thread(target=d.publish, args=(key, wires[b]), kwargs={"message_id": m})
               for m in b_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published += 2
    # C: once on its own, once again inside a batch chunk
    d.publish(key, wires[c], message_id=c_ids[0])
    d.publish(batch_key, {"batch_id": str(uuid.uuid4()), "county": COUNTY, "chunk": 1,
                          "chunks": 1, "filings": [wires[c]]}, message_id=c_ids[1])
    published += 2

    expected = {COUNTY: [a, b, c]}
    # every copy was taken off the queue and acknowledged by the registry
    wait_for(lambda: intake_acks(broker, d) >= published, 60,
             lambda: f"registry acked {intake_acks(broker, d)} of {published} deliveries")
    # the copies under other message ids were answered with the original decision
    for m in b_ids + c_ids:
        wait_for(lambda: f"decisions:{m}:{COUNTY}" in {
            r[0] for r in d.rows(d.county_db(COUNTY), "SELECT message_id FROM inbox_messages")},
            30, f"answer to {m} received by the county")
    answers = registry_answers(d)
    assert len(answers[a]) == 1, answers[a]  # the same message id: skipped by the inbox
    for fid in (b, c):
        outcomes = sorted((x["outcome"],
                           any(r["code"] == "DUPLICATE_DELIVERY" for r in x["reasons"]))
                          for x in answers[fid])
        assert outcomes == [("accepted", False), ("accepted", True)], answers[fid]
    assert_registered_once_and_seen(d, expected)
    for fid in (a, b, c):
        detail = requests.get(f"{d.county_url(COUNTY)}/filings/{fid}", headers=officer(COUNTY),
                              timeout=30).json()
        assert detail["status"] == "accepted" and detail["decision"]["outcome"] == "accepted"
        assert len(detail["decisions"]) == 1, detail["decisions"]
        history = d.enterprise(detail["uscc"])
        assert len(history["history"]) == 1 and len(history["filings"]) == 1
        assert history["current_cqo"]["filing_id"] == fid


def intake_acks(broker, d: Deployment) -> int:
    """Deliveries on registry.intake acknowledged so far (management API statistics)."""
    stats = broker.queue(d.vhost, topology.REGISTRY_INTAKE).get("message_stats") or {}
    return int(stats.get("ack") or 0)


def registry_answers(d: Deployment) -> dict[str, list[dict]]:
    """Every decision the registry queued for the counties, per filing id."""
    out: dict[str, list[dict]] = {}
    for (payload,) in d.rows(d.registry_db(), "SELECT payload FROM outbox_messages "
                                             "WHERE exchange = 'cqo.decisions'"):
        for decision in json.loads(payload)["decisions"]:
            out.setdefault(decision["filing_id"], []).append(decision)
    return out


# -- 4. malformed messages go to cqo.dead with the reason; the consumers go on ----------------

def test_malformed_messages_are_dead_lettered_and_consumers_go_on(deploy):
    d = deploy(counties=(COUNTY,))
    good_before, good_in_batch, good_after = seed_approved(d, COUNTY, range(1, 4), status=FORWARDED)
    wires = {fid: wire_of(d, COUNTY, fid) for fid in (good_before, good_in_batch, good_after)}
    key, batch_key = f"filing.{COUNTY}.establishment", f"filing.{COUNTY}.batch"

    def batch(filings):
        return {"batch_id": str(uuid.uuid4()), "county": COUNTY, "chunk": 1, "chunks": 1,
                "filings": filings}

    d.publish(key, wires[good_before])
    bad = {  # message id -> (routing key, body bytes, expected x-error-code)
        "not-json": (key, b"\x00 this is not JSON {", "MALFORMED_MESSAGE"),
        "json-array": (key, b"[1, 2, 3]", "MALFORMED_MESSAGE"),
        "missing-fields": (key, json.dumps({"county": COUNTY, "kind": "establishment"}).encode(),
                           "MALFORMED_MESSAGE"),
    }
    for message_id, (routing_key, raw, _) in bad.items():
        d.publish(routing_key, raw=raw, message_id=message_id)
    # a batch with an item that cannot even be answered (no filing id): only that item
    # is set aside (dead letter "<message id>#<position>"), the good one is decided
    d.publish(batch_key, raw=json.dumps(batch([wires[good_in_batch], {"kind": "establishment"}]),
                                        ensure_ascii=False).encode(), message_id="batch-bad-item")
    parts = {"batch-bad-item#2": (batch_key, b'{"kind":"establishment"}', "MALFORMED_MESSAGE")}
    # the county's decision consumer gets its own poison: not JSON, and another county's
    decisions_key = f"decision.{COUNTY}"
    foreign = {"county": OTHER, "decisions": [{
        "filing_id": str(uuid.uuid4()), "version": 1, "county": OTHER,
        "uscc": wires[good_after]["enterprise"]["uscc"],
        "outcome": "accepted", "reasons": [], "findings": [], "late": False, "days_late": 0,
        "deadline": None, "decided_at": "2026-01-20T08:00:00+00:00"}]}
    county_bad = {
        "decision-not-json": (b"{not json", "MALFORMED_MESSAGE"),
        "decision-wrong-county": (json.dumps(foreign).encode(), "DECISION_WRONG_COUNTY"),
    }
    for message_id, (raw, _) in county_bad.items():
        d.publish(decisions_key, raw=raw, message_id=message_id, exchange=topology.DECISIONS.name)
    # a batch whose bad item still names its filing: that one is rejected with the
    # reason, the good one in the same chunk is decided (nothing dead-lettered)
    invalid = dict(wires[good_in_batch], filing_id=str(uuid.uuid4()))
    invalid["enterprise"] = dict(invalid["enterprise"], uscc="911309210000000000")
    d.publish(batch_key, batch([invalid, wires[good_in_batch]]))

    bad_for_registry = {**bad, **parts}
    expected_dead = {m: code for m, (_, _, code) in bad_for_registry.items()}
    expected_dead.update({m: code for m, (_, code) in county_bad.items()})
    wait_for(lambda: d.queue_depth(topology.DEAD_QUEUE_NAME) >= len(expected_dead), 60,
             lambda: f"{d.queue_depth(topology.DEAD_QUEUE_NAME)} of {len(expected_dead)} "
                     "dead letters")
    dead = {m["message_id"]: m for m in d.dead_letters()}
    assert set(dead) == set(expected_dead), sorted(dead)
    originals = {m: raw for m, (_, raw, _) in bad_for_registry.items()}
    originals.update({m: raw for m, (raw, _) in county_bad.items()})
    for message_id, code in expected_dead.items():
        headers = dead[message_id]["headers"]
        assert headers["x-error-code"] == code, (message_id, headers)
        assert headers["x-error-reason"].strip(), (message_id, headers)
        assert dead[message_id]["body"] == originals[message_id]  # kept as it came, replayable
        consumer = ("registry.intake" if message_id in bad_for_registry
                    else f"filing_{COUNTY}.decisions")
        assert headers["x-consumer"] == consumer
        assert headers["x-original-routing-key"] == (bad_for_registry[message_id][0]
                                                     if message_id in bad_for_registry
                                                     else decisions_key)
    # recorded for the operator as well (list and replay)
    recorded = dict(d.rows(d.registry_db(), "SELECT message_id, error_code FROM dead_letters"))
    assert recorded == {m: c for m, c in expected_dead.items() if m in bad_for_registry}
    recorded = dict(d.rows(d.county_db(COUNTY), "SELECT message_id, error_code FROM dead_letters"))
    assert recorded == {m: c for m, c in expected_dead.items() if m in county_bad}

    # once all of it is dead-lettered, a good filing: both consumers are still consuming
    d.publish(key, wires[good_after])
    ids = [good_before, good_in_batch, good_after]
    wait_for(lambda: d.county_total(COUNTY, status="accepted") == 3, 60,
             lambda: f"county: {county_statuses(d, COUNTY)}")
    rejected = d.rows(d.registry_db(), "SELECT outcome, reasons FROM filing_ledger "
                                       "WHERE filing_id = :id", id=invalid["filing_id"])
    assert rejected[0][0] == "rejected" and "FILING_INVALID" in rejected[0][1]
    ledger = dict(d.rows(d.registry_db(), "SELECT filing_id, outcome FROM filing_ledger"))
    assert ledger == {**{fid: "accepted" for fid in ids}, invalid["filing_id"]: "rejected"}
    assert d.scalar(d.registry_db(), "SELECT count(*) FROM appointments") == 3
    # the decision about a filing the county never had is kept, not applied
    kept = d.rows(d.county_db(COUNTY), "SELECT applied FROM filing_decisions WHERE filing_id = :id",
                  id=invalid["filing_id"])
    assert kept == [(False,)]
    assert county_statuses(d, COUNTY) == {"accepted": 3}
    for name in ("registry", f"filing_{COUNTY}"):
        wait_for(lambda: unsent(d, name) == 0, 30, f"{name}: outbox backlog")
    assert d.queue_depth(topology.REGISTRY_INTAKE) == 0


# -- 5. two counties on one broker never see each other's decisions ---------------------------

def test_two_counties_batch_concurrently_without_cross_talk(deploy):
    per_county = 400
    d = deploy(counties=(COUNTY, OTHER),
               process_env={f"filing_{c}": {"BATCH_CHUNK_SIZE": 100} for c in (COUNTY, OTHER)})
    d.open_campaign()
    ids = {county: prepare_batch(d, county, per_county) for county in (COUNTY, OTHER)}
    results, errors = {}, []

    def submit(county):
        try:
            results[county] = d.submit_batch(county)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(c,)) for c in (COUNTY, OTHER)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {c: r["count"] for c, r in results.items()} == {COUNTY: per_county, OTHER: per_county}

    assert_registered_once_and_seen(d, ids)
    for county, other in ((COUNTY, OTHER), (OTHER, COUNTY)):
        db = d.county_db(county)
        # its decision consumer only ever received its own county's decision messages
        inbox = [r[0] for r in d.rows(db, "SELECT message_id FROM inbox_messages "
                                          "WHERE consumer = :c", c=f"filing_{county}.decisions")]
        assert inbox and all(m.endswith(f":{county}") for m in inbox), inbox[:5]
        assert d.scalar(db, "SELECT count(*) FROM filing_decisions WHERE filing_id IN :ids"
                        .replace(":ids", "(" + ",".join(f"'{i}'" for i in ids[other]) + ")")) == 0
        assert d.scalar(db, "SELECT count(*) FROM filings WHERE county <> :c", c=county) == 0
        listing = requests.get(d.county_url(county) + "/filings", params={"page_size": 200},
                               headers=officer(county), timeout=30).json()
        assert {f["county"] for f in listing["items"]} == {county}
        assert listing["total"] == per_county
        # a county officer sees only the own county in the city's ledger too
        ledger = requests.get(d.registry_url + "/filings", params={"page_size": 500},
                              headers=officer(county), timeout=30).json()
        assert ledger["total"] == per_county and {e["county"] for e in ledger["items"]} == {county}
