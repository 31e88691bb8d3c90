"""Wait for the broker and the database before a service starts, with back-off.

In compose the service containers start together with the broker's and the database's,
and podman-compose ignores `depends_on: {condition: service_healthy}`; after a host
reboot the order is anyone's. A service that gave up at once would depend on its
restart policy to come up; it waits instead, logging what it waits for, and gives up
(exit code 4) only after START_WAIT_S seconds (environment CQO_START_WAIT_S; default
120; 0 = do not wait).
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

START_WAIT_ENV = "CQO_START_WAIT_S"
DEFAULT_START_WAIT_S = 120.0
FIRST_DELAY_S, MAX_DELAY_S = 0.5, 5.0


class DependencyUnavailable(RuntimeError):
    pass


def start_wait_s(config: dict) -> float:
    raw = config.get("START_WAIT_S")
    if raw in (None, ""):
        return DEFAULT_START_WAIT_S
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        raise DependencyUnavailable(f"{START_WAIT_ENV} 必须是秒数，收到 {raw!r}") from None


def _broker_ready(uri: str) -> None:
    from kombu import Connection

    from shared.messaging.broker import connect

    with Connection(uri, connect_timeout=3) as connection:
        connect(connection)  # every node of a cluster once; wait_for_dependencies backs off


def _database_ready(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from shared.db import normalise_url

    engine = create_engine(normalise_url(url), poolclass=NullPool,
                           connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def wait_for_dependencies(config: dict, timeout: float | None = None) -> None:
    """Returns once the broker (AMQP_URI) and a PostgreSQL DATABASE_URL accept a
    connection; raises DependencyUnavailable (Chinese message) after `timeout`."""
    timeout = start_wait_s(config) if timeout is None else timeout
    checks = []
    if config.get("AMQP_URI"):
        checks.append(("broker", "消息队列", lambda: _broker_ready(config["AMQP_URI"])))
    url = str(config.get("DATABASE_URL") or "")
    if url.startswith("postgres"):  # SQLite is a file: nothing to wait for
        checks.append(("database", "数据库", lambda: _database_ready(url)))
    deadline = time.monotonic() + timeout
    for name, name_zh, check in checks:
        delay, attempt = FIRST_DELAY_S, 0
        while True:
            attempt += 1
            try:
                check()
                if attempt > 1:
                    log.info("%s is up after %d attempts", name, attempt)
                break
            except Exception as exc:  # noqa: BLE001 - any failure to connect is "not yet"
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("%s still unavailable after %.0f s: %s", name, timeout, exc)
                    raise DependencyUnavailable(
                        f"{name_zh}在 {timeout:.0f} 秒内不可用：{type(exc).__name__}") from exc
                log.warning("waiting for the %s (attempt %d, next in %.1f s): %s",
                            name, attempt, min(delay, left), exc)
                time.sleep(min(delay, left))
                delay = min(delay * 2, MAX_DELAY_S)
