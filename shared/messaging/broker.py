"""One broker or a cluster of them behind one AMQP_URI.

A clustered broker is configured by listing every node in kombu's failover form,
`amqp://u:p@rmq1:5672/vh;amqp://u:p@rmq2:5672/vh;amqp://u:p@rmq3:5672/vh`
(docs/multisite.md, "The clustered city broker"). kombu's `Connection` takes that as is
and moves to the next node only when it *retries* a failed connect; nameko's consumers
retry for ever and so fail over by themselves, but a caller that connects once and has
a back-off of its own (`ensure_connection(max_retries=0)`: the outbox relay, the
dead-letter publisher, the health check) would try the first node, dead or not, every
time. `connect` tries each node once per round instead.
"""
from __future__ import annotations

import logging
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from shared.messaging.sites import redact_uri


def node_uris(amqp_uri: str) -> list[str]:
    """Each node's URI of a (possibly) failover AMQP_URI, in order."""
    return [part.strip() for part in amqp_uri.split(";") if part.strip()]


def with_vhost(amqp_uri: str, vhost: str) -> str:
    """The same nodes, each with virtual host `vhost`."""
    out = []
    for uri in node_uris(amqp_uri):
        parts = urlsplit(uri)
        out.append(urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""),
                               parts.query, "")))
    return ";".join(out)


def vhost_of(amqp_uri: str) -> str:
    """The virtual host of an AMQP_URI (its first node's: every node names the same)."""
    nodes = node_uris(amqp_uri)
    return unquote(urlsplit(nodes[0]).path[1:] if nodes else "") or "/"


def connect(connection, *, rounds: int = 1, interval: float = 0.0,
            timeout: float | None = None):
    """Connect a kombu `connection`, trying every node of its failover list once per
    round (the next node at once, `interval` seconds between rounds); raises the last
    error when no node answered. With one node: `rounds` attempts. `timeout` bounds each
    node's attempt (a refused node costs nothing, a silent one up to that), so the whole
    call takes at most `timeout` times the attempts."""
    nodes = max(1, len(connection.alt or ()))
    attempts = max(1, rounds) * nodes
    # kombu switches to the next node in its errback and sleeps only after a full cycle
    return connection.ensure_connection(max_retries=attempts - 1,
                                        interval_start=interval, interval_step=0,
                                        interval_max=interval,
                                        timeout=None if timeout is None else timeout * attempts)


class RedactUris(logging.Filter):
    """nameko's "Error connecting to broker at ..." masks the first node's password
    only (its `sanitize_url` reads one URL): every password of a failover URI goes."""

    def filter(self, record):
        if "://" in str(record.msg) or any("://" in str(a) for a in _args(record)):
            record.msg, record.args = redact_uri(record.getMessage()), None
        return True


def _args(record) -> tuple:
    if isinstance(record.args, dict):
        return tuple(record.args.values())
    return record.args or ()


def redact_nameko_logs() -> None:
    """Installs RedactUris on nameko's messaging logger (once)."""
    logger = logging.getLogger("nameko.messaging")
    if not any(isinstance(f, RedactUris) for f in logger.filters):
        logger.addFilter(RedactUris())
