"""The consumers' failure wrapper, and the operator's view of dead letters.

nameko acks a message even when its handler raises, and the broker cannot say why
it rejected one, so a consumer never relies on either (docs/architecture.md, "Outbox and
inbox"): on failure
the wrapper records a `DeadLetter` row (own transaction), publishes the original body
to `cqo.dead` with `x-error-code` / `x-error-reason` headers (publisher confirms),
and returns, so the message is acked and the consumer goes on. If dead-lettering
itself fails, the message is requeued instead: it is never lost.

Transient errors (the database unreachable, locked or in a deadlock) are requeued
rather than dead-lettered, up to `max_transient_retries` deliveries as counted by
the quorum queue; after that they are dead-lettered like any other failure.
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from shared import clock
from shared.db import Database
from shared.errors import Conflict, CqoError, NotFound
from shared.messaging import topology
from shared.messaging.consumer import Delivery, MessageDecodeError, RequeueMessage
from shared.messaging.models import DeadLetter
from shared.messaging.publisher import ConfirmingPublisher
from shared.metrics import MESSAGES_DEAD_LETTERED, count_after_commit

try:  # marshmallow is a project dependency; keep this module importable without it
    from marshmallow import ValidationError as SchemaValidationError
except ImportError:  # pragma: no cover
    class SchemaValidationError(Exception):
        pass

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)
REASON_MAX = 1000  # header values travel with every copy: keep them short
_STORE_PREFIX = "x-cqo-"  # our bookkeeping inside DeadLetter.headers, stripped on replay
_BROKER_HEADERS = ("x-delivery-count",)


class DeadLetteringFailed(RequeueMessage):
    """Recording or publishing the dead letter failed: requeue the message."""


def classify(exc: BaseException) -> tuple[str, str]:
    """(x-error-code, x-error-reason) for a handler failure."""
    if isinstance(exc, CqoError):
        code, reason = exc.code, exc.message
    elif isinstance(exc, SchemaValidationError):
        code = "VALIDATION_FAILED"
        reason = json.dumps(getattr(exc, "messages", str(exc)), ensure_ascii=False, default=str)
    elif isinstance(exc, (MessageDecodeError, UnicodeDecodeError, json.JSONDecodeError)):
        code, reason = "MALFORMED_MESSAGE", str(exc)
    elif isinstance(exc, (KeyError, TypeError, ValueError, IndexError)):
        code, reason = "MALFORMED_PAYLOAD", f"{type(exc).__name__}: {exc}"
    elif isinstance(exc, TRANSIENT_ERRORS):
        code, reason = "TRANSIENT_ERROR_PERSISTED", f"{type(exc).__name__}: {exc}"
    else:
        code, reason = "HANDLER_ERROR", f"{type(exc).__name__}: {exc}"
    return code, _storable(reason)


def _storable(reason: str) -> str:
    return reason.replace("\x00", "\\x00")[:REASON_MAX]  # NUL: not storable in PostgreSQL


def _dead_headers(headers: dict, *, code: str, reason: str, exchange: str, routing_key: str,
                  queue: str, consumer: str, dead_letter_id: int) -> dict:
    """The headers of a copy on `cqo.dead`: why, from where, and its DeadLetter record."""
    return {**headers, "x-error-code": code, "x-error-reason": reason,
            "x-original-exchange": exchange, "x-original-routing-key": routing_key,
            "x-original-queue": queue, "x-consumer": consumer,
            "x-dead-letter-id": dead_letter_id}


# -- publishing ---------------------------------------------------------------------

# for deliveries that do not bring their container's publisher
_publishers: dict[str, ConfirmingPublisher] = {}
_publishers_lock = threading.Lock()


def publisher_for(amqp_uri: str, ssl=None) -> ConfirmingPublisher:
    with _publishers_lock:
        if amqp_uri not in _publishers:
            _publishers[amqp_uri] = ConfirmingPublisher(amqp_uri, ssl=ssl,
                                                        declare=[topology.dead_queue()])
        return _publishers[amqp_uri]


# -- recording ----------------------------------------------------------------------

def _stored(delivery: Delivery) -> tuple[str, dict]:
    """Payload text and headers to keep, so that a replay republishes the same bytes."""
    headers = {k: v for k, v in delivery.headers.items() if k not in _BROKER_HEADERS}
    headers[_STORE_PREFIX + "content-type"] = delivery.content_type
    headers[_STORE_PREFIX + "content-encoding"] = delivery.content_encoding
    try:
        text = delivery.raw.decode("utf-8")
        if "\x00" not in text:  # PostgreSQL text cannot hold NUL: such a body goes as base64
            return text, headers
    except UnicodeDecodeError:
        pass
    headers[_STORE_PREFIX + "body-encoding"] = "base64"
    return base64.b64encode(delivery.raw).decode("ascii"), headers


def _record(db: Database, delivery: Delivery, consumer: str, code: str,
            reason: str) -> tuple[int, bool]:
    """Insert the DeadLetter row (or find the unreplayed one of an earlier attempt)."""
    with db.unit_of_work() as uow:
        if delivery.message_id:
            existing = uow.session.execute(
                select(DeadLetter).where(DeadLetter.consumer == consumer,
                                         DeadLetter.message_id == delivery.message_id,
                                         DeadLetter.replayed_at.is_(None))
                .order_by(DeadLetter.id.desc()).limit(1)).scalar_one_or_none()
            if existing is not None:
                return existing.id, existing.published_at is not None
        payload, headers = _stored(delivery)
        row = DeadLetter(consumer=consumer, message_id=delivery.message_id,
                         exchange=delivery.exchange, routing_key=delivery.routing_key,
                         error_code=code, error_reason=reason, payload=payload,
                         headers=json.dumps(headers, ensure_ascii=False, default=str),
                         created_at=clock.now_utc())
        uow.session.add(row)
        uow.session.flush()
        row_id = row.id
        uow.commit()
    return row_id, False


def _mark(db: Database, dead_letter_id: int, column: str) -> None:
    with db.unit_of_work() as uow:
        row = uow.session.get(DeadLetter, dead_letter_id)
        setattr(row, column, clock.now_utc())
        uow.commit()


def dead_letter(db: Database, delivery: Delivery, consumer: str, exc: BaseException) -> int:
    """Record and publish one failed message; returns the DeadLetter id."""
    code, reason = classify(exc)
    row_id, published = _record(db, delivery, consumer, code, reason)
    if published:  # a duplicate of a message already dead-lettered
        return row_id
    headers = _dead_headers(delivery.headers, code=code, reason=reason,
                            exchange=delivery.exchange, routing_key=delivery.routing_key,
                            queue=delivery.queue, consumer=consumer, dead_letter_id=row_id)
    publisher = delivery.publisher or publisher_for(delivery.amqp_uri, delivery.amqp_ssl)
    publisher.publish(
        delivery.raw, topology.DEAD.name, "", headers=headers,
        message_id=delivery.message_id, content_type=delivery.content_type,
        content_encoding=delivery.content_encoding)
    _mark(db, row_id, "published_at")
    MESSAGES_DEAD_LETTERED.labels(delivery.queue, code).inc()
    log.warning("dead-lettered message %s from %s: [%s] %s", delivery.message_id,
                delivery.queue, code, reason)
    return row_id


def set_aside(uow, consumer: str, payload, *, code: str, reason: str,
              message_id: str | None, exchange: str, routing_key: str, queue: str = "",
              headers: dict | None = None) -> int:
    """Dead-letter one part of a message (e.g. one unusable item of a batch) inside the
    consumer's own unit of work, while the rest of the message is applied: the record
    and its copy to `cqo.dead` (through the outbox) commit with the rest or not at all.
    Returns the DeadLetter id."""
    from shared.messaging.outbox import Outbox, RawJson, dumps  # outbox imports eventlet parts

    reason = _storable(reason)
    text = RawJson(dumps(payload))
    now = clock.now_utc()
    row = DeadLetter(consumer=consumer, message_id=message_id, exchange=exchange,
                     routing_key=routing_key, error_code=code, error_reason=reason,
                     payload=text, headers=json.dumps({
                         **(headers or {}), _STORE_PREFIX + "content-type": "application/json",
                         _STORE_PREFIX + "content-encoding": "utf-8"}, ensure_ascii=False),
                     # published_at stays empty: the outbox relay publishes the copy
                     # once this transaction commits (outbox_messages has its sent_at)
                     created_at=now)
    uow.session.add(row)
    uow.session.flush()
    Outbox.add(uow, topology.DEAD.name, "", text, headers=_dead_headers(
        headers or {}, code=code, reason=reason, exchange=exchange, routing_key=routing_key,
        queue=queue, consumer=consumer, dead_letter_id=row.id),
        message_id=message_id if message_id and len(message_id) <= 64 else None)
    count_after_commit(uow.session, MESSAGES_DEAD_LETTERED, queue or consumer, code)
    log.warning("set aside part %s of a message on %s: [%s] %s", message_id, consumer, code, reason)
    return row.id


def dead_letter_on_error(consumer_name: str, *, database="db", requeue_delay: float = 1.0,
                         max_transient_retries: int = 5):
    """Decorate a `consume` handler `(self, body, message: Delivery)`.

    `database` is the service attribute holding the `Database` (a DatabaseProvider),
    or a callable `service -> Database`.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, body, message: Delivery):
            exc = message.decode_error
            if exc is None:
                try:
                    return fn(self, body, message)
                except RequeueMessage:
                    raise
                except TRANSIENT_ERRORS as error:
                    if message.delivery_count < max_transient_retries:
                        log.warning("transient failure on %s, requeueing: %s",
                                    message.message_id, error)
                        time.sleep(requeue_delay)  # green: holds this worker only
                        raise RequeueMessage(str(error)) from error
                    exc = error
                except Exception as error:  # noqa: BLE001 - every failure is recorded
                    exc = error
            db = database(self) if callable(database) else getattr(self, database)
            try:
                dead_letter(db, message, consumer_name, exc)
            except Exception as failure:
                log.error("could not dead-letter message %s (%s); requeueing",
                          message.message_id, failure)
                time.sleep(requeue_delay)
                raise DeadLetteringFailed(str(failure)) from failure
            return None

        return wrapper

    return decorate


