"""Outbox, inbox and dead letters on the real broker and both databases.

Every test uses a county code of its own (`t` + hex), so its queues
(`filing.<county>.decisions`, ...) and routing keys are its own inside the run's vhost.
"""
import json
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import requests
from kombu import Connection, Queue
from nameko.containers import ServiceContainer
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.exc import OperationalError

from shared.dependencies import DatabaseProvider
from shared.errors import ValidationFailed
from shared.messaging import topology
from tests.support import polling
from shared.messaging.consumer import consume, consume_batch, raw_body
from shared.messaging.dead import dead_letter_batch_on_error, dead_letter_on_error, list_dead_letters, replay
from shared.messaging.inbox import Inbox
from shared.messaging.models import DeadLetter, OutboxMessage
from shared.messaging.outbox import Outbox, OutboxRelay, OutboxRelayProvider
from shared.migrate import upgrade
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

metadata = MetaData()
effects = Table("test_effects", metadata,
                Column("id", Integer, primary_key=True, autoincrement=True),
                Column("message_id", String(128), nullable=False),
                Column("n", Integer, nullable=False))


# -- helpers --------------------------------------------------------------------------

def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    return polling.wait_for(predicate, timeout, what, interval)


@pytest.fixture
def db(database):
    upgrade(database)
    metadata.create_all(database.engine)
    return database


@pytest.fixture
def county(amqp_uri):
    """A county code of this test's own; its queues are deleted afterwards."""
    code = "t" + secrets.token_hex(4)
    yield code
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for q in topology.county_queues(code)[:2]:
            try:
                q(channel).delete()
            except Exception:
                channel = conn.channel()


def declare(amqp_uri, queues):
    with Connection(amqp_uri) as conn:
        topology.declare(conn, queues)


def publish_raw(amqp_uri, body, routing_key, *, exchange="cqo.decisions", message_id=None,
                content_type="application/json"):
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=exchange, routing_key=routing_key,
                                message_id=message_id or str(uuid.uuid4()),
                                content_type=content_type, content_encoding="utf-8",
                                delivery_mode=2)


def drain_queue(amqp_uri, queue: Queue, expect: int, timeout=20.0):
    """basic_get until `expect` messages arrived (then whatever else is there)."""
    got = []
    with Connection(amqp_uri) as conn:
        bound = queue(conn.channel())

        def more():
            while (m := bound.get(no_ack=True)) is not None:
                got.append(m)
            return len(got) >= expect
        wait_for(more, timeout, what=f"{expect} messages on {queue.name}")
    return got


def effect_rows(db):
    with db.unit_of_work() as uow:
        return uow.session.execute(select(effects.c.message_id, effects.c.n)).all()


def outbox_rows(db):
    with db.unit_of_work() as uow:  # plain rows: the session is gone afterwards
        return uow.session.execute(select(*OutboxMessage.__table__.c)
                                   .order_by(OutboxMessage.seq)).all()


def probe_service(queue, consumer_name, calls, *, dead_db=None, with_relay=False,
                  forward_to=None, requeue_delay=0.05, max_transient_retries=5):
    """A nameko service: applies {"n": ...} through the inbox into test_effects."""
    dead_db_attr = (lambda svc: dead_db) if dead_db is not None else "db"

    class Probe:
        name = "probe_" + secrets.token_hex(4)
        db = DatabaseProvider(None, "unused.db")
        if with_relay:
            relay = OutboxRelayProvider("db", poll_interval=30.0)  # only a wake-up is fast

        @consume(queue)
        @dead_letter_on_error(consumer_name, database=dead_db_attr, requeue_delay=requeue_delay,
                              max_transient_retries=max_transient_retries)
        def handle(self, body, message):
            calls.append((message.message_id, message.redelivered))
            if body.get("poison"):
                raise ValidationFailed("故意失败的消息", code="PROBE_POISON")
            if body.get("transient"):
                raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
            n = body["n"]  # KeyError on a malformed payload
            with self.db.unit_of_work() as uow:
                if Inbox.first_time(uow, consumer_name, message.message_id):
                    uow.session.execute(effects.insert().values(message_id=message.message_id, n=n))
                    if forward_to:
                        Outbox.add(uow, "cqo.notices", forward_to, {"n": n, "名": "通知"})
                uow.commit()

    return Probe


@contextmanager
def running(service_cls, config):
    container = ServiceContainer(service_cls, config)
    container.start()
    try:
        yield container
    finally:
        container.stop()


