"""`cqo serve registry --processes 2` as a real process tree (PostgreSQL, the local broker):
whichever process answers a scrape, /metrics sums what both counted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.keys import Keys
from tests.integration.registry_support import CountySide
from tests.support import infra, polling
from tests.e2e.support import SECRET, auth, free_port_offset

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REQUESTS = 40


def scrape(base: str) -> list:
    resp = requests.get(base + "/metrics", headers=auth("admin"), timeout=15)
    assert resp.status_code == 200, resp.text
    return [s for family in text_string_to_metric_families(resp.text) for s in family.samples]


def pick(samples, name: str, **labels) -> list:
    return [s for s in samples if s.name == name and labels.items() <= s.labels.items()]


@pytest.fixture
def two_processes(broker, postgres_url, tmp_path):
    """The registry under `cqo serve --processes 2`, with a PROMETHEUS_MULTIPROC_DIR of the
    test's own that holds a stale file of an earlier run; yields (base URL, metrics dir,
    AMQP URI, keys)."""
    run = uuid.uuid4().hex[:8]
    vhost, schema = f"cqo_e2e_metrics_{run}", f"e2e_metrics_{run}"
    amqp_uri = broker.create_vhost(vhost)
    port = 8001 + free_port_offset(0)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")
    env = {**os.environ, "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
           "DATABASE_URL": postgres_url, "DATABASE_SCHEMA": schema, "CQO_AUTH_SECRET": SECRET,
           "DEV_KEYS_DIR": str(tmp_path / "keys"), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
           "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "registry.log"
    with open(log_path, "ab") as log:
        supervisor = subprocess.Popen([sys.executable, "-m", "cqo.cli", "serve", "registry",
                                       "--processes", "2"], env=env, cwd=tmp_path, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        # both children up: each marks itself live when its container starts
        polling.wait_for(lambda: supervisor.poll() is None and _live_pids(base) == 2, 90,
                         lambda: "two registry processes live:\n" + _tail(log_path))
        yield base, metrics_dir, amqp_uri, Keys({"DEV_KEYS_DIR": str(tmp_path / "keys")}), supervisor
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=40) == 0, _tail(log_path)
    finally:
        try:  # the whole group: copies left behind by a failed test too
            os.killpg(supervisor.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        supervisor.wait(timeout=10)
        broker.delete_vhost(vhost)
        infra.drop_schema(postgres_url, schema)


def _live_pids(base: str) -> int:
    try:
        return len(pick(scrape(base), "cqo_service_process", service="registry"))
    except (requests.RequestException, AssertionError):
        return 0


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]) \
        if path.exists() else "(no log)"


def test_both_processes_are_counted_whichever_answers_the_scrape(two_processes):
    base, metrics_dir, amqp_uri, keys, _ = two_processes
    assert not (metrics_dir / "counter_999999.db").exists(), "the earlier run's figures were kept"
    for _ in range(REQUESTS):  # a new connection each: SO_REUSEPORT spreads them over both
        assert requests.get(base + "/api/v1/filings", headers=auth("city_officer"),
                            timeout=15).status_code == 200
    county = CountySide(amqp_uri, keys, counties=("130921",))
    try:
        filings = [county.filing(n=n) for n in range(1, 7)]
        for filing in filings:
            county.publish(filing)
        county.drain(until=lambda d: len(d) == len(filings), timeout=60)
    finally:
        county.close()

    # every process that served a request wrote its own histogram file
    writers = {p.name for p in metrics_dir.glob("histogram_*.db")}
    assert len(writers) == 2, f"one process served every request: {writers}"
    route = dict(method="GET", route="/api/v1/filings", status="200")
    for _ in range(6):  # answered by either process: always the sum of both
        samples = scrape(base)
        (count,) = pick(samples, "cqo_http_request_duration_seconds_count", **route)
        assert count.value == REQUESTS
        assert sum(s.value for s in pick(samples, "cqo_registry_decisions_total")) == len(filings)
        assert len(pick(samples, "cqo_service_process", service="registry")) == 2
        # read once per scrape, not once per process
        assert len(pick(samples, "cqo_outbox_backlog")) == 1


def test_the_copies_stop_when_their_supervisor_is_killed(two_processes):
    """SIGKILL of `cqo serve --processes 2` itself: no orphan keeps serving (each copy asked
    the kernel for a SIGTERM when its parent dies) and the port is free again."""
    base, _, _, _, supervisor = two_processes
    copies = {int(s.labels["pid"]) for s in pick(scrape(base), "cqo_service_process",
                                                   service="registry")}
    assert len(copies) == 2
    supervisor.kill()
    supervisor.wait(timeout=10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone too: the copies were reparented, their reaper may be slow
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"

    polling.wait_for(lambda: all(gone(pid) for pid in copies), 40,
                     lambda: f"copies still running: {[p for p in copies if not gone(p)]}")
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/api/v1/health", timeout=5)
