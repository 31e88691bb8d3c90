"""Talent service (city): training (art. 6, art. 15 教育培训), the CQO talent pool and
city-level experts (art. 15 人才建设), panel draws (art. 10 回避), benchmarks and typical
experiences (art. 17).

Thin nameko entrypoints; each area (training/, pool/, draws/, experiences/) has its use
cases, endpoints and schemas; the plain rules are in domain/.
"""
from pathlib import Path

from nameko.dependency_providers import Config

from shared.dependencies import DatabaseProvider, TopologyDeclarer
from shared.http import HttpBase
from shared.messaging import topology
from shared.messaging.outbox import OutboxRelayProvider
from services.talent.draws.endpoints import DrawEndpoints
from services.talent.pool.endpoints import PoolEndpoints
from services.talent.experiences.endpoints import ExperienceEndpoints
from services.talent.training.endpoints import TrainingEndpoints

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class TalentService(TrainingEndpoints, PoolEndpoints, DrawEndpoints, ExperienceEndpoints, HttpBase):
    name = "talent"
    api_title = "市级首席质量官人才服务"
    config = Config()
    db = DatabaseProvider(MIGRATIONS, default_sqlite="var/talent.db")
    # the domain events' queues (docs/events.md): declared by every city service
    declare_topology = TopologyDeclarer(lambda config: [topology.dead_queue(), *topology.event_queues()])
    outbox_relay = OutboxRelayProvider("db")


def build_service(config: dict) -> type:
    return TalentService