@pytest.fixture
def service_config(amqp_uri, db_config):
    return {"AMQP_URI": amqp_uri, **db_config, "max_workers": 10}


@contextmanager
def relay_running(relay):
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        relay.wake()
        thread.join(timeout=15)
        assert not thread.is_alive()


def proxied_uri(amqp_uri, proxy):
    parts = urlsplit(amqp_uri)
    netloc = f"{parts.username}:{parts.password}@{proxy.host}:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- (a) nothing lost, nothing doubled across a cut mid-publish ------------------------

def test_cut_mid_publish_loses_nothing_and_applies_each_message_once(db, county, amqp_uri,
                                                                    service_config):
    total = 600
    queue = topology.decisions_queue(county)
    declare(amqp_uri, [queue])
    with db.unit_of_work() as uow:
        for n in range(total):
            Outbox.add(uow, "cqo.decisions", f"decision.{county}", {"n": n, "备注": "批量" * 40})
        uow.commit()

    broker = urlsplit(amqp_uri)
    calls = []
    with TcpProxy(broker.hostname, broker.port or 5672) as proxy, \
            running(probe_service(queue, "probe.cut", calls), service_config):
        relay = OutboxRelay(db, proxied_uri(amqp_uri, proxy), batch_size=100,
                            base_backoff=0.05, max_backoff=0.5, reconnect_max=0.3)
        # ~600 bytes a message on the wire: the cut lands in the third or fourth batch
        proxy.cut_after(150_000, pause=True)
        with relay_running(relay):
            assert proxy.wait_cut(timeout=20)
            wait_for(lambda: relay.stats["broker_errors"] >= 1, what="the relay to see the cut")
            sent_at_cut = sum(1 for r in outbox_rows(db) if r.sent_at is not None)
            assert 0 < sent_at_cut < total, sent_at_cut
            wait_for(lambda: proxy.refused >= 1, what="a reconnect refused while paused")
            proxy.resume()
            wait_for(lambda: relay.backlog() == 0, timeout=30, what="an empty outbox")
            wait_for(lambda: len(effect_rows(db)) >= total, timeout=30, what="all effects")
        # a late duplicate would show up here
        wait_for(lambda: len(calls) >= total, what="all deliveries")
    rows = effect_rows(db)
    assert len(rows) == total
    assert sorted(n for _, n in rows) == list(range(total))
    assert len({m for m, _ in rows}) == total
    assert proxy.connections >= 2  # it really reconnected
    assert any(r.attempts > 0 for r in outbox_rows(db))  # unconfirmed rows were retried


# -- (b) a duplicate delivery is applied once -----------------------------------------

def test_the_same_message_twice_is_applied_once(db, county, amqp_uri, service_config):
    queue = topology.decisions_queue(county)
    declare(amqp_uri, [queue])
    calls = []
    message_id = str(uuid.uuid4())
    with running(probe_service(queue, "probe.dup", calls), service_config):
        for _ in range(2):
            publish_raw(amqp_uri, b'{"n": 7}', f"decision.{county}", message_id=message_id)
        wait_for(lambda: len(calls) == 2, what="two deliveries")
    assert effect_rows(db) == [(message_id, 7)]


# -- (c) poison messages go to cqo.dead, the consumer keeps going ----------------------

