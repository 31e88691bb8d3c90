"""Outbox: the message that announces a state change is written in the same
transaction as the change; a relay publishes it afterwards (no dual writes).

    with db.unit_of_work() as uow:
        ...business writes...
        Outbox.add(uow, "cqo.filings", f"filing.{county}.new", payload)
        uow.commit()

The relay publishes due rows in `seq` order with publisher confirms and `mandatory`:
a batch is written, then all its confirms are awaited (one round trip per batch, not
per message). A row is marked sent only when the broker confirmed it and did not
return it as unroutable; `sent_at` is when its batch was handed to the broker (the
confirm comes after, and a consumer may already have the message by then: a filing's
trace must not show it received before it was published). Anything else costs the row an attempt and an exponential,
capped back-off. A confirm lost with the connection means the message may have
arrived and will be sent again: delivery is at-least-once, the consumer's inbox
removes the duplicate.

The city's domain events (`cqo.events`) are the exception to `mandatory`: an event no
service subscribes to is not an error (publish/subscribe), and the subscribers' queues
are declared by every city service, so one that has not started yet still gets it. A
county's events are mandatory: until a city service declared their queue they wait in
the outbox (`topology.must_route`).
"""
from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import tenacity
from kombu import Connection, Producer
from sqlalchemy import event, func, select, update

from shared import clock
from shared.db import Database, UnitOfWork, copy_from_stdin, insert_rows
from shared.messaging import broker, topology
from shared.messaging.models import OutboxMessage
from shared.messaging.publisher import close_connection, login_user
from shared.metrics import OUTBOX_PUBLISHED, count_after_commit

log = logging.getLogger(__name__)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- writing ------------------------------------------------------------------------

_ARMED = "cqo_outbox_armed"
_WRITTEN = "cqo_outbox_written"
_relays: dict[str, "weakref.WeakSet[OutboxRelay]"] = {}


