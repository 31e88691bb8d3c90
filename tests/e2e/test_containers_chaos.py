"""The whole stack in containers on PostgreSQL (docker-compose.yml under podman-compose),
end to end, then chaos (issue 12).

The round is the demo's, through the published ports (`cqo demo --compose`): the city
opens the campaign, both counties see it, enterprises file, the counties review and
batch-submit, the city decides, every decision reaches its county, and the counties'
table matches the city's ledger. Then, the counts checked after each:

1. the registry container SIGKILLed mid-batch and started again;
2. the broker container stopped and started while a batch waits in its queue (kept);
3. the database frozen for 20 s (`podman pause`, checked to really freeze it; otherwise
   stopped and started) right after a batch;
4. a county container stopped while the city decides its batch and closes the campaign,
   then started: the decisions and the notice waited for it.

At the end every filing is in the register exactly once and every decision is at its
county. The counts asserted are printed (`pytest -s`, and in the report on failure).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from shared.messaging.topology import REGISTRY_INTAKE
from tests.e2e.compose_stack import (APP_SERVICES, COUNTIES, ComposeDeployment, ComposeStack,
                                     postgres_rows)
from tests.e2e.support import HTTP_TIMEOUT, city, officer, submit_over_http, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.containers, pytest.mark.timeout(900)]

A, B = COUNTIES
CHUNK = 2  # small chunks: a batch is many messages, so a kill lands between them


@pytest.fixture
def stack(tmp_path, request):
    if shutil.which("podman") is None:  # an engine's API alone does not run podman-compose
        missing = "the compose stack needs the podman command (podman-compose runs it)"
        if request.config.getoption("--require-containers"):
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    s = ComposeStack(tmp_path / "compose", env={"BATCH_CHUNK_SIZE": CHUNK,
                                                "PROGRESS_INTERVAL_S": 2}, prefix="cqochaos")
    try:
        s.healthy_after_s = s.up()
        yield s
    finally:
        failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
        if failed:
            for name in (*APP_SERVICES, "rabbitmq", "postgres"):
                print(f"\n===== {name} =====\n{s.logs(name)}")
        s.down()


def say(text: str) -> None:
    print(f"[chaos] {text}", flush=True)


class Counts:
    """What the stack holds, from the services' APIs and the register's table."""

    def __init__(self, stack: ComposeStack, d: ComposeDeployment):
        self.stack, self.d = stack, d
        self.filed = {c: 0 for c in COUNTIES}  # filings of this test's phases (after the round)
        self.base: dict[str, int] = {}

    def decided_at_county(self, county: str) -> int:
        return sum(self.d.county_total(county, status=s) for s in ("accepted", "rejected"))

    def ledger_rows(self) -> tuple[int, int]:
        (total, distinct), = postgres_rows(
            self.stack, "SELECT count(*), count(DISTINCT (filing_id, version)) "
                        "FROM registry.filing_ledger")
        return total, distinct

    def settle(self, phase: str, timeout: float = 240) -> dict:
        """Waits for every decision at its county; asserts the register holds every
        filing exactly once and each county's decisions match the city's ledger."""
        def done():
            left = {c: self.d.county_total(c, status="forwarded,waiting,approved") for c in COUNTIES}
            return not any(left.values())

        begin = time.monotonic()
        wait_for(done, timeout, lambda: f"{phase}: not all decided: " + json.dumps(
            {c: self.d.county_total(c, status="forwarded,waiting,approved") for c in COUNTIES}),
            interval=0.5)
        counts = {"phase": phase, "settled_s": round(time.monotonic() - begin, 1)}
        total, distinct = self.ledger_rows()
        assert total == distinct, f"{phase}: {total} ledger rows, {distinct} distinct filing versions"
        counts["ledger_rows"] = total
        for county in COUNTIES:
            at_city = self.d.ledger_total(county=county)
            at_county = self.decided_at_county(county)
            assert at_city == at_county == self.base[county] + self.filed[county], (
                phase, county, at_city, at_county, self.base[county], self.filed[county])
            counts[county] = {"city_ledger": at_city, "county_decided": at_county,
                              "filed_in_phases": self.filed[county]}
        assert total == sum(counts[c]["city_ledger"] for c in COUNTIES)
        say(json.dumps(counts, ensure_ascii=False))
        return counts

    def file(self, county: str, n: int) -> list[str]:
        start = 100000 + 1000 * len(self.base) + sum(self.filed.values())
        ids = submit_over_http(self.d, county, range(start, start + n))
        self.filed[county] += n
        return ids


def test_the_stack_in_containers_survives_chaos(stack, tmp_path):
    wall = time.monotonic()
    say(f"project {stack.project}: healthy {stack.healthy_after_s:.1f} s after up, ports {stack.ports}")
    d = ComposeDeployment(stack)

    # -- the round: the demo's, through the published ports --------------------------------
    began = time.monotonic()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    demo = subprocess.run([sys.executable, "-m", "cqo.cli", "demo", "--compose", str(stack.file),
                           "--secret-file", str(stack.secret_file), "--dir", str(tmp_path / "demo"),
                           "--timeout", "120"], env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    result = json.loads((tmp_path / "demo" / "demo-result.json").read_text(encoding="utf-8"))
    assert result["consistent"] and all(r["pending"] == 0 for r in result["rows"]), result["rows"]
    counts = Counts(stack, d)
    for county in COUNTIES:
        counts.base[county] = counts.decided_at_county(county)
        campaign = requests.get(d.county_url(county) + "/campaign", headers=officer(county),
                                timeout=HTTP_TIMEOUT).json()
        assert campaign["status"] == "open", campaign
    year = result["year"]
    say(f"round (demo): {time.monotonic() - began:.1f} s, city ledger {result['city_totals']}, "
        f"decided per county {counts.base}")
    counts.settle("round")

    # -- 1. the registry SIGKILLed mid-batch ------------------------------------------------
    counts.file(A, 40)
    before = counts.ledger_rows()[0]
    batch = d.submit_batch(A)
    assert (batch["count"], batch["chunks"]) == (40, 40 // CHUNK), batch
    wait_for(lambda: counts.ledger_rows()[0] > before, 60, "a first decision of the batch",
             interval=0.02)
    stack.podman("kill", "registry", "--signal", "KILL")
    at_kill = counts.ledger_rows()[0] - before
    time.sleep(1)
    stack.podman("start", "registry")  # a no-op if its restart policy was quicker
    stack.wait_healthy()
    say(f"1. registry SIGKILLed with {at_kill} of the batch's 40 filings in the register, started again")
    counts.settle("1 registry SIGKILL mid-batch")

    # -- 2. the broker stopped and started with a batch queued ------------------------------
    _batch_waiting_for_the_registry(stack, counts, d, B, 30)
    queued = stack.queue_depth(REGISTRY_INTAKE)
    stack.podman("stop", "rabbitmq", "-t", "30")
    stack.podman("start", "rabbitmq")
    kept = wait_for(lambda: _depth_or_none(stack), 120, "the broker back")
    assert kept >= 30 // CHUNK and kept >= queued, (queued, kept)
    say(f"2. broker stopped and started: {REGISTRY_INTAKE} held {queued} messages before, {kept} after")
    stack.podman("start", "registry")
    stack.wait_healthy()
    counts.settle("2 broker restart with a batch queued")

    # -- 3. the database frozen for 20 s right after a batch --------------------------------
    counts.file(A, 20)
    d.submit_batch(A)
    stack.podman("pause", "postgres")
    frozen_at = time.monotonic()
    if _database_answers(stack):
        stack.podman("unpause", "postgres")
        say("3. podman pause did not freeze the database here: stopping it for 20 s instead")
        stack.podman("stop", "postgres", "-t", "10")
        time.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
        stack.podman("start", "postgres")
        how = "stopped"
    else:
        time.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
        stack.podman("unpause", "postgres")
        how = "paused (a connection attempt timed out: really frozen)"
    say(f"3. database {how} for {time.monotonic() - frozen_at:.1f} s")
    stack.wait_healthy()
    counts.settle("3 database frozen 20 s")

    # -- 4. a county stopped while the city decides its batch and closes the campaign ------
    _batch_waiting_for_the_registry(stack, counts, d, B, 20)
    stack.podman("stop", f"filing_{B}", "-t", "20")
    stack.podman("start", "registry")
    stack.wait_healthy(only=("registry",))
    decisions = f"filing.{B}.decisions"
    wait_for(lambda: d.ledger_total(county=B) == counts.base[B] + counts.filed[B], 120,
             lambda: f"city decided {d.ledger_total(county=B)} of {B}'s filings")
    resp = requests.post(f"{d.registry_url}/campaigns/{year}/close", headers=city(), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text
    notices = f"filing.{B}.notices"
    wait_for(lambda: stack.queue_depth(notices) >= 1, 30, f"the closing notice queued for {B}")
    waiting = stack.queue_depth(decisions)
    assert waiting >= 1, "the decisions were meant to wait for the stopped county"
    say(f"4. {B} stopped: {waiting} decision messages and {stack.queue_depth(notices)} notice(s) waited")
    stack.podman("start", f"filing_{B}")
    stack.wait_healthy()
    counts.settle(f"4 county {B} stopped while decided and notified")
    for county in COUNTIES:  # the closing notice applied: no open campaign any more
        resp = requests.get(d.county_url(county) + "/campaign", headers=officer(county),
                            timeout=HTTP_TIMEOUT)
        assert (resp.status_code, resp.json()["code"]) == (404, "CAMPAIGN_NOT_OPEN"), (county, resp.text)
    assert stack.queue_depth(decisions) == 0 and stack.queue_depth(notices) == 0

    # -- the end: every filing in the register exactly once, every decision at its county --
    total, distinct = counts.ledger_rows()
    expected = sum(counts.base.values()) + sum(counts.filed.values())
    assert total == distinct == expected, (total, distinct, expected)
    say(f"end: register {total} rows = {distinct} distinct filing versions = {expected} expected "
        f"({sum(counts.base.values())} of the round + {sum(counts.filed.values())} of the phases); "
        f"every county holds its decisions; chaos test {time.monotonic() - wall:.1f} s "
        f"(+ {stack.healthy_after_s:.1f} s up)")


def _batch_waiting_for_the_registry(stack: ComposeStack, counts: Counts, d: ComposeDeployment,
                                    county: str, n: int) -> None:
    """The registry stopped, `n` filings batch-submitted at `county`: their chunks wait
    in the registry's intake queue."""
    stack.podman("stop", "registry", "-t", "20")
    counts.file(county, n)
    d.submit_batch(county)
    wait_for(lambda: stack.queue_depth(REGISTRY_INTAKE) >= n // CHUNK, 60,
             lambda: f"{REGISTRY_INTAKE}: {stack.queue_depth(REGISTRY_INTAKE)} queued")


def _depth_or_none(stack: ComposeStack) -> int | None:
    try:
        return stack.queue_depth(REGISTRY_INTAKE)
    except Exception:  # noqa: BLE001 - not back yet
        return None


def _database_answers(stack: ComposeStack, timeout: float = 3.0) -> bool:
    """Does the server answer a protocol request within `timeout`? A frozen server's TCP
    connection is still accepted (by the kernel), but nothing answers. A raw socket:
    psycopg2 under the suite's eventlet is green and ignores connect_timeout."""
    import socket
    import struct

    try:
        with socket.create_connection(("127.0.0.1", stack.ports["postgres"]), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest: answered 'S' or 'N'
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False