def test_malformed_messages_are_dead_lettered_and_the_consumer_goes_on(db, county, amqp_uri,
                                                                       service_config):
    queue = topology.decisions_queue(county)
    watch = Queue(f"test.deadwatch.{county}", exchange=topology.DEAD, durable=False,
                  auto_delete=False)
    declare(amqp_uri, [queue, watch])
    calls = []
    rk = f"decision.{county}"
    ids = {name: str(uuid.uuid4()) for name in ("json", "key", "domain", "good")}
    try:
        with running(probe_service(queue, "probe.dead", calls), service_config):
            publish_raw(amqp_uri, b"{not json", rk, message_id=ids["json"])
            publish_raw(amqp_uri, b'{"x": 1}', rk, message_id=ids["key"])
            publish_raw(amqp_uri, b'{"poison": true}', rk, message_id=ids["domain"])
            publish_raw(amqp_uri, b'{"n": 1}', rk, message_id=ids["good"])
            dead = drain_queue(amqp_uri, watch, expect=3)
            wait_for(lambda: effect_rows(db), what="the good message's effect")
            by_id = {m.properties["message_id"]: m for m in dead}
            assert set(by_id) == {ids["json"], ids["key"], ids["domain"]}
            codes = {k: by_id[ids[k]].headers["x-error-code"] for k in ("json", "key", "domain")}
            assert codes == {"json": "MALFORMED_MESSAGE", "key": "MALFORMED_PAYLOAD",
                             "domain": "PROBE_POISON"}
            for m in dead:
                h = m.headers
                assert h["x-error-reason"]
                assert h["x-original-exchange"] == "cqo.decisions"
                assert h["x-original-routing-key"] == rk
                assert h["x-consumer"] == "probe.dead"
            assert raw_body(by_id[ids["json"]]) == b"{not json"  # the original bytes
            assert by_id[ids["domain"]].headers["x-error-reason"] == "故意失败的消息"
            assert effect_rows(db) == [(ids["good"], 1)]

            # the operator view, and a replay back to the original routing key
            # published_at is marked right after the broker confirmed the copy, which the
            # watch queue may deliver first: wait for the mark, do not race it
            listed = wait_for(lambda: (found := list_dead_letters(db))
                              and all(d["published_at"] is not None for d in found) and found,
                              what="every dead letter marked published")
            assert {d["message_id"] for d in listed} == set(by_id)
            first = next(d for d in listed if d["message_id"] == ids["key"])
            assert replay(db, amqp_uri, first["id"]) == ids["key"]
            # still malformed: dead-lettered again, as a new record
            again = drain_queue(amqp_uri, watch, expect=1)
            assert again[0].properties["message_id"] == ids["key"]
            assert again[0].headers["x-replay-of"] == first["id"]
        with db.unit_of_work() as uow:
            rows = uow.session.execute(select(*DeadLetter.__table__.c).where(
                DeadLetter.message_id == ids["key"]).order_by(DeadLetter.id)).all()
        assert [r.replayed_at is not None for r in rows] == [True, False]
    finally:
        with Connection(amqp_uri) as conn:
            watch(conn.channel()).delete()


def test_when_dead_lettering_fails_the_message_is_requeued_not_lost(db, county, amqp_uri,
                                                                    service_config, tmp_path):
    from shared.db import Database
    queue = topology.decisions_queue(county)
    declare(amqp_uri, [queue])
    broken = Database(f"sqlite:///{tmp_path}/missing/dir/dead.db")  # cannot be opened
    calls = []
    message_id = str(uuid.uuid4())
    with running(probe_service(queue, "probe.requeue", calls, dead_db=broken), service_config):
        publish_raw(amqp_uri, b'{"poison": true}', f"decision.{county}", message_id=message_id)
        wait_for(lambda: len(calls) >= 2, what="a redelivery")
    broken.dispose()
    assert calls[0] == (message_id, False)
    assert calls[1] == (message_id, True)  # requeued, not acked
    (got,) = drain_queue(amqp_uri, queue, expect=1)  # and still there after the stop
    assert got.properties["message_id"] == message_id


def test_transient_errors_are_retried_then_dead_lettered(db, county, amqp_uri, service_config):
    queue = topology.decisions_queue(county)
    watch = Queue(f"test.deadwatch.{county}", exchange=topology.DEAD, durable=False)
    declare(amqp_uri, [queue, watch])
    calls = []
    message_id = str(uuid.uuid4())
    try:
        with running(probe_service(queue, "probe.transient", calls, max_transient_retries=2),
                     service_config):
            publish_raw(amqp_uri, b'{"transient": true}', f"decision.{county}",
                        message_id=message_id)
            (dead,) = drain_queue(amqp_uri, watch, expect=1)
        # requeued twice (the quorum queue counts deliveries), then given up on
        assert [redelivered for _, redelivered in calls] == [False, True, True]
        assert dead.headers["x-error-code"] == "TRANSIENT_ERROR_PERSISTED"
        assert dead.headers["x-delivery-count"] == 2
    finally:
        with Connection(amqp_uri) as conn:
            watch(conn.channel()).delete()


# -- (d) unroutable is not sent; (e) backlog --------------------------------------------

