"""Prometheus metrics of a service: `GET /metrics` (admin token), docs/observability.md.

Two kinds of figures:
- counted where they happen (HTTP requests, messages consumed and dead-lettered, outbox
  messages published, a service's own domain counters such as the registry's decisions):
  prometheus-client counters and histograms. Under `cqo serve --processes N` the
  supervisor gives its children one PROMETHEUS_MULTIPROC_DIR, each process writes its own
  files there and a scrape, whichever process answers it, sums them all;
- read when scraped (outbox backlog, queue depths, dead letters, shovels): the
  `ScrapeCollector` asks the database, the broker and the management API at that moment,
  in the one process that answers, so they are counted once, not once per process.

A source that cannot be read leaves its figures out and sets
`cqo_metrics_source_up{source=...}` to 0: a scrape never fails because of it.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter as Tally

from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from shared.messaging.broker import connect, vhost_of

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MANAGEMENT_URL_KEY = "METRICS_MANAGEMENT_URL"  # the shovels and unacked counts come from it
SOURCE_TIMEOUT_S = 5.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "(unmatched)"  # a path no route matched: never the raw path (ids)

HTTP_REQUESTS = Histogram(
    "cqo_http_request_duration_seconds",
    "HTTP requests by route template (never the raw path) and status, and how long they took",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
MESSAGES_CONSUMED = Counter(
    "cqo_messages_consumed_total",
    "Messages a consumer finished with: acked (applied, or dead-lettered) or requeued",
    ["queue", "result"])
MESSAGES_DEAD_LETTERED = Counter(
    "cqo_messages_dead_lettered_total",
    "Messages (or parts of a batch) set aside as dead letters, by queue and error code",
    ["queue", "code"])
OUTBOX_PUBLISHED = Counter(
    "cqo_outbox_published_total", "Outbox messages the broker confirmed, by exchange", ["exchange"])
PROCESSES = Gauge(
    "cqo_service_process", "1 per live process of the service (one sample per pid)",
    ["service"], multiprocess_mode="liveall")


def counter(name: str, documentation: str, labels=()) -> Counter:
    """A service's own counter (e.g. the registry's decisions), registered where its
    event happens; in multiprocess mode summed over the processes like ours."""
    return Counter(name, documentation, list(labels))


def observe_request(service: str, method: str, route: str | None, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(service, method if method in METHODS else "OTHER",
                         route or UNMATCHED_ROUTE, str(status)).observe(seconds)


_PENDING = "cqo_metrics_pending"


def count_after_commit(session, counter: Counter, *labels: str, amount: float = 1) -> None:
    """Count `labels` on `counter` when the session's transaction commits: a unit of work
    that rolls back (a batch retried message by message) counts nothing."""
    session.info.setdefault(_PENDING, Tally())[(counter, labels)] += amount


# once for every session (a listener per session cost a quarter of a millisecond each)
@event.listens_for(Session, "after_commit")
def _flush_counts(session) -> None:
    pending = session.info.pop(_PENDING, None)
    for (counter, labels), amount in (pending or {}).items():
        counter.labels(*labels).inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop_counts(session) -> None:
    session.info.pop(_PENDING, None)


# -- multiprocess mode (the supervisor of `cqo serve --processes N`) -------------------------

def prepare_multiproc_dir(service: str) -> tuple[str, bool]:
    """(directory, made_here): PROMETHEUS_MULTIPROC_DIR if the operator set it, emptied
    (figures of an earlier run would be added to this one's), else a new temporary one."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return given, False
    return tempfile.mkdtemp(prefix=f"cqo-metrics-{service}-"), True


def process_exited(pid: int, directory: str) -> None:
    """A child is gone: its live gauges go (its counters stay, they are history)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


def remove_multiproc_dir(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


# -- what a scrape reads --------------------------------------------------------------------

def _gauge(name: str, documentation: str, labels=()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class ScrapeCollector:
    """The figures read at scrape time from one service container's sources."""

    def __init__(self, provider: "ServiceMetrics"):
        self.provider = provider

    def collect(self):
        up = _gauge("cqo_metrics_source_up", "1 when the source answered this scrape", ["source"])
        for source, read in (("database", self._database), ("broker", self._broker),
                             ("management", self._management)):
            if source == "management" and not self.provider.management_url:
                continue
            try:
                families = list(read())
            except Exception as exc:  # noqa: BLE001 - a scrape reports, never fails
                log.warning("metrics: %s unavailable: %s", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _database(self):
        from shared.messaging.models import DeadLetter

        backlog = _gauge("cqo_outbox_backlog", "Outbox messages not yet published")
        oldest = _gauge("cqo_outbox_oldest_pending_age_seconds",
                        "Age of the oldest unpublished outbox message (0 when none)")
        for relay in self.provider.relays():
            backlog.add_metric([], relay.backlog())
            oldest.add_metric([], relay.oldest_pending_age() or 0.0)
        dead = _gauge("cqo_dead_letters", "Dead letters not replayed, by consumer and error code",
                      ["consumer", "error_code"])
        for database in self.provider.databases():
            with database.unit_of_work() as uow:
                rows = uow.session.execute(
                    select(DeadLetter.consumer, DeadLetter.error_code, func.count())
                    .where(DeadLetter.replayed_at.is_(None))
                    .group_by(DeadLetter.consumer, DeadLetter.error_code)).all()
            for consumer, code, count in rows:
                dead.add_metric([consumer or "", code or ""], count)
        return [backlog, oldest, dead]

    def _broker(self):
        from kombu import Connection

        ready = _gauge("cqo_queue_messages_ready", "Messages waiting in a queue this service consumes",
                       ["queue"])
        consumers = _gauge("cqo_queue_consumers", "Consumers attached to the queue", ["queue"])
        with Connection(self.provider.amqp_uri, connect_timeout=SOURCE_TIMEOUT_S) as connection:
            # each node of a cluster once, bounded like the health check
            connect(connection, timeout=SOURCE_TIMEOUT_S)
            for name in self.provider.queues():
                channel = connection.channel()
                try:
                    _, count, attached = channel.queue_declare(queue=name, passive=True)
                except Exception as exc:  # noqa: BLE001 - not declared yet: the channel closed
                    log.info("metrics: queue %s not found: %s", name, type(exc).__name__)
                    continue
                else:
                    ready.add_metric([name], count)
                    consumers.add_metric([name], attached)
                    channel.close()
        return [ready, consumers]

    def _management(self):
        from shared.messaging.management import Management, _q

        api = Management(self.provider.management_url, timeout=SOURCE_TIMEOUT_S)
        try:
            vhost = self.provider.vhost
            unacked = _gauge("cqo_queue_messages_unacked",
                             "Messages delivered to a consumer of the queue and not yet acked", ["queue"])
            for name in self.provider.queues():
                found = api.get(f"/queues/{_q(vhost)}/{_q(name)}")
                if found is not None:
                    unacked.add_metric([name], found.get("messages_unacknowledged", 0))
            shovels = _gauge("cqo_shovel_running",
                             "1 when the shovel runs, 0 otherwise; its state in the label",
                             ["vhost", "shovel", "state"])
            for status in api.get("/shovels") or []:
                state = str(status.get("state", ""))
                shovels.add_metric([str(status.get("vhost", "")), str(status.get("name", "")), state],
                                   1 if state == "running" else 0)
            return [unacked, shovels]
        finally:
            api.close()


class _Exposed:
    """What one scrape shows: every counted figure plus this container's read ones."""

    def __init__(self, counted, read: ScrapeCollector):
        self.counted, self.read = counted, read

    def collect(self):
        yield from self.counted.collect()
        yield from self.read.collect()


class ServiceMetrics(DependencyProvider):
    """Attached to every HttpBase service (shared.http) beside HealthProbe; the
    `/metrics` entrypoint asks it for the exposition."""

    def setup(self):
        config = self.container.config
        self.amqp_uri = config.get(AMQP_URI_CONFIG_KEY)
        self.management_url = str(config.get(MANAGEMENT_URL_KEY) or "").strip() or None
        self.vhost = vhost_of(self.amqp_uri or "")

    def start(self):
        PROCESSES.labels(self.container.service_name).set(1)

    # the container's parts the scrape reads
    def databases(self):
        from shared.dependencies import container_databases

        return container_databases(self.container)

    def relays(self):
        from shared.messaging.outbox import OutboxRelayProvider

        return [d.relay for d in self.container.dependencies
                if isinstance(d, OutboxRelayProvider) and d.relay is not None]

    def queues(self) -> list[str]:
        from nameko.messaging import Consumer

        return sorted({ep.queue.name for ep in self.container.entrypoints
                       if isinstance(ep, Consumer) and getattr(ep, "queue", None) is not None})

    def exposition(self) -> tuple[bytes, str]:
        directory = multiprocess_dir()
        if directory:
            from prometheus_client import multiprocess

            counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(counted, path=directory)
        else:
            counted = REGISTRY
        started = time.monotonic()
        body = generate_latest(_Exposed(counted, ScrapeCollector(self)))
        log.debug("metrics scrape of %s took %.3fs", self.container.service_name,
                  time.monotonic() - started)
        # the classic text format: what Prometheus 2 and 3 both read (our names need no escaping)
        return body, CONTENT_TYPE_PLAIN_0_0_4

    def get_dependency(self, worker_ctx):
        return self
