"""What `GET /api/v1/health` checks besides answering: the service's database and its
broker. A container, compose or `cqo stack health` counts a service as healthy only when
both answer, not merely when its port does.

`HealthProbe` is attached to every concrete HttpBase service (see shared.http), so each
service gets the checks without declaring anything.
"""
from __future__ import annotations

import logging
import time

from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from sqlalchemy import text

from shared.messaging.broker import connect

log = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 2.0
# a load balancer or an orchestrator may poll every second: one broker connection per
# this many seconds at most
BROKER_CACHE_S = 2.0


class HealthProbe(DependencyProvider):
    def setup(self):
        self.amqp_uri = self.container.config.get(AMQP_URI_CONFIG_KEY)
        self._broker_checked = (0.0, False)

    def check_databases(self) -> bool | None:
        """None when the service has no database."""
        from shared.dependencies import container_databases

        databases = container_databases(self.container)
        if not databases:
            return None
        try:
            for database in databases:
                with database.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            log.warning("health check: database unavailable: %s", exc)
            return False

    def check_broker(self) -> bool | None:
        if not self.amqp_uri:
            return None
        at, ok = self._broker_checked
        if time.monotonic() - at < BROKER_CACHE_S:
            return ok
        from kombu import Connection

        try:
            with Connection(self.amqp_uri, connect_timeout=BROKER_TIMEOUT_S) as connection:
                # one attempt per node of a cluster, bounded: a health answer must come
                # before the caller's timeout (a refused node costs nothing, a silent
                # one its connect timeout)
                connect(connection, timeout=BROKER_TIMEOUT_S)
            ok = True
        except Exception as exc:  # noqa: BLE001
            log.warning("health check: broker unavailable: %s", exc)
            ok = False
        self._broker_checked = (time.monotonic(), ok)
        return ok

    def checks(self) -> dict[str, str]:
        """{"database": "ok"|"unavailable", "broker": ...}; a check that does not apply
        is left out."""
        found = {"database": self.check_databases(), "broker": self.check_broker()}
        return {name: "ok" if ok else "unavailable" for name, ok in found.items() if ok is not None}

    def get_dependency(self, worker_ctx):
        return self


def health_body(checks: dict[str, str], **fields) -> tuple[dict, int]:
    """The health answer: 200 when every check is ok, else 503 with a Chinese detail."""
    failed = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failed else "degraded", **fields, "checks": checks}
    if failed:
        names = {"database": "数据库", "broker": "消息队列"}
        body["detail"] = "、".join(names.get(n, n) for n in failed) + "不可用"
        return body, 503
    return body, 200
