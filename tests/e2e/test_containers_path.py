"""The container path of the fixtures, for real: a broker from localhost/cqo-rabbitmq and a
PostgreSQL from localhost/cqo-postgres started by testcontainers (through podman's Docker
API here), with the registry and a county as real processes on them: the images honour
the official images' environment, and a filing round goes through them. Skipped without
an engine (the reason is shown), failed instead under CQO_REQUIRE_CONTAINERS=1."""
from __future__ import annotations

import pytest

from tests.e2e.support import Deployment, submit_over_http, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.containers]

COUNTY = "130921"


def test_a_filing_round_on_a_broker_and_database_started_by_testcontainers(
        container_broker, container_postgres_url, tmp_path, request):
    assert "127.0.0.1:5672/" not in container_broker.amqp_uri  # not the host's broker
    d = Deployment(container_broker, container_postgres_url, tmp_path / "stack",
                   counties=(COUNTY,), tag="tc")
    try:
        d.start()
        d.open_campaign()
        ids = submit_over_http(d, COUNTY, range(1, 11))
        assert d.submit_batch(COUNTY)["count"] == len(ids)
        wait_for(lambda: d.county_total(COUNTY, status="forwarded,waiting") == 0, 60,
                 lambda: f"{d.county_total(COUNTY, status='forwarded,waiting')} decisions missing")
        assert d.ledger_total(county=COUNTY) == len(ids)
        assert d.county_total(COUNTY, status="accepted") == len(ids)
        health = d.county_health(COUNTY)
        assert health["checks"]["database"] == "ok" and health["checks"]["broker"] == "ok", health
    except BaseException:
        print(d.log_tails())
        raise
    finally:
        d.close()
