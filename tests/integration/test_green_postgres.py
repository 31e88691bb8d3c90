"""The PostgreSQL driver must not block eventlet's hub (docs/architecture.md, "nameko 2.14
on this stack")."""
import time

import eventlet
import psycopg2.extensions
import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.web.handlers import http
from sqlalchemy import text

from shared.dependencies import DatabaseProvider
from tests.support.infra import drop_schema

pytestmark = pytest.mark.integration


class SlowQueryService:
    name = "slow_query"
    db = DatabaseProvider(service_versions=None, default_sqlite="unused.db")

    @http("GET", "/slow")
    def slow(self, request):
        with self.db.unit_of_work() as uow:
            uow.session.execute(text("SELECT pg_sleep(2)"))
        return "slow"

    @http("GET", "/fast")
    def fast(self, request):
        with self.db.unit_of_work() as uow:
            return str(uow.session.execute(text("SELECT 1")).scalar())


def _fast_ms_while_slow_runs(base: str) -> float:
    """Latency of /fast asked 0.3 s after /slow, counted from when it was meant to go.

    A blocking driver freezes the whole process, this test's own greenthreads
    included, so the clock starts before the pause, not after it.
    """
    assert requests.get(base + "/fast", timeout=5).text == "1"  # warm the pool
    started = time.monotonic()
    slow = eventlet.spawn(requests.get, base + "/slow", timeout=10)
    eventlet.sleep(0.3)  # the slow query is now running on the server
    fast = requests.get(base + "/fast", timeout=5)
    fast_ms = (time.monotonic() - started - 0.3) * 1000
    assert fast.text == "1"
    assert slow.wait().text == "slow"
    assert time.monotonic() - started >= 2.0
    return fast_ms


@pytest.fixture
def slow_query_service(postgres_url, run_id, free_port):
    port, schema = free_port(), f"t_{run_id}_green"
    container = ServiceContainer(SlowQueryService, {
        "AMQP_URI": "memory://", "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "DATABASE_URL": postgres_url, "DATABASE_SCHEMA": schema})
    container.start()
    yield container, f"http://127.0.0.1:{port}"
    container.stop()
    drop_schema(postgres_url, schema)


def test_a_long_query_does_not_stall_other_requests(slow_query_service):
    fast_ms = _fast_ms_while_slow_runs(slow_query_service[1])
    assert fast_ms < 200, f"fast request took {fast_ms:.0f} ms while a query slept"


def test_control_a_blocking_driver_would_stall(slow_query_service):
    """Without the wait callback the same request waits for the slow query: the
    measurement above really tells a green driver from a blocking one."""
    container, base = slow_query_service
    (provider,) = [d for d in container.dependencies if isinstance(d, DatabaseProvider)]
    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    provider.database.engine.dispose()  # connections are made green or not when opened
    try:
        fast_ms = _fast_ms_while_slow_runs(base)
    finally:
        psycopg2.extensions.set_wait_callback(callback)
        provider.database.engine.dispose()
    assert fast_ms > 1000
