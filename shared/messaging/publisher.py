"""A small confirming publisher: one lazily opened connection, each publish waits for
its confirm and fails if the message was returned as unroutable. For dead letters and
replays, which are rare; the outbox relay batches its confirms instead."""
from __future__ import annotations

import threading

from kombu import Connection, Producer

from shared.messaging import broker, topology


class Unroutable(Exception):
    pass


def login_user(amqp_uri: str) -> str | None:
    """The broker user named in `amqp_uri` (the first of a failover list), or None when
    it names none. Set as a message's AMQP `user_id`, the broker checks it is the user
    who logged in, so a consumer can trust it (multi-site, docs/multisite.md)."""
    return Connection(amqp_uri).userid or None


def close_connection(conn, graceful: bool = False) -> None:
    """Close a kombu connection; after an error, drop it without a handshake."""
    if graceful:
        try:
            # a half-open socket must not hang the closing handshake
            conn.connection.transport.sock.settimeout(2.0)
            conn.close()
            return
        except Exception:
            pass
    try:
        conn.collect()
    except Exception:  # pragma: no cover - best effort
        pass


class ConfirmingPublisher:
    """Thread-safe (one publish at a time); reconnects once if the cached connection died."""

    def __init__(self, amqp_uri: str, *, ssl=None, confirm_timeout: float = 10.0,
                 declare=()):
        self.amqp_uri, self.ssl, self.confirm_timeout = amqp_uri, ssl, confirm_timeout
        self.declare = list(declare)  # queues declared (with all exchanges) on connect
        self._lock = threading.Lock()
        self._conn = self._producer = None
        self._returned: str | None = None

    def _connect(self):
        conn = Connection(self.amqp_uri, ssl=self.ssl, heartbeat=0, connect_timeout=5,
                          transport_options={"confirm_publish": True})
        try:
            # one attempt per node (a cluster's failover URI); our callers have their own back-off
            broker.connect(conn)
            channel = conn.channel()
            topology.declare(conn, self.declare)
            self._producer = Producer(channel, on_return=self._on_return)
        except BaseException:
            close_connection(conn)
            raise
        self._conn = conn

    def _on_return(self, exc, exchange, routing_key, message):
        self._returned = f"{getattr(exc, 'reply_text', exc)} ({exchange!r}, {routing_key!r})"

    def close(self, graceful: bool = False) -> None:
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None:
            close_connection(conn, graceful)

    def publish(self, body: bytes, exchange: str, routing_key: str, *, headers: dict,
                message_id: str | None, content_type: str | None,
                content_encoding: str | None) -> None:
        properties = {"message_id": message_id} if message_id else {}
        with self._lock:
            for attempt in (1, 2):  # the cached connection may have died since last use
                try:
                    if self._conn is None:
                        self._connect()
                    self._returned = None
                    self._producer.publish(
                        body, exchange=exchange, routing_key=routing_key, mandatory=True,
                        headers=headers, delivery_mode=2,
                        content_type=content_type or "application/octet-stream",
                        content_encoding=content_encoding, retry=False,
                        confirm_timeout=self.confirm_timeout, **properties)
                except Exception:
                    self.close()
                    if attempt == 2:
                        raise
                    continue
                if self._returned:
                    raise Unroutable(self._returned)
                return