def test_unroutable_message_is_not_marked_sent(db, county, amqp_uri):
    queue = topology.decisions_queue(county)
    declare(amqp_uri, [queue])
    with db.unit_of_work() as uow:
        lost = Outbox.add(uow, "cqo.decisions", f"decision.nobody{county}", {"n": 1})
        ok = Outbox.add(uow, "cqo.decisions", f"decision.{county}", {"n": 2},
                        headers={"x-kind": "decision"})
        uow.commit()
    relay = OutboxRelay(db, amqp_uri)
    try:
        assert relay.publish_pending() == 1
    finally:
        relay.close()
    rows = {r.message_id: r for r in outbox_rows(db)}
    assert rows[ok].sent_at is not None
    assert rows[lost].sent_at is None
    assert rows[lost].attempts == 1
    assert "NO_ROUTE" in rows[lost].last_error
    assert rows[lost].next_attempt_at > rows[lost].created_at
    (msg,) = drain_queue(amqp_uri, queue, expect=1)
    assert msg.properties["message_id"] == ok
    assert msg.properties["delivery_mode"] == 2
    assert msg.content_type == "application/json"
    assert msg.headers["x-kind"] == "decision"
    assert msg.properties["timestamp"]
    assert relay.backlog() == 1


@pytest.fixture
def fresh_amqp_uri(broker, run_id):
    """A vhost of this test's own: no queue another test declared routes its messages."""
    vhost = f"cqo_test_{run_id}_{secrets.token_hex(3)}"
    broker.create_vhost(vhost)
    yield broker.vhost_uri(vhost)
    broker.delete_vhost(vhost)


def test_a_county_event_waits_in_the_outbox_until_a_city_queue_takes_it(db, county, fresh_amqp_uri):
    """On a broker shared with the city, a county's event published before any city
    service declared its subscribers' queue is kept, not lost; a city event without a
    subscriber is not an error (publish/subscribe)."""
    from shared.contracts import events

    amqp_uri = fresh_amqp_uri
    key = events.routing_key("filing.returned", county)
    watch = Queue(f"test.countyevents.{county}", exchange=topology.EVENTS, routing_key=key,
                  durable=False, auto_delete=False)
    declare(amqp_uri, [])
    with db.unit_of_work() as uow:
        county_event = Outbox.add(uow, topology.EVENTS.name, key, {"n": 1})
        city_event = Outbox.add(uow, topology.EVENTS.name, f"register.nobody{county}", {"n": 2})
        uow.commit()
    relay = OutboxRelay(db, amqp_uri)
    try:
        assert relay.publish_pending() == 1
        rows = {r.message_id: r for r in outbox_rows(db)}
        assert rows[city_event].sent_at is not None
        assert rows[county_event].sent_at is None and "NO_ROUTE" in rows[county_event].last_error
        declare(amqp_uri, [watch])  # a city service starts and declares the queue
        with db.unit_of_work() as uow:  # its back-off passed
            uow.session.execute(OutboxMessage.__table__.update().values(next_attempt_at=OutboxMessage.created_at))
            uow.commit()
        assert relay.publish_pending() == 1
    finally:
        relay.close()
    (msg,) = drain_queue(amqp_uri, watch, expect=1)
    assert msg.properties["message_id"] == county_event
    with Connection(amqp_uri) as conn:
        watch(conn.channel()).delete()


def test_backlog_and_oldest_pending_age(db, county, amqp_uri):
    declare(amqp_uri, [topology.decisions_queue(county)])
    relay = OutboxRelay(db, amqp_uri)
    assert relay.backlog() == 0
    assert relay.oldest_pending_age() is None
    with db.unit_of_work() as uow:
        for n in range(3):
            Outbox.add(uow, "cqo.decisions", f"decision.{county}", {"n": n})
        uow.commit()
    with db.unit_of_work() as uow:  # not committed: not in the backlog
        Outbox.add(uow, "cqo.decisions", f"decision.{county}", {"n": 99})
    assert relay.backlog() == 3
    assert relay.oldest_pending_age() >= 0
    try:
        assert relay.publish_pending() == 3
    finally:
        relay.close()
    assert relay.backlog() == 0
    assert relay.oldest_pending_age() is None


def test_add_many_stores_every_payload_as_given(db):
    """Outbox.add_many (COPY's text format on PostgreSQL): backslashes, tabs, line
    breaks and quotes arrive as they were, in order, after what was added before."""
    from shared.messaging.outbox import RawJson
    tricky = {"text": "tab\there \\ back\\slash \"quoted\" 换行\nend\r", "n": 1}
    raw = RawJson('{"raw":\n"a\tb\\\\c"}')
    with db.unit_of_work() as uow:
        Outbox.add(uow, "cqo.events", "first", {"n": 0}, message_id="m-0")
        Outbox.add_many(uow, "cqo.events", [("k.1", tricky, "m-1\\x"), ("k\t2", raw, "m-2")])
        uow.commit()
    with db.unit_of_work() as uow:
        rows = uow.session.execute(select(OutboxMessage.message_id, OutboxMessage.routing_key,
                                          OutboxMessage.payload, OutboxMessage.attempts)
                                   .order_by(OutboxMessage.seq)).all()
    assert [(r.message_id, r.routing_key, r.attempts) for r in rows] == [
        ("m-0", "first", 0), ("m-1\\x", "k.1", 0), ("m-2", "k\t2", 0)]
    assert json.loads(rows[1].payload) == tricky
    assert rows[2].payload == raw


