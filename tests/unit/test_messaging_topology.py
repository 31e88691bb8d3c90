"""Topology, policies and shovel definitions are data: check them without a broker."""
import re

import pytest

from shared.messaging import topology


def _bindings(queue):
    return {(b.exchange.name, b.routing_key) for b in queue.bindings}


def test_exchanges_are_durable_with_the_contract_types():
    types = {e.name: (e.type, e.durable) for e in topology.EXCHANGES}
    assert types == {"cqo.filings": ("topic", True), "cqo.decisions": ("topic", True),
                     "cqo.notices": ("topic", True), "cqo.dead": ("fanout", True),
                     "cqo.events": ("topic", True)}


def test_registry_queues():
    intake, dead, talent_events, registry_events, notify_events = topology.registry_queues()
    assert intake.name == "registry.intake"
    assert intake.queue_arguments == {"x-queue-type": "quorum",
                                      "x-dead-letter-exchange": "cqo.dead"}
    assert _bindings(intake) == {("cqo.filings", "filing.*.*")}
    assert intake.durable
    assert dead.name == "cqo.dead"
    assert dead.queue_arguments == {"x-queue-type": "quorum"}  # never dead-letters itself
    assert _bindings(dead) == {("cqo.dead", "")}
    # the domain events' subscribers, declared by the city so that none is lost before they start
    assert _bindings(talent_events) == {("cqo.events", "register.appointment.*"),
                                        ("cqo.events", "register.recommendation.*")}
    assert _bindings(registry_events) == {("cqo.events", "talent.certificate.*")}
    assert _bindings(notify_events) == {("cqo.events", "register.filing.decided"),
                                        ("cqo.events", "register.filing.late"),
                                        ("cqo.events", "register.recommendation.*"),
                                        ("cqo.events", "register.appointment.*"),
                                        ("cqo.events", "talent.draw.*"),
                                        ("cqo.events", "talent.expert.*"),
                                        ("cqo.events", "register.campaign.*"),
                                        ("cqo.events", "filing.*.returned")}


def test_the_city_declares_the_queues_of_counties_on_its_broker():
    from services.registry.service import counties_on_this_broker

    names = [q.name for q in topology.registry_queues(["130921", "130922"])]
    assert names == ["registry.intake", "cqo.dead", "talent.events", "registry.events",
                     "notify.events", "filing.130921.decisions",
                     "filing.130921.notices", "filing.130922.decisions", "filing.130922.notices"]
    shared = counties_on_this_broker({})
    assert len(shared) == 19 and "130921" in shared and "130971" in shared  # 16 + 3 zones
    assert counties_on_this_broker({"BROKER_TRUST": "per-county",
                                    "COUNTY_BROKER_USERS": {"county_a": "130921"}}) == []


def test_county_queues():
    decisions, notices, dead = topology.county_queues("130921")
    assert decisions.name == "filing.130921.decisions"
    assert _bindings(decisions) == {("cqo.decisions", "decision.130921")}
    assert notices.name == "filing.130921.notices"
    assert _bindings(notices) == {("cqo.notices", "notice.130921"), ("cqo.notices", "notice.all")}
    for q in (decisions, notices):
        assert q.queue_arguments["x-queue-type"] == "quorum"
        assert q.queue_arguments["x-dead-letter-exchange"] == "cqo.dead"
    assert dead.name == "cqo.dead"


@pytest.mark.parametrize("bad", ["", "1309.21", "130*", "#", "a b"])
def test_county_code_must_be_one_routing_word(bad):
    with pytest.raises(ValueError):
        topology.county_queues(bad)


def test_limits_live_in_policies_not_in_declarations():
    queues = topology.registry_queues() + topology.county_queues("130921")
    for q in queues:
        assert not {"x-delivery-limit", "x-max-length", "x-message-ttl"} & set(q.queue_arguments)
    (policy,) = list(topology.policy_definitions(delivery_limit=7))
    assert policy["apply-to"] == "queues"
    assert policy["definition"] == {"delivery-limit": 7, "dead-letter-exchange": "cqo.dead"}
    pattern = re.compile(policy["pattern"])
    for name in ("registry.intake", "filing.130921.decisions", "filing.130971.notices"):
        assert pattern.match(name), name
    for name in ("cqo.dead", "shovel.130921.filings", "registry.intake.x", "filing.1.2.decisions"):
        assert not pattern.match(name), name