def _engine_key(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _after_commit(session) -> None:
    if session.info.pop(_WRITTEN, False):
        for relay in list(_relays.get(_engine_key(session.get_bind()), ())):
            relay.wake()


class RawJson(str):
    """JSON text that is already serialized (e.g. read as text from the database);
    the outbox stores and publishes it as it is instead of encoding a dict."""

    @classmethod
    def object(cls, members: dict, raw_arrays: dict[str, list[str]]) -> "RawJson":
        """`members` plus arrays of already serialized items, as one JSON object."""
        parts = [dumps(members)[1:-1]] if members else []
        parts += [f"{dumps(name)}:[{','.join(items)}]" for name, items in raw_arrays.items()]
        return cls("{" + ",".join(parts) + "}")


_COPY_MANY = ("COPY outbox_messages (message_id, exchange, routing_key, payload, created_at, attempts, "
              "next_attempt_at) FROM STDIN")


def _copy_text(value: str) -> str:
    """A field of COPY's text format. Not csv: a JSON payload is full of quotes, which
    csv doubles one by one (nine times slower on a batch of events)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


class Outbox:
    @staticmethod
    def add(uow: UnitOfWork, exchange: str, routing_key: str, payload: dict | RawJson,
            headers: dict | None = None, message_id: str | None = None) -> str:
        """Append a message to the caller's transaction; returns its message id."""
        message_id = message_id or str(uuid.uuid4())
        now = clock.now_utc()
        session = uow.session
        session.add(OutboxMessage(
            message_id=message_id, exchange=exchange, routing_key=routing_key,
            payload=payload if isinstance(payload, RawJson) else dumps(payload),
            headers=dumps(headers) if headers else None,
            created_at=now, attempts=0, next_attempt_at=now))
        Outbox._wake_after_commit(session)
        return message_id

    @staticmethod
    def add_many(uow: UnitOfWork, exchange: str, messages: list[tuple[str, dict | RawJson, str]]) -> None:
        """Append many messages (routing key, payload, message id) in one insert: an
        import announces one event per row, and an ORM object per message would cost
        more than the rest of the row."""
        if not messages:
            return
        now = clock.now_utc()
        uow.session.flush()  # what the caller added before goes first (seq order = publish order)
        conn = uow.session.connection()
        if conn.dialect.name == "postgresql":  # COPY: parsed far faster than a statement's rows
            data = io.StringIO()
            stamp, exchange_text = now.isoformat(), _copy_text(exchange)
            for routing_key, payload, message_id in messages:
                data.write("\t".join((
                    _copy_text(message_id), exchange_text, _copy_text(routing_key),
                    _copy_text(payload if isinstance(payload, RawJson) else dumps(payload)),
                    stamp, "0", stamp)) + "\n")
            data.seek(0)
            with conn.connection.dbapi_connection.cursor() as cursor:
                copy_from_stdin(cursor, _COPY_MANY, data)
        else:
            insert_rows(conn, OutboxMessage.__table__, [
                {"message_id": message_id, "exchange": exchange, "routing_key": routing_key,
                 "payload": payload if isinstance(payload, RawJson) else dumps(payload),
                 "created_at": now, "attempts": 0, "next_attempt_at": now}
                for routing_key, payload, message_id in messages])
        Outbox._wake_after_commit(uow.session)

    @staticmethod
    def _wake_after_commit(session) -> None:
        # wake this process's relay right after the commit instead of at its next poll
        session.info[_WRITTEN] = True
        if not session.info.get(_ARMED):
            session.info[_ARMED] = True
            event.listen(session, "after_commit", _after_commit)


def written_and_sent(session, message_ids) -> dict[str, tuple[datetime, datetime | None]]:
    """message id -> (written, confirmed by the broker or None) of these outbox rows
    (a filing's trace: rows are never deleted, so a message's times stay readable)."""
    wanted = sorted({m for m in message_ids if m})
    found = {}
    for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
        found.update((r.message_id, (clock.aware(r.created_at), clock.aware(r.sent_at)))
                     for r in session.execute(select(
                         OutboxMessage.message_id, OutboxMessage.created_at, OutboxMessage.sent_at)
                         .where(OutboxMessage.message_id.in_(wanted[start:start + 500]))))
    return found


# -- publishing ---------------------------------------------------------------------

@dataclass
class _Row:
    """A plain copy of an outbox row, usable after its session has closed."""

    seq: int
    message_id: str
    exchange: str
    routing_key: str
    payload: str
    headers: str | None
    created_at: datetime
    attempts: int


CONFIRMED, RETURNED, NACKED, UNCONFIRMED, UNSENT = (
    "confirmed", "returned", "nacked", "unconfirmed", "unsent")


class ConfirmTimeout(Exception):
    pass


class BatchInterrupted(Exception):
    def __init__(self, outcomes: dict, error: BaseException):
        super().__init__(str(error))
        self.outcomes, self.error = outcomes, error


class RelayConnectionError(Exception):
    """A pass ended early on a broker error; its unconfirmed rows were backed off."""


class BatchPublisher:
    """One connection and channel in confirm mode.

    `per_message=True` uses py-amqp's own confirm_publish (waits for each ack; slow,
    kept as a baseline); the default counts delivery tags and awaits a batch's acks.
    """

    def __init__(self, amqp_uri: str, *, ssl=None, confirm_timeout: float = 10.0,
                 connect_timeout: float = 5.0, declare=topology.EXCHANGES,
                 user_id: str | None = None, per_message: bool = False):
        self.amqp_uri, self.ssl = amqp_uri, ssl
        self.confirm_timeout, self.connect_timeout = confirm_timeout, connect_timeout
        self.declare, self.user_id, self.per_message = tuple(declare), user_id, per_message
        self._conn = self._producer = None
        self._pending: dict[int, int] = {}  # delivery tag -> seq
        self._outcomes: dict[int, tuple[str, str | None]] = {}
        self._by_message_id: dict[str, int] = {}
        self._returned: dict[int, str] = {}
        self._tag = 0

    def connect(self) -> None:
        if self._conn is not None:
            return
        conn = Connection(self.amqp_uri, ssl=self.ssl, heartbeat=0,
                          connect_timeout=self.connect_timeout,
                          transport_options={"confirm_publish": self.per_message})
        try:
            # one attempt per node (a cluster's failover URI); our callers have their own back-off
            broker.connect(conn)
            channel = conn.channel()
            for exchange in self.declare:
                exchange(channel).declare()
            if not self.per_message:
                channel.confirm_select()
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
            self._producer = Producer(channel, on_return=self._on_return)
        except BaseException:
            close_connection(conn)
            raise
        self._conn, self._tag, self._pending = conn, 0, {}

    def close(self, graceful: bool = False) -> None:
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None:
            close_connection(conn, graceful)

    # broker callbacks (run inside drain_events / the confirm wait)
    def _on_return(self, exc, exchange, routing_key, message):
        seq = self._by_message_id.get((message.properties or {}).get("message_id"))
        if seq is not None:
            self._returned[seq] = (f"unroutable: {getattr(exc, 'reply_text', exc)} "
                                   f"(exchange {exchange!r}, routing key {routing_key!r})")

    def _settle(self, tag, multiple, state):
        tags = [t for t in self._pending if t <= tag] if multiple else [tag]
        for t in tags:
            seq = self._pending.pop(t, None)
            if seq is None:
                continue
            if seq in self._returned:
                self._outcomes[seq] = (RETURNED, self._returned[seq])
            else:
                self._outcomes[seq] = (state, None if state == CONFIRMED else "nacked by broker")

    def _on_ack(self, tag, multiple):
        self._settle(tag, multiple, CONFIRMED)

    def _on_nack(self, tag, multiple):
        self._settle(tag, multiple, NACKED)

    def publish_batch(self, rows: list[_Row]) -> dict[int, tuple[str, str | None]]:
        """seq -> (state, error) for each row; raises BatchInterrupted on a broker error."""
        self._outcomes = {r.seq: (UNSENT, None) for r in rows}
        self._by_message_id = {r.message_id: r.seq for r in rows}
        self._returned = {}
        try:
            self.connect()
            for row in rows:
                self._publish(row)
            self._await_confirms()
        except Exception as exc:
            self.close()
            raise BatchInterrupted(self._outcomes, exc) from exc
        return self._outcomes

    def _publish(self, row: _Row) -> None:
        properties = {"message_id": row.message_id,
                      "timestamp": int(clock.aware(row.created_at).timestamp())}
        if self.user_id:
            properties["user_id"] = self.user_id  # the broker checks it is the login user
        self._outcomes[row.seq] = (UNCONFIRMED, None)
        self._producer.publish(
            row.payload.encode("utf-8"), exchange=row.exchange, routing_key=row.routing_key,
            mandatory=topology.must_route(row.exchange, row.routing_key),
            content_type="application/json", content_encoding="utf-8",
            headers=json.loads(row.headers) if row.headers else {}, delivery_mode=2,
            retry=False, **properties)
        if self.per_message:  # returned (if so) and confirmed by now
            self._outcomes[row.seq] = ((RETURNED, self._returned[row.seq])
                                       if row.seq in self._returned else (CONFIRMED, None))
        else:
            self._tag += 1
            self._pending[self._tag] = row.seq

    def _await_confirms(self) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmTimeout(f"{len(self._pending)} confirms missing after "
                                     f"{self.confirm_timeout}s")
            try:
                self._conn.drain_events(timeout=remaining)
            except socket.timeout:
                pass


_NO_EXCHANGE = re.compile(r"no exchange '([^']*)'")


class OutboxRelay:
    """Publishes the outbox of one database; see the module docstring."""

    def __init__(self, database: Database, amqp_uri: str, *, batch_size: int = 200,
                 poll_interval: float = 0.5, base_backoff: float = 0.5,
                 max_backoff: float = 60.0, reconnect_max: float = 5.0,
                 confirm_timeout: float = 10.0, ssl=None, user_id: str | None = None,
                 declare=topology.EXCHANGES, per_message_confirms: bool = False):
        self.database = database
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.base_backoff, self.max_backoff = base_backoff, max_backoff
        self.reconnect_max = reconnect_max
        self.publisher = BatchPublisher(amqp_uri, ssl=ssl, confirm_timeout=confirm_timeout,
                                        declare=declare, user_id=user_id,
                                        per_message=per_message_confirms)
        self.stats = {"sent": 0, "failed": 0, "passes": 0, "broker_errors": 0,
                      "last_error": None}
        self._wake_event = threading.Event()  # green under eventlet's monkey patching
        _relays.setdefault(_engine_key(database.engine), weakref.WeakSet()).add(self)

    # -- observing ----------------------------------------------------------------
    def backlog(self) -> int:
        with self.database.unit_of_work() as uow:
            return uow.session.execute(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))).scalar_one()

    def oldest_pending_age(self) -> float | None:
        """Seconds since the oldest unsent message was written (None when all sent)."""
        with self.database.unit_of_work() as uow:
            oldest = uow.session.execute(
                select(func.min(OutboxMessage.created_at))
                .where(OutboxMessage.sent_at.is_(None))).scalar_one()
        return None if oldest is None else (clock.now_utc() - clock.aware(oldest)).total_seconds()

    # -- one pass -----------------------------------------------------------------
    def publish_pending(self, limit: int | None = None) -> int:
        """Publish up to `limit` due rows once; returns how many were marked sent."""
        return self._pass(limit or self.batch_size)[1]

    def _pass(self, limit: int) -> tuple[int, int]:
        self.stats["passes"] += 1
        if self.database.is_postgres:
            # rows stay locked while they are published: a second relay skips them
            with self.database.unit_of_work() as uow:
                rows = self._claim(uow, limit, lock=True)
                if not rows:
                    return 0, 0
                handed = clock.now_utc()
                outcomes, error = self._publish(rows)
                sent = self._record(uow, rows, outcomes, handed)
                uow.commit()
        else:
            # SQLite: never hold the write lock across network I/O (under eventlet a
            # second writer would spin in SQLite's busy handler and block the hub)
            with self.database.unit_of_work() as uow:
                rows = self._claim(uow, limit, lock=False)
            if not rows:
                return 0, 0
            handed = clock.now_utc()
            outcomes, error = self._publish(rows)
            with self.database.unit_of_work() as uow:
                sent = self._record(uow, rows, outcomes, handed)
                uow.commit()
        if error is not None:
            self.stats["broker_errors"] += 1
            self.stats["last_error"] = f"{type(error).__name__}: {error}"
            raise RelayConnectionError(self.stats["last_error"]) from error
        return len(rows), sent

    def _claim(self, uow: UnitOfWork, limit: int, *, lock: bool) -> list[_Row]:
        """Due rows in `seq` order, the counties' messages (decisions, notices, filings)
        before the domain events: an intake announces a few events per filing, and its
        county's answer must not wait behind them. Each kind keeps its own order, and
        nothing orders a decision against an event (they go to different consumers)."""
        now = clock.now_utc()
        due = (OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
        is_event = OutboxMessage.exchange == topology.EVENTS.name
        rows = self._select(uow, select(OutboxMessage).where(*due, ~is_event), limit, lock)
        if len(rows) < limit:
            rows += self._select(uow, select(OutboxMessage).where(*due, is_event),
                                 limit - len(rows), lock)
        return rows

    @staticmethod
    def _select(uow: UnitOfWork, stmt, limit: int, lock: bool) -> list[_Row]:
        stmt = stmt.order_by(OutboxMessage.seq).limit(limit)
        if lock:
            stmt = stmt.with_for_update(skip_locked=True)
        return [_Row(m.seq, m.message_id, m.exchange, m.routing_key, m.payload, m.headers,
                     m.created_at, m.attempts) for m in uow.session.execute(stmt).scalars()]

    def _publish(self, rows):
        try:
            return self.publisher.publish_batch(rows), None
        except BatchInterrupted as interrupted:
            outcomes, error = interrupted.outcomes, interrupted.error
            reason = f"{type(error).__name__}: {error}"
            outcomes = {seq: (state, reason) if state == UNCONFIRMED else (state, text)
                        for seq, (state, text) in outcomes.items()}
            missing = _NO_EXCHANGE.search(str(error))
            if missing:  # a channel error names its culprit: spare the innocent rows
                outcomes = {r.seq: outcomes[r.seq] if outcomes[r.seq][0] == CONFIRMED
                            else ((NACKED, str(error)) if r.exchange == missing.group(1)
                                  else (UNSENT, None)) for r in rows}
            log.warning("outbox relay: broker error after %d of %d rows: %s",
                        sum(1 for s, _ in outcomes.values() if s == CONFIRMED), len(rows), error)
            return outcomes, error

    def _record(self, uow: UnitOfWork, rows: list[_Row], outcomes, handed: datetime) -> int:
        now = clock.now_utc()
        table = OutboxMessage.__table__
        confirmed = [r for r in rows if outcomes[r.seq][0] == CONFIRMED]
        sent = [r.seq for r in confirmed]
        if sent:
            uow.session.execute(update(table).where(table.c.seq.in_(sent))
                                .values(sent_at=handed, last_error=None))
            for exchange, count in Counter(r.exchange for r in confirmed).items():
                count_after_commit(uow.session, OUTBOX_PUBLISHED, exchange, amount=count)
            if log.isEnabledFor(logging.DEBUG):
                for row in confirmed:
                    log.debug("published %s to %s (%s)", row.message_id, row.exchange,
                              row.routing_key, extra={"message_id": row.message_id})
        for row in rows:
            state, error = outcomes[row.seq]
            if state in (CONFIRMED, UNSENT):
                continue
            attempts = row.attempts + 1
            delay = min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1))
            uow.session.execute(update(table).where(table.c.seq == row.seq).values(
                attempts=attempts, last_error=(error or state)[:2000],
                next_attempt_at=now + timedelta(seconds=delay)))
            self.stats["failed"] += 1
            if state == RETURNED:
                log.error("outbox message %s is unroutable: %s", row.message_id, error)
        self.stats["sent"] += len(sent)
        return len(sent)

    # -- running ------------------------------------------------------------------
    def wake(self) -> None:
        self._wake_event.set()

    def drain(self) -> int:
        """Publish until no due row is left (or a pass fails); returns rows sent."""
        total = 0
        while True:
            attempted, sent = self._pass(self.batch_size)
            total += sent
            if attempted < self.batch_size:
                return total

    def run_forever(self, stop_event, wake_event=None) -> None:
        """Loop until `stop_event` is set: drain, then sleep until woken or polled.

        A failing pass (broker or database down) is retried with jittered exponential
        back-off; the sleep between retries ends early when `stop_event` is set. To stop
        an idle relay at once, set `stop_event` and then call `wake()`.
        """
        wake = wake_event or self._wake_event
        retrying = tenacity.Retrying(
            wait=tenacity.wait_exponential_jitter(initial=0.1, max=self.reconnect_max),
            stop=tenacity.stop_when_event_set(stop_event), sleep=stop_event.wait,
            before_sleep=self._log_retry, reraise=False)
        try:
            while not stop_event.is_set():
                wake.clear()
                try:
                    for attempt in retrying:
                        with attempt:
                            self.drain()
                except tenacity.RetryError:
                    break  # stopping
                wake.wait(self.poll_interval)
        finally:
            self.publisher.close(graceful=True)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        log.warning("outbox relay pass failed (%s); retrying in %.2fs",
                    state.outcome.exception(), state.upcoming_sleep)

    def close(self) -> None:
        self.publisher.close(graceful=True)