# -- the relay inside a service -------------------------------------------------------

def test_relay_provider_publishes_what_a_worker_wrote(db, county, amqp_uri, service_config):
    decisions, notices = topology.decisions_queue(county), topology.notices_queue(county)
    declare(amqp_uri, [decisions, notices])
    calls = []
    service = probe_service(decisions, "probe.relay", calls, with_relay=True,
                            forward_to=f"notice.{county}")
    with running(service, service_config):
        for n in range(5):
            publish_raw(amqp_uri, f'{{"n": {n}}}'.encode(), f"decision.{county}")
        # the provider polls every 30 s: arriving sooner means the commit woke it
        got = drain_queue(amqp_uri, notices, expect=5, timeout=10)
    assert sorted(m.payload["n"] for m in got) == list(range(5))
    assert all(r.sent_at is not None for r in outbox_rows(db))


@pytest.mark.parametrize("db_config", ["postgresql"], indirect=True)
def test_two_relays_never_publish_a_row_twice_on_postgres(db, county, amqp_uri):
    total = 400
    queue = topology.decisions_queue(county)
    declare(amqp_uri, [queue])
    with db.unit_of_work() as uow:
        for n in range(total):
            Outbox.add(uow, "cqo.decisions", f"decision.{county}", {"n": n})
        uow.commit()
    relays = [OutboxRelay(db, amqp_uri, batch_size=25) for _ in range(2)]
    counts = [0, 0]

    def work(i):
        while (sent := relays[i].publish_pending()) or relays[i].backlog():
            counts[i] += sent

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for r in relays:
        r.close()
    assert sum(counts) == total
    assert all(counts), counts  # both took part
    got = drain_queue(amqp_uri, queue, expect=total)
    ids = [m.properties["message_id"] for m in got]
    assert len(ids) == len(set(ids)) == total


# -- broker-side definitions ----------------------------------------------------------

