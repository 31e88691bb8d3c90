"""Registry service (city): the authoritative CQO register (arts. 3, 12, 14, 16).

Thin nameko entrypoints: each area of the measures (register/, campaigns/, roster/,
oversight/, reporting/) has its use cases, its endpoints (mixed in here) and its
schemas; docs/architecture.md has the map.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from shared import clock
from shared.config import invalid_setting
from shared.contracts import WITHDRAWAL_ROUTING_KIND, jurisdiction, use_jurisdiction
from shared.dependencies import DatabaseProvider, TopologyDeclarer
from shared.domain.qualification import RuleSet, rules_from_config
from shared.http import HttpBase
from shared.keys import Keys
from shared.messaging import topology
from shared.messaging.consumer import consume
from shared.messaging.dead import dead_letter_on_error
from shared.messaging.inbox import Inbox
from shared.messaging.outbox import OutboxRelayProvider
from shared.validators.divisions import Jurisdiction
from services.registry.campaigns import progress
from services.registry.register import certificates, current, intake
from services.registry import trust
from services.registry.reporting.endpoints import ReportingEndpoints
from services.registry.oversight.endpoints import OversightEndpoints
from services.registry.roster.endpoints import RosterEndpoints
from services.registry.campaigns.endpoints import CampaignEndpoints
from services.registry.register.endpoints import RegisterEndpoints

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
CONSUMER = "registry.intake"


def counties_on_this_broker(config) -> list[str]:
    """Every county of the jurisdiction when the counties share the city's broker; none
    in a multi-site deployment (BROKER_TRUST=per-county), where their queues live on
    their own brokers and the shovels carry the city's messages there."""
    if trust.mode_of(config) == trust.PER_COUNTY:
        return []
    return jurisdiction().filing_counties()


def waiting_timeout(config) -> timedelta:
    """WAITING_TIMEOUT_HOURS: how long a filing waits for its predecessor."""
    value = config.get("WAITING_TIMEOUT_HOURS")
    try:
        hours = 168.0 if value in (None, "") else float(value)
    except (TypeError, ValueError):
        hours = -1.0
    if not 0 < hours < 100_000 or isinstance(value, bool):
        raise invalid_setting("WAITING_TIMEOUT_HOURS", f"应为正数（小时），而不是“{value}”",
                              f"must be a positive number of hours, not {value!r}")
    return timedelta(hours=hours)


def check_settings(config) -> tuple[RuleSet, trust.BrokerTrust]:
    """The registry's own settings, parsed: a bad one raises SettingError and the
    service does not start (rather than failing on the first message or timer tick)."""
    waiting_timeout(config)
    return rules_from_config(config), trust.from_config(config)


class IntakeContextProvider(DependencyProvider):
    """Keys and rules of the city, read once at start rather than per message."""

    def setup(self):
        config = self.container.config
        rules, broker_trust = check_settings(config)
        keys = Keys(config)
        self.context = intake.IntakeContext(
            city_private_key=keys.get("CITY_PRIVATE_KEY"), hmac_key=keys.get("ID_HMAC_KEY"),
            cipher=keys.id_cipher(), rules=rules, trust=broker_trust)

    def get_dependency(self, worker_ctx):
        return self.context


class RegistryService(RegisterEndpoints, CampaignEndpoints, RosterEndpoints, ReportingEndpoints, OversightEndpoints, HttpBase):
    name = "registry"
    api_title = "市级首席质量官备案登记服务"
    config = Config()
    db = DatabaseProvider(MIGRATIONS, default_sqlite="var/registry.db")
    declare_topology = TopologyDeclarer(lambda config: topology.registry_queues(
        counties_on_this_broker(config)))
    outbox_relay = OutboxRelayProvider("db")
    intake_context = IntakeContextProvider()
    talent = RpcProxy("talent")  # training figures of the assessment report, with a deadline

    @consume(topology.intake_queue(), prefetch=lambda config: int(config.get("INTAKE_PREFETCH") or 2))
    @dead_letter_on_error(CONSUMER)
    def receive_filings(self, body, message):
        decided = {}
        with self.db.unit_of_work() as uow:
            if not Inbox.first_time(uow, CONSUMER, message.message_id or ""):
                return  # a redelivery of a message already applied
            if (message.routing_key or "").endswith(".progress"):  # a county's campaign counts
                progress.receive(uow, self.intake_context, body, routing_key=message.routing_key,
                                 message_id=message.message_id, user_id=message.user_id)
            elif (message.routing_key or "").endswith("." + WITHDRAWAL_ROUTING_KIND):
                intake.withdraw(uow, self.intake_context, body, routing_key=message.routing_key,
                                message_id=message.message_id, user_id=message.user_id)
            else:
                decided = intake.receive(uow, self.intake_context, body, routing_key=message.routing_key,
                                         message_id=message.message_id, user_id=message.user_id,
                                         headers=message.headers)
            uow.commit()
        intake.log_decided(decided)

    @rpc
    def current_appointments(self, after_id=0, limit=current.MAX_LIMIT):
        """The register's current appointments as `register.appointment.accepted` data,
        a page after `after_id`: the talent pool's initial fill (docs/events.md)."""
        with self.db.unit_of_work() as uow:
            return current.current_appointments(uow.session, after_id, limit)

    @consume(topology.events_queue(certificates.CONSUMER))
    @dead_letter_on_error(certificates.CONSUMER)
    def receive_events(self, body, message):
        """Talent's certificates, for the art. 6 check (docs/events.md, "Who listens")."""
        with self.db.unit_of_work() as uow:
            if not Inbox.first_time(uow, certificates.CONSUMER, message.message_id or ""):
                return  # the same event again
            certificates.receive(uow, self.intake_context.rules, body)
            uow.commit()

    @timer(interval=60)
    def recheck_certificates(self):
        while True:
            with self.db.unit_of_work() as uow:
                done = certificates.sweep(uow, self.intake_context.rules, clock.now_utc())
                uow.commit()
            if done < certificates.SWEEP_BATCH:
                return

    @timer(interval=60)
    def expire_waiting_filings(self):
        with self.db.unit_of_work() as uow:
            intake.expire_waiting(uow, clock.now_utc() - waiting_timeout(self.config))
            uow.commit()


def build_service(config: dict) -> type:
    if config.get("JURISDICTION_CSV"):
        use_jurisdiction(Jurisdiction.from_csv(config["JURISDICTION_CSV"]))
    jurisdiction()
    check_settings(config)  # after the jurisdiction: COUNTY_BROKER_USERS names its counties
    return RegistryService
