"""A `consume` entrypoint that hands the handler the delivery, not just the body.

nameko 2.14's `consume` passes only the decoded body, lets kombu decode inside the
consumer thread (a body that is not valid JSON raises there and kills the whole
container, then crash-loops on redelivery) and acks even when the handler raises.
This entrypoint decodes in the worker, so a malformed body reaches the handler's
failure wrapper (`dead.dead_letter_on_error`) as `message.decode_error`, and it
requeues only when the handler raises `RequeueMessage` (dead-lettering itself
failed, or a transient error): everything else is acked.

    @consume(topology.intake_queue())
    @dead_letter_on_error("registry.intake")
    def on_filing(self, body, message): ...   # message: Delivery
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import kombu

from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, HEADER_PREFIX
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer, QueueConsumer

from shared.messaging import broker, topology
from shared.messaging.publisher import ConfirmingPublisher
from shared.metrics import MESSAGES_CONSUMED

log = logging.getLogger(__name__)


class RequeueMessage(Exception):
    """Raised by a handler to have its message returned to the queue, not acked."""


class MessageDecodeError(ValueError):
    """The body is not JSON in a supported encoding."""


@dataclass
class Delivery:
    """What a handler needs to know about the message besides its body."""

    body: Any
    raw: bytes
    message_id: str | None
    headers: dict
    exchange: str
    routing_key: str
    queue: str
    content_type: str | None
    content_encoding: str | None
    redelivered: bool
    user_id: str | None = None
    decode_error: Exception | None = None
    amqp_uri: str | None = None  # where the failure wrapper publishes dead letters
    amqp_ssl: Any = None
    publisher: Any = field(default=None, repr=False)  # the container's ConfirmingPublisher
    message: Any = field(default=None, repr=False)  # the kombu message (ack is ours)

    @property
    def delivery_count(self) -> int:
        """Previous deliveries as counted by a quorum queue (0 on the first)."""
        try:
            return int(self.headers.get("x-delivery-count") or 0)
        except (TypeError, ValueError):
            return 0


def raw_body(message) -> bytes:
    body = message.body
    if isinstance(body, str):  # py-amqp decoded it already (content_encoding was set)
        return body.encode(message.content_encoding or "utf-8")
    return bytes(body)


def decode_json(raw: bytes, content_type: str | None, content_encoding: str | None) -> Any:
    if content_type not in (None, "", "application/json"):
        raise MessageDecodeError(f"unsupported content type {content_type!r}")
    if content_encoding in (None, "", "binary"):  # JSON is UTF-8 unless told otherwise
        content_encoding = "utf-8"
    try:
        return json.loads(raw.decode(content_encoding))
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        raise MessageDecodeError(f"body is not valid JSON: {exc}") from exc


def make_delivery(message, queue_name: str, *, amqp_uri=None, amqp_ssl=None, publisher=None,
                  decode_error: Exception | None = None) -> Delivery:
    props = message.properties or {}
    info = message.delivery_info or {}
    raw = raw_body(message)
    body = None
    if decode_error is None:
        try:
            body = decode_json(raw, message.content_type, message.content_encoding)
        except MessageDecodeError as exc:
            decode_error = exc
    return Delivery(
        body=body, raw=raw, message_id=props.get("message_id"),
        headers=dict(message.headers or {}), exchange=info.get("exchange", ""),
        routing_key=info.get("routing_key", ""), queue=queue_name,
        content_type=message.content_type, content_encoding=message.content_encoding,
        redelivered=bool(info.get("redelivered")), user_id=props.get("user_id"),
        decode_error=decode_error, amqp_uri=amqp_uri, amqp_ssl=amqp_ssl, publisher=publisher,
        message=message)


class RawQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but kombu never decodes: the worker does.

    It also holds the container's dead-letter publisher (one connection, opened on
    first use, closed after the last worker)."""

    def setup(self):
        super().setup()
        broker.redact_nameko_logs()  # its reconnect warnings name every node of a cluster
        config = self.container.config
        self.publisher = ConfirmingPublisher(config[AMQP_URI_CONFIG_KEY],
                                             ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                             declare=[topology.dead_queue()])

    def stop(self):
        super().stop()
        self.publisher.close(graceful=True)

    def kill(self):
        super().kill()
        self.publisher.close()

    # nameko ignores only amqp's ConnectionError here; a link that was reset (broker
    # crash, network failure) raises a socket error (BrokenPipeError, ConnectionResetError)
    # in the worker, and nameko then kills the whole container. The broker requeues
    # the unacknowledged message anyway and the inbox absorbs the redelivery.
    def ack_message(self, message):
        try:
            super().ack_message(message)
        except OSError as exc:
            log.warning("could not ack message %s, the broker connection is gone (%s); "
                        "it will be redelivered", (message.properties or {}).get("message_id"), exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except OSError as exc:
            log.warning("could not requeue message %s, the broker connection is gone (%s)",
                        (message.properties or {}).get("message_id"), exc)

    def get_consumers(self, consumer_cls, channel):
        own_qos = partial(_OwnQosConsumer, *consumer_cls.args, **consumer_cls.keywords)
        for provider in self._providers:
            consumer = own_qos(
                queues=[provider.queue],
                on_message=partial(self._on_raw_message, provider),
                on_decode_error=partial(self._on_undecodable, provider),
                prefetch_count=provider.prefetch_count() or self.prefetch_count,
            )
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _on_raw_message(self, provider, message):
        self.handle_message(provider, None, message)

    def _on_undecodable(self, provider, message, exc):
        # e.g. a compressed body that fails to decompress: still the handler's case
        ident = f"{type(provider).__name__}.handle_message[undecodable]"
        self.container.spawn_managed_thread(
            partial(provider.handle_message, None, message, decode_error=exc), identifier=ident)


class _OwnQosConsumer(kombu.Consumer):
    """Sets its own prefetch right before it starts: RabbitMQ applies a (non-global)
    basic.qos to the consumers started after it on the channel, and all of a
    container's queues share one channel."""

    def consume(self, no_ack=None):
        if self.prefetch_count is not None:
            self.qos(prefetch_count=self.prefetch_count)
        return super().consume(no_ack)


class MessageConsumer(Consumer):
    """`prefetch`: deliveries of this queue in flight at once, or a function of the
    service's config giving it (default: the container's max_workers). A queue of
    large, CPU-bound messages does better with a few: each finishes (and answers)
    sooner instead of all of them interleaving until the end."""

    queue_consumer = RawQueueConsumer()

    def __init__(self, queue, prefetch: int | Callable[[dict], int] | None = None, **kwargs):
        kwargs.pop("requeue_on_error", None)  # decided per exception, see handle_message_processed
        kwargs.setdefault("expected_exceptions", (RequeueMessage,))  # logged as warnings
        self.prefetch = prefetch
        super().__init__(queue, requeue_on_error=False, **kwargs)

    def prefetch_count(self) -> int | None:
        if callable(self.prefetch):
            return self.prefetch(self.container.config)
        return self.prefetch

    def delivery(self, message, decode_error=None) -> Delivery:
        config = self.container.config
        return make_delivery(message, self.queue.name, amqp_uri=config[AMQP_URI_CONFIG_KEY],
                             amqp_ssl=config.get(AMQP_SSL_CONFIG_KEY),
                             publisher=self.queue_consumer.publisher, decode_error=decode_error)

    def handle_message(self, body, message, decode_error=None):
        delivery = self.delivery(message, decode_error)
        # only nameko's own context headers become worker context (call id stack, ...)
        prefix = HEADER_PREFIX + "."
        context_data = {k[len(prefix):]: v for k, v in delivery.headers.items()
                        if k.startswith(prefix)}
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(self, (delivery.body, delivery), {},
                                        context_data=context_data,
                                        handle_result=handle_result)
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None and issubclass(exc_info[0], RequeueMessage):
            self.queue_consumer.requeue_message(message)
            MESSAGES_CONSUMED.labels(self.queue.name, "requeued").inc()
            return
        if exc_info is not None:
            # an unwrapped handler: nameko has logged it; the message is acked (lost)
            log.error("handler on %s raised %s without a failure wrapper; message %s acked",
                      self.queue.name, exc_info[0].__name__,
                      (message.properties or {}).get("message_id"))
        self.queue_consumer.ack_message(message)
        MESSAGES_CONSUMED.labels(self.queue.name, "acked").inc()


consume = MessageConsumer.decorator


class BatchMessageConsumer(MessageConsumer):
    """Hands the handler the deliveries that arrived together, up to `max_batch`, so
    that it applies them in one transaction: a consumer of many small messages is
    otherwise bound by one commit per message (docs/architecture.md, "Batched
    consumers"). One batch at a time; the next gathers what arrived meanwhile.

    The handler `(self, deliveries: list[Delivery])` returns the deliveries to requeue
    (or None: ack all). Each is acked or requeued only after the handler returned; if
    it raises, all are requeued (never lost; the inbox absorbs the redelivery).
    `dead.dead_letter_batch_on_error` gives the handler its per-message fallback."""

    def __init__(self, queue, max_batch: int = 100, prefetch=None, **kwargs):
        self.max_batch = max_batch
        # room for the batch being applied and the next one arriving meanwhile
        super().__init__(queue, prefetch=prefetch or 2 * max_batch, **kwargs)

    def setup(self):
        super().setup()
        self._pending: list[Delivery] = []
        self._draining = False

    def handle_message(self, body, message, decode_error=None):
        self._pending.append(self.delivery(message, decode_error))
        if not self._draining:
            self._draining = True
            self.container.spawn_managed_thread(self._drain, identifier=f"{self.queue.name}.batches")

    def _drain(self):
        from eventlet.event import Event  # consumers run under eventlet; keep import light

        try:
            while self._pending:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                done = Event()
                try:
                    self.container.spawn_worker(self, (batch,), {}, context_data={},
                                                handle_result=partial(self._settle, batch, done))
                except ContainerBeingKilled:
                    for delivery in batch + self._pending:
                        self.queue_consumer.requeue_message(delivery.message)
                    self._pending = []
                    return
                done.wait()
        finally:
            self._draining = False

    def _settle(self, batch, done, worker_ctx, result, exc_info):
        try:
            if exc_info is not None:
                log.error("batch handler on %s raised %s; %d message(s) requeued", self.queue.name,
                          exc_info[0].__name__, len(batch))
                requeue = {id(d) for d in batch}
            else:
                requeue = {id(d) for d in result or ()}
            for delivery in batch:
                if id(delivery) in requeue:
                    self.queue_consumer.requeue_message(delivery.message)
                else:
                    self.queue_consumer.ack_message(delivery.message)
            requeued = len(requeue)
            MESSAGES_CONSUMED.labels(self.queue.name, "acked").inc(len(batch) - requeued)
            if requeued:
                MESSAGES_CONSUMED.labels(self.queue.name, "requeued").inc(requeued)
        finally:
            done.send()
        return result, exc_info


consume_batch = BatchMessageConsumer.decorator