def test_shovel_definitions_for_a_county():
    county_uri, city_uri = "amqp://c:p@county:5672/c130921", "amqp://r:p@city:5672/city"
    shovels = {s["name"]: s for s in topology.shovel_definitions("130921", county_uri, city_uri)}
    assert set(shovels) == {"cqo-filings-130921", "cqo-events-130921", "cqo-decisions-130921",
                            "cqo-notices-130921"}
    for s in shovels.values():
        assert s["component"] == "shovel"
        v = s["value"]
        assert v["ack-mode"] == "on-confirm"
        assert v["src-protocol"] == v["dest-protocol"] == "amqp091"
        assert "dest-exchange-key" not in v  # the original routing key travels on
        assert v["src-delete-after"] == "never"
        # x-shovelled and its timestamp: where and when the message crossed
        assert v["dest-add-forward-headers"] is True and v["dest-add-timestamp-header"] is True
        # declared by the shovel as the same quorum queue topology declares
        assert v["src-queue-args"] == {"x-queue-type": "quorum"}
    up = shovels["cqo-filings-130921"]["value"]
    assert (up["src-uri"], up["src-queue"]) == (county_uri, "shovel.130921.filings")
    assert (up["dest-uri"], up["dest-exchange"]) == (city_uri, "cqo.filings")
    down = shovels["cqo-decisions-130921"]["value"]
    assert (down["src-uri"], down["src-queue"]) == (city_uri, "shovel.130921.decisions")
    assert (down["dest-uri"], down["dest-exchange"]) == (county_uri, "cqo.decisions")
    notices = shovels["cqo-notices-130921"]["value"]
    assert (notices["src-uri"], notices["dest-exchange"]) == (city_uri, "cqo.notices")
    # each shovel drains a durable staging queue that topology declares on its side
    staging = topology.shovel_queues("130921")
    events_up = shovels["cqo-events-130921"]["value"]
    assert (events_up["src-queue"], events_up["dest-uri"], events_up["dest-exchange"]) == (
        "shovel.130921.events", city_uri, "cqo.events")
    assert [q.name for q in staging["county"]] == [up["src-queue"], events_up["src-queue"]]
    assert {q.name for q in staging["city"]} == {down["src-queue"], notices["src-queue"]}
    assert _bindings(staging["county"][0]) == {("cqo.filings", "filing.130921.*")}
    # the county's domain events reach the city's subscribers (notify) the same way
    assert _bindings(staging["county"][1]) == {("cqo.events", "filing.130921.*")}
    assert _bindings(staging["city"][1]) == {("cqo.notices", "notice.130921"),
                                             ("cqo.notices", "notice.all")}


def test_a_county_event_must_be_routed_and_some_city_queue_takes_each():
    """County events are published `mandatory` (they wait in the outbox until a city
    service declared their queue): each such event type must then have a subscriber, or
    it would wait for ever."""
    from shared.contracts import events

    assert topology.must_route("cqo.events", "filing.130921.returned")
    assert not topology.must_route("cqo.events", "register.filing.decided")
    assert topology.must_route("cqo.decisions", "decision.130921")
    county_types = [t for t in events.TYPES if t.startswith("filing.")]
    assert county_types
    for event_type in county_types:
        key = events.routing_key(event_type, "130921")
        bound = [pattern for patterns in topology.EVENT_SUBSCRIPTIONS.values() for pattern in patterns
                 if _topic_matches(pattern, key)]
        assert bound, f"no city queue takes {key}"


def _topic_matches(pattern: str, key: str) -> bool:
    import re

    regex = re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*")
    return re.fullmatch(regex, key) is not None


def test_a_cluster_also_mirrors_namekos_own_classic_queues():
    policies = {p["name"]: p for p in topology.policy_definitions(cluster=True)}
    assert set(policies) == {"cqo-consumer-queues", "cqo-nameko-queues"}
    nameko = policies["cqo-nameko-queues"]
    assert nameko["definition"] == {"ha-mode": "all", "ha-sync-mode": "automatic"}
    pattern = re.compile(nameko["pattern"])
    for name in ("rpc-registry", "rpc.reply-registry-2f1c", "evt-talent-register.filing--notify.on"):
        assert pattern.match(name), name
    consumer = re.compile(policies["cqo-consumer-queues"]["pattern"])
    for name in ("registry.intake", "filing.130921.decisions", "cqo.dead", "talent.events"):
        assert not pattern.match(name), name  # quorum queues: replicated already
    assert not any(consumer.match(n) for n in ("rpc-registry", "evt-a-b--c.d"))  # one policy each