# -- nameko -------------------------------------------------------------------------

from eventlet import Timeout  # noqa: E402  (nameko-only part of this module)
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY  # noqa: E402
from nameko.extensions import DependencyProvider  # noqa: E402


class OutboxRelayProvider(DependencyProvider):
    """Runs the service's outbox relay in a managed greenthread.

    It uses the very `Database` of the service's `DatabaseProvider` named by
    `database_attr` (one pool; commits made through it wake the relay at once),
    polls every `poll_interval` besides, and stops after the workers have finished.
    Workers get the relay itself (`backlog()`, `oldest_pending_age()` for health).
    Messages carry `user_id` = the user named in AMQP_URI (`user_id=` overrides).

        class Registry:
            db = DatabaseProvider(VERSIONS, "registry.db")
            outbox_relay = OutboxRelayProvider("db")
    """

    def __init__(self, database_attr: str = "db", *, stop_timeout: float = 15.0,
                 **relay_options):
        self.database_attr = database_attr
        self.stop_timeout = stop_timeout
        self.relay_options = relay_options
        self.relay: OutboxRelay | None = None
        self._gt = None
        self._stop = threading.Event()

    def _database(self) -> Database:
        for dependency in self.container.dependencies:
            if dependency.attr_name == self.database_attr:
                database = getattr(dependency, "database", None)
                if database is None:
                    raise RuntimeError(f"dependency {self.database_attr!r} has no database")
                return database
        raise RuntimeError(f"no dependency named {self.database_attr!r} for the outbox relay")

    def start(self):
        # start(), not setup(): the DatabaseProvider's setup runs concurrently with ours
        config = self.container.config
        amqp_uri = config[AMQP_URI_CONFIG_KEY]
        # every message carries the service's broker user, validated by the broker: the
        # city's registry maps it to the one county it may file for (BROKER_TRUST=per-county)
        options = {"user_id": login_user(amqp_uri), **self.relay_options}
        self.relay = OutboxRelay(self._database(), amqp_uri,
                                 ssl=config.get(AMQP_SSL_CONFIG_KEY), **options)
        self._stop.clear()
        self._gt = self.container.spawn_managed_thread(self._run, identifier="outbox_relay")

    def _run(self):
        self.relay.run_forever(self._stop)

    def stop(self):
        self._stop.set()
        if self.relay is not None:
            self.relay.wake()
        if self._gt is not None:
            with Timeout(self.stop_timeout, False):
                self._gt.wait()
            if not self._gt.dead:
                self._gt.kill()
        if self.relay is not None:
            self.relay.close()

    def kill(self):
        self._stop.set()
        if self._gt is not None:
            self._gt.kill()
        if self.relay is not None:
            self.relay.close()

    def get_dependency(self, worker_ctx):
        return self.relay