def dead_letter_batch_on_error(consumer_name: str, *, database="db", requeue_delay: float = 1.0,
                               max_transient_retries: int = 5):
    """Decorate a `consume_batch` handler `(self, pairs: list[(body, Delivery)])` that
    applies all its messages in one transaction. If it raises, or for a message that
    cannot be decoded, each message is applied on its own under `dead_letter_on_error`:
    one bad message is dead-lettered alone and the others still go through. Returns
    the deliveries to requeue (a transient failure, or dead-lettering that failed)."""
    single = dead_letter_on_error(consumer_name, database=database, requeue_delay=requeue_delay,
                                  max_transient_retries=max_transient_retries)

    def decorate(fn):
        one = single(lambda self, body, message: fn(self, [(body, message)]))

        @functools.wraps(fn)
        def wrapper(self, deliveries: list[Delivery]):
            decoded = [d for d in deliveries if d.decode_error is None]
            alone = [d for d in deliveries if d.decode_error is not None]
            if len(decoded) > 1:
                try:
                    fn(self, [(d.body, d) for d in decoded])
                except Exception as error:  # noqa: BLE001 - retried message by message
                    log.warning("batch of %d on %s failed (%s: %s); applying them one by one",
                                len(decoded), consumer_name, type(error).__name__, error)
                    alone = deliveries
            else:
                alone = deliveries
            requeue = []
            for delivery in alone:
                try:
                    one(self, delivery.body, delivery)
                except RequeueMessage:
                    requeue.append(delivery)
            return requeue

        return wrapper

    return decorate


