"""The broker topology (docs/architecture.md, "Message topology"), declared in this one place.

Queues are quorum queues declared with the same arguments everywhere (a re-declare
with other arguments fails with 406), so limits such as the delivery limit live in a
broker policy (`policy_definitions`), which can change without re-declaring anything.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from kombu import Exchange, Queue, binding

FILINGS = Exchange("cqo.filings", type="topic", durable=True)
DECISIONS = Exchange("cqo.decisions", type="topic", durable=True)
NOTICES = Exchange("cqo.notices", type="topic", durable=True)
DEAD = Exchange("cqo.dead", type="fanout", durable=True)
EVENTS = Exchange("cqo.events", type="topic", durable=True)  # domain events, docs/events.md
EXCHANGES = (FILINGS, DECISIONS, NOTICES, DEAD, EVENTS)

REGISTRY_INTAKE = "registry.intake"
DEAD_QUEUE_NAME = "cqo.dead"
NOTICE_ALL = "notice.all"
DEFAULT_DELIVERY_LIMIT = 20

# a county code is one routing-key word: no dots, no wildcards
_COUNTY = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def check_county(county: str) -> str:
    county = str(county)
    if not _COUNTY.match(county):
        raise ValueError(f"invalid county code for routing: {county!r}")
    return county


def quorum_queue(name: str, bindings: Iterable[tuple[Exchange, str]], *,
                 dead_letter: bool = True) -> Queue:
    """A durable quorum queue; consumer queues dead-letter to `cqo.dead`."""
    arguments = {"x-queue-type": "quorum"}
    if dead_letter:
        arguments["x-dead-letter-exchange"] = DEAD.name
    return Queue(name, bindings=[binding(ex, routing_key=rk) for ex, rk in bindings],
                 durable=True, queue_arguments=arguments)


def dead_queue() -> Queue:
    # no DLX of its own: a dead letter must never loop
    return quorum_queue(DEAD_QUEUE_NAME, [(DEAD, "")], dead_letter=False)


def intake_queue() -> Queue:
    return quorum_queue(REGISTRY_INTAKE, [(FILINGS, "filing.*.*")])


def decisions_queue(county: str) -> Queue:
    county = check_county(county)
    return quorum_queue(f"filing.{county}.decisions", [(DECISIONS, f"decision.{county}")])


def notices_queue(county: str) -> Queue:
    county = check_county(county)
    return quorum_queue(f"filing.{county}.notices",
                        [(NOTICES, f"notice.{county}"), (NOTICES, NOTICE_ALL)])


# Who listens to which domain events (docs/events.md). Every city service declares all of
# them at start, so an event published before its consumer first starts waits for it
# instead of coming back unroutable.
EVENT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "talent.events": ("register.appointment.*", "register.recommendation.*"),
    "registry.events": ("talent.certificate.*",),
    "notify.events": ("register.filing.decided", "register.filing.late", "register.recommendation.*",
                      "register.appointment.*", "talent.draw.*", "talent.expert.*",
                      "register.campaign.*", "filing.*.returned"),
}


def must_route(exchange: str, routing_key: str) -> bool:
    """Whether an unroutable publish is a failure (the outbox keeps the row and retries).

    Every message but the city's domain events: an event no service subscribes to is
    not an error, and the city's services declare all subscribers' queues before they
    publish. A county's events (`filing.<county>.*`) do not take that exception: on a
    broker shared with the city they would be lost while no city service has started
    yet (the county does not declare the city's queues), and across sites the shovel's
    staging queue takes them."""
    return exchange != EVENTS.name or routing_key.startswith("filing.")


def events_queue(name: str) -> Queue:
    return quorum_queue(name, [(EVENTS, key) for key in EVENT_SUBSCRIPTIONS[name]])


def event_queues() -> list[Queue]:
    return [events_queue(name) for name in EVENT_SUBSCRIPTIONS]


def registry_queues(counties: Iterable[str] = ()) -> list[Queue]:
    """What the city declares: its intake, the dead-letter queue and, for `counties`
    (those sharing the city's broker), their decisions and notices queues: a notice
    or decision sent before a county's service first started then waits for it
    instead of being unroutable (a campaign notice to all would skip that county)."""
    queues = [intake_queue(), dead_queue(), *event_queues()]
    for county in counties:
        queues += [decisions_queue(county), notices_queue(county)]
    return queues


def county_queues(county: str) -> list[Queue]:
    """What a county filing service declares (plus the dead-letter queue it feeds)."""
    return [decisions_queue(county), notices_queue(county), dead_queue()]


def declare(connection, queues: Iterable[Queue] = ()) -> None:
    """Declare every exchange, then the given queues with their bindings (idempotent)."""
    channel = connection.channel()
    try:
        for exchange in EXCHANGES:
            exchange(channel).declare()
        for queue in queues:
            queue(channel).declare()
    finally:
        channel.close()


# -- policies -------------------------------------------------------------------------

def consumer_queue_pattern() -> str:
    return r"^(registry\.intake|filing\.[^.]+\.(decisions|notices)|[a-z]+\.events)$"


def nameko_queue_pattern() -> str:
    """nameko's own queues: the RPC entrypoints' `rpc-<service>`, the RPC proxies'
    `rpc.reply-<service>-<uuid>` and event handlers' `evt-...` (classic, durable)."""
    return r"^(rpc-|rpc\.reply-|evt-)"


def policy_definitions(delivery_limit: int = DEFAULT_DELIVERY_LIMIT, *,
                       cluster: bool = False) -> Iterator[dict]:
    """Broker policies: the safety net for a consumer that dies mid-message.

    The failure wrapper normally dead-letters with a reason; this only catches a
    message that keeps being requeued (crash loop) after `delivery_limit` deliveries.

    `cluster` (a clustered broker, docs/multisite.md): nameko 2.14 declares its own
    queues as durable classic queues, which live on one node; when that node dies the
    queue cannot be declared on another ("home node ... is down"), and nameko's consumer
    of the RPC entrypoint and replies never comes back. Mirrored on every node, a
    surviving mirror takes over. (Our own queues are quorum queues and need nothing.)
    """
    yield {
        "name": "cqo-consumer-queues",
        "pattern": consumer_queue_pattern(),
        "apply-to": "queues",
        "priority": 10,
        "definition": {"delivery-limit": int(delivery_limit),
                       "dead-letter-exchange": DEAD.name},
    }
    if cluster:
        yield {
            "name": "cqo-nameko-queues",
            "pattern": nameko_queue_pattern(),
            "apply-to": "queues",
            "priority": 10,
            "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"},
        }


def management_endpoint(management_url: str) -> tuple[str, tuple[str, str]]:
    parts = urlsplit(management_url)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return base, (parts.username or "guest", parts.password or "guest")


def apply_policies(management_url: str, vhost: str,
                   delivery_limit: int = DEFAULT_DELIVERY_LIMIT, *, cluster: bool = False) -> list[str]:
    """PUT the policies into `vhost` through the management API; returns their names."""
    base, auth = management_endpoint(management_url)
    names = []
    for policy in policy_definitions(delivery_limit, cluster=cluster):
        body = {k: v for k, v in policy.items() if k != "name"}
        resp = requests.put(f"{base}/api/policies/{quote(vhost, safe='')}/"
                            f"{quote(policy['name'], safe='')}", json=body, auth=auth, timeout=15)
        resp.raise_for_status()
        names.append(policy["name"])
    return names


# -- multi-site (docs/architecture.md, "Trust between sites") ---------------------------------------

def shovel_queues(county: str) -> dict[str, list[Queue]]:
    """Durable staging queues the shovels drain: filings on the county broker,
    decisions and notices for this county on the city broker; the county's domain
    events (`filing.<county>.*` on `cqo.events`) on the county broker too, for the
    city's subscribers. Declare them with `declare()` on the respective side before
    creating the shovels, so nothing published while a shovel is down is lost."""
    county = check_county(county)
    return {
        "county": [quorum_queue(f"shovel.{county}.filings",
                                [(FILINGS, f"filing.{county}.*")], dead_letter=False),
                   quorum_queue(f"shovel.{county}.events",
                                [(EVENTS, f"filing.{county}.*")], dead_letter=False)],
        "city": [
            quorum_queue(f"shovel.{county}.decisions",
                         [(DECISIONS, f"decision.{county}")], dead_letter=False),
            quorum_queue(f"shovel.{county}.notices",
                         [(NOTICES, f"notice.{county}"), (NOTICES, NOTICE_ALL)],
                         dead_letter=False),
        ],
    }


def shovel_definitions(county: str, county_amqp_uri: str, city_amqp_uri: str, *,
                       reconnect_delay: int = 5, prefetch: int = 200) -> list[dict]:
    """Dynamic shovel parameters (management API: PUT
    /api/parameters/shovel/{vhost}/{name} with {"value": ...}) for one county.

    `ack-mode: on-confirm` acks the source only after the destination confirmed, so a
    shovel crash duplicates at worst (the inbox absorbs that) and never loses. The
    original routing key is kept (no dest-exchange-key), and so are the properties:
    a county's `user_id` travels on, so the shovel's user needs the `impersonator` tag.
    `src-delete-after: never`: a shovel runs until deleted. Which vhost each lives in
    and which users it connects as: shared/messaging/sites.py.
    """
    county = check_county(county)
    common = {
        "src-protocol": "amqp091",
        "dest-protocol": "amqp091",
        "ack-mode": "on-confirm",
        "src-delete-after": "never",
        "src-prefetch-count": prefetch,
        "reconnect-delay": reconnect_delay,
        # x-shovelled (which shovel, from which vhost and queue) and
        # x-shovelled-timestamp: the hop a filing's trace reads at the city
        "dest-add-forward-headers": True,
        "dest-add-timestamp-header": True,
    }
    routes = [
        (f"cqo-filings-{county}", county_amqp_uri, f"shovel.{county}.filings",
         city_amqp_uri, FILINGS.name),
        (f"cqo-events-{county}", county_amqp_uri, f"shovel.{county}.events",
         city_amqp_uri, EVENTS.name),
        (f"cqo-decisions-{county}", city_amqp_uri, f"shovel.{county}.decisions",
         county_amqp_uri, DECISIONS.name),
        (f"cqo-notices-{county}", city_amqp_uri, f"shovel.{county}.notices",
         county_amqp_uri, NOTICES.name),
    ]
    # a shovel declares its source queue when it starts: with the staging queue's own
    # arguments, so it is the same quorum queue whichever of the two comes first
    # (definitions loaded at boot start the shovels before the queues are declared)
    staging = {q.name: dict(q.queue_arguments) for side in shovel_queues(county).values()
               for q in side}
    return [
        {"component": "shovel", "name": name,
         "value": {**common, "src-uri": src_uri, "src-queue": src_queue,
                   "src-queue-args": staging[src_queue],
                   "dest-uri": dest_uri, "dest-exchange": dest_exchange}}
        for name, src_uri, src_queue, dest_uri, dest_exchange in routes
    ]
