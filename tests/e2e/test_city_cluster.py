"""The clustered city broker (issue 13): three RabbitMQ nodes in containers
(`containers.rabbitmq_cluster()`, quorum queues replicated on all three), the registry
and county 130921's filing service as real processes whose AMQP_URI lists every node
(kombu's failover form). A batch of a few hundred filings is under way when the node
the services are connected to is SIGKILLed (`podman kill`); afterwards every filing is
in the city's ledger exactly once and decided, each decision applied at the county
exactly once, no outbox holds anything, no message was dead-lettered, both services
report the broker ok and hold connections to surviving nodes only, every queue they
consume has its consumer back, the registry's RPC answers, and a second batch sent
after the kill flows too. What was measured is printed (`pytest -s`).

nameko's own queues (RPC) are classic queues: the operator's policy for a cluster
(`topology.apply_policies(..., cluster=True)`) mirrors them; without it the registry's
RPC consumer does not come back while the killed node is down.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared.messaging import topology
from tests.e2e.support import (HTTP_TIMEOUT, Deployment, seed_approved, tcp_ports, wait_for)
from tests.support import containers

pytestmark = [pytest.mark.e2e, pytest.mark.containers, pytest.mark.timeout(1500)]

COUNTY = "130921"
COUNTY_SERVICE = f"filing_{COUNTY}"
SERVICES = ("registry", COUNTY_SERVICE)
BATCH, SECOND_BATCH = 300, 30
CHUNK = 5  # a batch is many messages (60 here), so the kill lands between them
SETTLE_S = 300  # generous (it takes 2-10 s): a loaded 2-core machine, a leader election, reconnects


@pytest.fixture(scope="module")
def city_cluster(container_engine):
    with containers.rabbitmq_cluster() as cluster:
        yield cluster


def say(text: str) -> None:
    print(f"[cluster] {text}", flush=True)


def connections_by_node(d: Deployment, cluster: containers.RabbitCluster) -> dict[str, dict[str, int]]:
    """{service: {node: established AMQP connections}} (from /proc: no management lag)."""
    return {name: {node.name: len(tcp_ports(d.stack.spec(name).pid, node.amqp_port))
                   for node in cluster.nodes}
            for name in SERVICES}


def health(d: Deployment, name: str) -> dict:
    return requests.get(d.stack.spec(name).base_url + "/api/v1/health", timeout=HTTP_TIMEOUT).json()


def decided_at_county(d: Deployment) -> int:
    return d.county_total(COUNTY, status="accepted,rejected")


def check_counts(d: Deployment, ids: list[str], phase: str) -> dict:
    """Every filing of `ids` in the ledger once and decided, its decision applied at the
    county once; nothing pending in either outbox, nothing dead-lettered."""
    reg, county = d.registry_db(), d.county_db(COUNTY)
    ledger = d.rows(reg, "SELECT filing_id, outcome, decided_at FROM filing_ledger")
    ledger_ids = [row[0] for row in ledger]
    assert len(ledger_ids) == len(set(ledger_ids)), f"{phase}: a filing twice in the ledger"
    assert set(ledger_ids) == set(ids), (phase, len(set(ids) - set(ledger_ids)),
                                         len(set(ledger_ids) - set(ids)))
    undecided = [row for row in ledger if row[1] not in ("accepted", "rejected") or row[2] is None]
    assert not undecided, f"{phase}: {len(undecided)} ledger rows undecided, e.g. {undecided[:3]}"
    decisions = d.rows(county, "SELECT filing_id, applied FROM filing_decisions")
    decision_ids = [row[0] for row in decisions]
    assert len(decision_ids) == len(set(decision_ids)), f"{phase}: a decision applied twice"
    assert set(decision_ids) == set(ids), (phase, len(set(ids) - set(decision_ids)))
    assert all(row[1] for row in decisions), f"{phase}: a decision kept but not applied"
    statuses = dict(d.rows(county, "SELECT status, count(*) FROM filings GROUP BY status"))
    assert sum(statuses.get(s, 0) for s in ("accepted", "rejected")) == len(ids), (phase, statuses)
    # the county also writes a progress snapshot now and then: its outbox empties
    # within a relay pass or two, it is not empty at every instant
    backlog = wait_for(lambda: (b := {name: d.outbox_backlog(name) for name in SERVICES})
                       and not any(b.values()) and b, 60,
                       lambda: f"{phase}: outboxes {({n: d.outbox_backlog(n) for n in SERVICES})}",
                       interval=0.5)
    dead = d.dead_letters()
    assert not dead, f"{phase}: {len(dead)} dead letters, e.g. {dead[0]['headers']}"
    counts = {"phase": phase, "ledger_rows": len(ledger_ids), "decisions_at_county": len(decision_ids),
              "county_statuses": statuses, "outbox_backlog": backlog, "dead_letters": len(dead)}
    say(json.dumps(counts, ensure_ascii=False))
    return counts


def check_connected(d: Deployment, cluster: containers.RabbitCluster, phase: str) -> None:
    """Both services answer healthy with the broker ok and hold connections to
    surviving nodes only."""
    for name in SERVICES:
        body = wait_for(lambda: (h := health(d, name))["checks"].get("broker") == "ok" and h, 60,
                        lambda: f"{phase}: {name} health {health(d, name)}", interval=1)
        assert body["checks"].get("database") == "ok", (name, body)
    by_node = wait_for(lambda: (c := connections_by_node(d, cluster))
                       and all(sum(per.values()) for per in c.values()) and c, 120,
                       lambda: f"{phase}: connections {connections_by_node(d, cluster)}", interval=1)
    for name, per_node in by_node.items():
        assert not any(per_node[k] for k in cluster.killed), (phase, name, per_node)
    consumers = wait_for(lambda: (c := queue_consumers(d, cluster)) and all(c.values()) and c, 120,
                         lambda: f"{phase}: consumers {queue_consumers(d, cluster)}", interval=1)
    say(f"{phase}: health broker ok, connections by node {json.dumps(by_node)}, "
        f"consumers {json.dumps(consumers)}")


# every queue a service consumes from: the registry's intake and RPC, the county's
CONSUMED = ("registry.intake", "rpc-registry", f"filing.{COUNTY}.decisions", f"filing.{COUNTY}.notices")


def state(d: Deployment, cluster: containers.RabbitCluster) -> str:
    """What a stalled flow looks like: outboxes, the consumed queues as the broker sees
    them, and the quorum status of the intake queue from a living node."""
    found = {"outbox_backlog": {name: d.outbox_backlog(name) for name in SERVICES}}
    try:
        queues = {q["name"]: q for q in cluster.broker._api("GET", f"/queues/{d.vhost}").json()}
        found["queues"] = {name: {k: queues.get(name, {}).get(k) for k in (
            "messages_ready", "messages_unacknowledged", "consumers", "leader", "online", "state")}
            for name in CONSUMED}
        found["connections"] = connections_by_node(d, cluster)
        node = cluster.living[0].container
        for queue in ("registry.intake", f"filing.{COUNTY}.decisions"):
            code, out = node.exec(["rabbitmq-queues", "quorum_status", queue, "-p", d.vhost])
            found[f"quorum_status {queue}"] = out.decode(errors="replace")[-1500:]
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure
        found["error"] = repr(exc)
    return json.dumps(found, ensure_ascii=False)


def queue_consumers(d: Deployment, cluster: containers.RabbitCluster) -> dict[str, int]:
    """Consumers of each queue on a living node's channel: a quorum queue keeps the
    killed node's consumers as `suspected_down`, and counts them, until that node is back."""
    living = {n.node for n in cluster.living}
    found = dict.fromkeys(CONSUMED, 0)
    for consumer in cluster.broker._api("GET", f"/consumers/{d.vhost}").json():
        name = consumer.get("queue", {}).get("name")
        if name in found and consumer.get("channel_details", {}).get("node") in living:
            found[name] += 1
    return found


