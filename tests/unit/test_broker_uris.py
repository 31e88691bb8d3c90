"""A clustered broker's AMQP_URI (kombu's failover form): its nodes, another vhost on
each, and no password of any node in nameko's reconnect warnings."""
from __future__ import annotations

import logging

from shared.messaging.broker import RedactUris, node_uris, with_vhost

URI = "amqp://cqo:s3cret@rmq1:5672/cqo-city;amqp://cqo:s3cret@rmq2:5672/cqo-city; amqp://cqo:s3cret@rmq3:5672/cqo-city"


def test_each_node_in_order():
    assert node_uris(URI) == [f"amqp://cqo:s3cret@rmq{i}:5672/cqo-city" for i in (1, 2, 3)]
    assert node_uris("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]


def test_another_vhost_on_every_node():
    assert with_vhost(URI, "cqo/130921") == ";".join(
        f"amqp://cqo:s3cret@rmq{i}:5672/cqo%2F130921" for i in (1, 2, 3))
    assert with_vhost("amqp://guest:guest@h/", "v") == "amqp://guest:guest@h/v"


def test_nameko_reconnect_warning_names_no_password():
    # nameko's own text: sanitize_url masked the first node's password only
    from nameko.utils import sanitize_url

    record = logging.LogRecord("nameko.messaging", logging.WARNING, __file__, 1,
                               "Error connecting to broker at {} ({}).\nRetrying in {} seconds."
                               .format(sanitize_url(URI), "ECONNREFUSED", 0), None, None)
    assert "s3cret" in record.getMessage()
    assert RedactUris().filter(record)
    assert "s3cret" not in record.getMessage()
    assert record.getMessage().count("rmq") == 3
    args = logging.LogRecord("x", logging.WARNING, __file__, 1, "at %s", (URI,), None)
    RedactUris().filter(args)
    assert "s3cret" not in args.getMessage()
