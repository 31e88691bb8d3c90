"""A failover AMQP_URI whose first node is down, on the local broker: every place that
connects once (with a back-off of its own) reaches the next node. kombu alone tries
only the first node on a single attempt (`ensure_connection(max_retries=0)`), which
is why `shared.messaging.broker.connect` exists. The three-node cluster losing a node
under load is tests/e2e/test_city_cluster.py (containers)."""
from __future__ import annotations

import socket
import uuid

import pytest
from kombu import Connection
from kombu.exceptions import OperationalError

from cqo.startup import wait_for_dependencies
from shared.messaging import topology
from shared.messaging.broker import connect
from shared.messaging.publisher import ConfirmingPublisher


@pytest.fixture
def failover_uri(broker):
    """A dead node (a port nobody listens on: refused at once) listed before the
    local broker, on a vhost of the test's own."""
    vhost = f"cqo_failover_{uuid.uuid4().hex[:8]}"
    uri = broker.create_vhost(vhost)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    yield f"amqp://guest:guest@127.0.0.1:{dead_port}/{vhost};{uri}"
    broker.delete_vhost(vhost)


def test_one_attempt_reaches_the_next_node(failover_uri):
    with Connection(failover_uri, connect_timeout=3) as conn:
        with pytest.raises(OperationalError):  # kombu's single attempt: the first node only
            conn.ensure_connection(max_retries=0)
    with Connection(failover_uri, connect_timeout=3) as conn:
        dead_port = Connection(failover_uri).port
        connect(conn)
        assert conn.connected and conn.port != dead_port


def test_the_confirming_publisher_and_the_start_wait_fail_over(failover_uri):
    wait_for_dependencies({"AMQP_URI": failover_uri}, timeout=10)
    publisher = ConfirmingPublisher(failover_uri, declare=[topology.dead_queue()])
    try:
        publisher.publish(b"{}", topology.DEAD.name, "", headers={}, message_id="m1",
                          content_type="application/json", content_encoding="utf-8")
    finally:
        publisher.close()
    with Connection(failover_uri) as conn:
        connect(conn)
        assert conn.channel().queue_declare(topology.DEAD_QUEUE_NAME, passive=True).message_count == 1