def test_the_city_broker_cluster_loses_a_node_mid_batch(city_cluster, container_postgres_url,
                                                      tmp_path, request):
    cluster = city_cluster
    wall = time.monotonic()
    d = Deployment(cluster.broker, container_postgres_url, tmp_path / "stack", counties=(COUNTY,),
                   amqp_uri_for=cluster.failover_uri, tag="cluster",
                   process_env={COUNTY_SERVICE: {"BATCH_CHUNK_SIZE": CHUNK}})
    try:
        assert d.amqp_uri.count(";") == len(cluster.nodes) - 1  # every node listed
        # what an operator sets on a clustered city (docs/multisite.md): nameko's classic
        # queues mirrored, so its RPC consumer survives the loss of their node
        policies = topology.apply_policies(cluster.broker.management_url, d.vhost, cluster=True)
        d.start()
        d.open_campaign()
        consumers = wait_for(lambda: (c := queue_consumers(d, cluster)) and all(c.values()) and c, 60,
                             lambda: f"consumers {queue_consumers(d, cluster)}", interval=1)
        by_node = connections_by_node(d, cluster)
        say(f"cluster {sorted(cluster.running_nodes())}, policies {policies}; services started on "
            f"{d.amqp_uri.count(';') + 1} listed nodes, connections by node {json.dumps(by_node)}, "
            f"consumers {json.dumps(consumers)}")
        # the node holding most of the services' connections (the first listed, normally)
        target = max(cluster.nodes, key=lambda n: sum(per[n.name] for per in by_node.values()))
        assert sum(per[target.name] for per in by_node.values()) > 0, by_node
        queues = {q["name"]: q for q in cluster.broker._api("GET", f"/queues/{d.vhost}").json()}
        for name in ("registry.intake", f"filing.{COUNTY}.decisions"):
            assert queues[name]["type"] == "quorum", queues[name]
            assert len(queues[name]["members"]) == len(cluster.nodes), queues[name]
        say(f"registry.intake leader {queues['registry.intake']['leader']}, members "
            f"{sorted(queues['registry.intake']['members'])}")

        # -- a batch under way when the services' node is killed --------------------------
        ids = seed_approved(d, COUNTY, range(1, BATCH + 1))
        began = time.monotonic()
        batch = d.submit_batch(COUNTY)
        assert batch["count"] == BATCH, batch
        wait_for(lambda: d.ledger_total() > 0, 120, "a first filing of the batch at the city",
                 interval=0.05)
        cluster.kill(target.name)
        killed_at = time.monotonic()
        at_kill = {"ledger": d.ledger_total(), "decided_at_county": decided_at_county(d)}
        assert at_kill["decided_at_county"] < BATCH, f"the batch was done before the kill: {at_kill}"
        d.broker = cluster.broker  # the deployment's vhost is removed through a living node
        say(f"killed {target.node} {killed_at - began:.1f} s into the batch of {BATCH} "
            f"({BATCH // CHUNK} messages): {json.dumps(at_kill)}")
        assert cluster.running_nodes() == {n.node for n in cluster.living}

        wait_for(lambda: decided_at_county(d) == BATCH, SETTLE_S,
                 lambda: f"{decided_at_county(d)} of {BATCH} decided at the county; "
                         f"{state(d, cluster)}", interval=1)
        say(f"batch settled {time.monotonic() - killed_at:.1f} s after the kill "
            f"({time.monotonic() - began:.1f} s after submitting)")
        check_counts(d, ids, "after the kill")
        check_connected(d, cluster, "after the kill")
        # nameko's RPC entrypoint answers again (its queue mirrored), asked through the
        # failover URI by nameko's own standalone proxy
        with ClusterRpcProxy({"AMQP_URI": d.amqp_uri}, timeout=60) as rpc:
            page = rpc.registry.current_appointments(0, 5)
        assert len(page["items"]) == 5, page
        say(f"after the kill: registry RPC current_appointments answered {len(page['items'])} appointments")

        # -- a second batch on the surviving nodes ----------------------------------------
        second = seed_approved(d, COUNTY, range(BATCH + 1, BATCH + SECOND_BATCH + 1))
        began = time.monotonic()
        assert d.submit_batch(COUNTY)["count"] == SECOND_BATCH
        wait_for(lambda: decided_at_county(d) == BATCH + SECOND_BATCH, SETTLE_S,
                 lambda: f"{decided_at_county(d)} of {BATCH + SECOND_BATCH} decided at the county; "
                         f"{state(d, cluster)}",
                 interval=0.5)
        say(f"second batch of {SECOND_BATCH} decided in {time.monotonic() - began:.1f} s")
        check_counts(d, ids + second, "second batch")
        check_connected(d, cluster, "second batch")
        say(f"test {time.monotonic() - wall:.1f} s")
    except BaseException:
        print(d.log_tails(80))
        raise
    finally:
        d.close()