# -- operator -----------------------------------------------------------------------

def _as_dict(row: DeadLetter) -> dict:
    return {"id": row.id, "consumer": row.consumer, "message_id": row.message_id,
            "exchange": row.exchange, "routing_key": row.routing_key,
            "error_code": row.error_code, "error_reason": row.error_reason,
            "payload": row.payload, "created_at": row.created_at,
            "published_at": row.published_at, "replayed_at": row.replayed_at}


def list_dead_letters(db: Database, *, consumer: str | None = None,
                      include_replayed: bool = False, limit: int = 100) -> list[dict]:
    stmt = select(DeadLetter).order_by(DeadLetter.id).limit(limit)
    if consumer:
        stmt = stmt.where(DeadLetter.consumer == consumer)
    if not include_replayed:
        stmt = stmt.where(DeadLetter.replayed_at.is_(None))
    with db.unit_of_work() as uow:
        return [_as_dict(r) for r in uow.session.execute(stmt).scalars()]


def replay(db: Database, amqp_uri: str, dead_letter_id: int, *, force: bool = False,
           ssl=None) -> str | None:
    """Republish a dead letter to its original exchange and routing key (same body,
    headers and message id, so the consumer's inbox still de-duplicates) and mark it
    replayed. Returns the message id."""
    with db.unit_of_work() as uow:
        row = uow.session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise NotFound(f"死信 {dead_letter_id} 不存在", code="DEAD_LETTER_NOT_FOUND")
        if row.replayed_at is not None and not force:
            raise Conflict(f"死信 {dead_letter_id} 已于 {row.replayed_at} 重放",
                           code="DEAD_LETTER_ALREADY_REPLAYED")
        stored = json.loads(row.headers) if row.headers else {}
        exchange, routing_key, message_id = row.exchange or "", row.routing_key or "", row.message_id
        body = (base64.b64decode(row.payload)
                if stored.get(_STORE_PREFIX + "body-encoding") == "base64"
                else row.payload.encode("utf-8"))
        previous = row.replayed_at
        # marked before publishing: if the replay fails again at once, the consumer's
        # wrapper must see this record as closed and open a new one
        row.replayed_at = clock.now_utc()
        uow.commit()
    headers = {k: v for k, v in stored.items() if not k.startswith(_STORE_PREFIX)}
    headers["x-replay-of"] = dead_letter_id
    publisher = ConfirmingPublisher(amqp_uri, ssl=ssl)
    try:
        publisher.publish(body, exchange, routing_key, headers=headers, message_id=message_id,
                          content_type=stored.get(_STORE_PREFIX + "content-type"),
                          content_encoding=stored.get(_STORE_PREFIX + "content-encoding"))
    except BaseException:
        with db.unit_of_work() as uow:
            uow.session.get(DeadLetter, dead_letter_id).replayed_at = previous
            uow.commit()
        raise
    finally:
        publisher.close(graceful=True)
    return message_id
