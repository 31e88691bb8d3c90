"""Notify service (city): turns domain events into Chinese notices and delivers them
(in-app inbox, e-mail over SMTP, SMS through an HTTP gateway), never twice, with a
delivery log (DESIGN.md section 2, docs/events.md "Who listens").

Thin nameko entrypoints: the `notify.events` consumer (delivery/intake.py), the
delivery timer (delivery/dispatch.py) and the HTTP areas (endpoints/); the plain rules
are in domain/.
"""
import logging
from pathlib import Path

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from shared import clock
from shared.contracts import events
from shared.dependencies import DatabaseProvider, TopologyDeclarer
from shared.http import HttpBase
from shared.keys import Keys
from shared.messaging import topology
from shared.messaging.consumer import consume_batch
from shared.messaging.dead import dead_letter_batch_on_error
from services.notify.delivery import intake
from services.notify.delivery.dispatch import Dispatcher
from services.notify.endpoints.inbox import InboxEndpoints
from services.notify.endpoints.log import DeliveryLogEndpoints
from services.notify.endpoints.offices import ContactEndpoints
from services.notify.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
EVENTS_CONSUMER = "notify.events"
EVENTS_BATCH = 100  # messages applied in one transaction at most
log = logging.getLogger(__name__)


class NotifyContext:
    def __init__(self, config):
        self.settings = Settings.from_config(config)
        self.cipher = Keys(dict(config)).id_cipher()
        self.dispatcher = Dispatcher(self.settings, self.cipher)
        # None: no gateway at all, told apart from an event without a template
        self.sms_templates = frozenset(self.settings.sms.templates) if self.settings.sms.url else None
        if self.settings.sms.url and not config.get("SMS_TEMPLATES"):
            # the shipped codes are examples: a gateway refuses codes not registered with it
            log.warning("SMS gateway set but SMS_TEMPLATES empty: using the example template codes of "
                        "config.yaml (SMS_DEFAULT_TEMPLATES); set the codes registered with the gateway")


class NotifyContextProvider(DependencyProvider):
    """Settings, keys and the channels (their connections reused across ticks), made once
    at start: a bad setting stops the start."""

    def setup(self):
        self.context = NotifyContext(self.container.config)

    def stop(self):
        self.context.dispatcher.close()

    def kill(self):
        self.context.dispatcher.close()

    def get_dependency(self, worker_ctx):
        return self.context


class NotifyService(InboxEndpoints, ContactEndpoints, DeliveryLogEndpoints, HttpBase):
    name = "notify"
    api_title = "市级通知服务"
    config = Config()
    db = DatabaseProvider(MIGRATIONS, default_sqlite="var/notify.db")
    # the domain events' queues (docs/events.md): declared by every city service
    declare_topology = TopologyDeclarer(lambda config: [topology.dead_queue(), *topology.event_queues()])
    notify = NotifyContextProvider()

    # the messages that arrived together, in one transaction: a source's outbox sends
    # most events one message each, and a commit per event bounded the intake
    @consume_batch(topology.events_queue(EVENTS_CONSUMER), max_batch=EVENTS_BATCH)
    @dead_letter_batch_on_error(EVENTS_CONSUMER)
    def receive_events(self, messages):
        # a body off the contract fails the batch; alone, it is dead-lettered
        received = [pair for body, _ in messages for pair in events.load_all(body)]
        ctx = self.notify
        with self.db.unit_of_work() as uow:
            intake.receive(uow, cipher=ctx.cipher, sms_templates=ctx.sms_templates,
                           quiet_hours=ctx.settings.quiet_hours, received=received, now=clock.now_utc())
            uow.commit()

    def _deliver_due(self):
        """Due deliveries, a batch at a time, until none is due."""
        ctx = self.notify
        try:
            while ctx.dispatcher.run(self.db, clock.now_utc()) >= ctx.settings.batch:
                pass
        except Exception:  # noqa: BLE001 - the next tick tries again; never kill the timer
            log.exception("delivery tick failed")


def build_service(config: dict) -> type:
    """The service with its delivery timer every DELIVERY_INTERVAL_S (a bad setting
    stops the start here)."""
    interval = Settings.from_config(config).interval_s

    @timer(interval=interval)
    def deliver(self):
        """到期的邮件和短信投递（重试按退避时间表，短信避开免打扰时段）"""
        self._deliver_due()

    return type("NotifyService", (NotifyService,), {"__module__": __name__, "deliver": deliver})