def test_policies_and_shovel_definitions_are_accepted_by_the_broker(broker, amqp_vhost,
                                                                   amqp_uri, county):
    assert topology.apply_policies(broker.management_url, amqp_vhost, delivery_limit=5)
    declare(amqp_uri, topology.county_queues(county))  # no 406 under the policy
    declare(amqp_uri, topology.county_queues(county))
    parts = urlsplit(broker.management_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
    auth = (parts.username or "guest", parts.password or "guest")
    vh = quote(amqp_vhost, safe="")
    policy = requests.get(f"{base}/policies/{vh}/cqo-consumer-queues", auth=auth, timeout=10)
    assert policy.json()["definition"]["delivery-limit"] == 5
    staging = topology.shovel_queues(county)
    declare(amqp_uri, staging["county"] + staging["city"])
    for shovel in topology.shovel_definitions(county, amqp_uri, amqp_uri):
        url = f"{base}/parameters/shovel/{vh}/{quote(shovel['name'], safe='')}"
        resp = requests.put(url, json={"value": shovel["value"]}, auth=auth, timeout=10)
        assert resp.status_code in (201, 204), resp.text
        requests.delete(url, auth=auth, timeout=10)
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for q in staging["county"] + staging["city"]:
            q(channel).delete()


# -- per-queue prefetch -------------------------------------------------------------------

def test_a_queue_with_its_own_prefetch_has_only_that_many_in_flight(amqp_uri, county):
    """Two queues on one container (one channel): the one declared with prefetch=1
    is handled one message at a time, the other up to max_workers at once."""
    slow_q = Queue(f"{county}.slow", durable=False, auto_delete=True)
    wide_q = Queue(f"{county}.wide", durable=False, auto_delete=True)
    release = threading.Event()
    in_flight = {"slow": 0, "wide": 0}
    peak = {"slow": 0, "wide": 0}

    def handle(name):
        in_flight[name] += 1
        peak[name] = max(peak[name], in_flight[name])
        release.wait(10)
        in_flight[name] -= 1

    class TwoQueues:
        name = "prefetch_" + secrets.token_hex(4)

        @consume(slow_q, prefetch=lambda config: int(config["SLOW_PREFETCH"]))
        def slow(self, body, message):
            handle("slow")

        @consume(wide_q)
        def wide(self, body, message):
            handle("wide")

    with running(TwoQueues, {"AMQP_URI": amqp_uri, "max_workers": 10, "SLOW_PREFETCH": "1"}):
        for n in range(4):
            for queue in (slow_q, wide_q):
                publish_raw(amqp_uri, b'{"n": %d}' % n, queue.name, exchange="")
        wait_for(lambda: in_flight["wide"] == 4 and in_flight["slow"] == 1, what="deliveries")
        time.sleep(0.5)  # time for a second "slow" delivery to show up, if one were allowed
        assert peak == {"slow": 1, "wide": 4}
        release.set()
        wait_for(lambda: in_flight == {"slow": 0, "wide": 0}, what="all handled")


def test_a_batch_consumer_applies_what_arrived_together_and_sets_bad_messages_aside(
        db, county, amqp_uri, service_config):
    """Messages waiting in the queue are applied many per transaction; a malformed one
    and one the handler refuses are dead-lettered alone, the duplicate applied once, and
    every other message applied exactly once; nothing stays unacknowledged."""
    queue = topology.decisions_queue(county)
    watch = Queue(f"test.deadwatch.{county}", exchange=topology.DEAD, durable=False, auto_delete=False)
    declare(amqp_uri, [queue, watch])
    rk = f"decision.{county}"
    sizes = []

    class BatchProbe:
        name = "batchprobe_" + secrets.token_hex(4)
        db = DatabaseProvider(None, "unused.db")

        @consume_batch(queue, max_batch=40)
        @dead_letter_batch_on_error("probe.batch", requeue_delay=0.05)
        def handle(self, messages):
            sizes.append(len(messages))
            with self.db.unit_of_work() as uow:
                for body, message in messages:
                    if body.get("poison"):
                        raise ValidationFailed("故意失败的消息", code="PROBE_POISON")
                    if Inbox.first_time(uow, "probe.batch", message.message_id):
                        uow.session.execute(effects.insert().values(message_id=message.message_id,
                                                                    n=body["n"]))
                uow.commit()

    ids = [str(uuid.uuid4()) for _ in range(100)]
    bad = {"json": str(uuid.uuid4()), "poison": str(uuid.uuid4())}
    try:
        with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            for n, message_id in enumerate(ids):
                producer.publish(json.dumps({"n": n}).encode(), exchange="cqo.decisions", routing_key=rk,
                                 message_id=message_id, content_type="application/json",
                                 content_encoding="utf-8", delivery_mode=2)
                if n == 30:
                    producer.publish(b"{not json", exchange="cqo.decisions", routing_key=rk,
                                     message_id=bad["json"], content_type="application/json",
                                     content_encoding="utf-8", delivery_mode=2)
                    producer.publish(b'{"poison": true}', exchange="cqo.decisions", routing_key=rk,
                                     message_id=bad["poison"], content_type="application/json",
                                     content_encoding="utf-8", delivery_mode=2)
                if n == 60:  # the same message again (a relay retry)
                    producer.publish(json.dumps({"n": n}).encode(), exchange="cqo.decisions",
                                     routing_key=rk, message_id=message_id, content_type="application/json",
                                     content_encoding="utf-8", delivery_mode=2)
        with running(BatchProbe, service_config):
            dead = drain_queue(amqp_uri, watch, expect=2)
            wait_for(lambda: len(effect_rows(db)) == len(ids), what="every good message applied")
        # the consumer is gone: a message it had not acknowledged would be ready again
        assert _ready(amqp_uri, queue) == 0
        assert sorted(effect_rows(db), key=lambda r: r[1]) == [(m, n) for n, m in enumerate(ids)]
        assert {m.properties["message_id"]: m.headers["x-error-code"] for m in dead} == {
            bad["json"]: "MALFORMED_MESSAGE", bad["poison"]: "PROBE_POISON"}
        assert max(sizes) > 1 and max(sizes) <= 40, sizes  # batched, never beyond max_batch
    finally:
        with Connection(amqp_uri) as conn:
            watch(conn.channel()).delete()


def _ready(amqp_uri, queue: Queue) -> int:
    with Connection(amqp_uri) as conn:
        return conn.channel().queue_declare(queue.name, passive=True)[1]
