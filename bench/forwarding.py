"""Batch submission end to end (issue 3): 10,000 approved filings at one county on
PostgreSQL, POST /batches, until every decision is recorded back at the county.

Baseline, in the same run: a bare kombu publish -> consume -> ack of the same payloads
through the same broker, one message per filing, into a quorum queue like the
registry's intake.

    python -m bench.forwarding [--filings 10000] [--registry-processes 2]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from kombu import Connection, Consumer, Exchange, Producer, Queue
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, insert, select, text

from bench.common import SECRET, free_port, isolated_infra, serve_args, spawn, stop, wait_http
from services.filing.models import Filing, FilingVersion
from shared.auth import issue_token
from shared.db import Database
from shared.keys import Keys
from shared.migrate import upgrade
from shared.personal_data import IdCipher, generate_key
from tests.support.factories import filing_message, resident_id_for, uscc_for

console = Console(stderr=True)
COUNTY = "130921"


def seed_county(db: Database, keys: Keys, count: int, channel: str = "campaign") -> list[dict]:
    """Filings as the county holds them after pre-review: campaign ones approved (they
    wait for POST /batches), proactive ones forwarded (approval forwards them; their
    outbox rows are the caller's to write, bench.multisite)."""
    hmac_key, public_key = keys.get("ID_HMAC_KEY"), keys.get("CITY_PUBLIC_KEY")
    cipher = IdCipher(generate_key())
    now, wires = datetime.now(timezone.utc), []
    campaign = channel == "campaign"
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("准备已预审通过的备案…", total=count)
        for start in range(0, count, 1000):
            filings, versions = [], []
            for n in range(start, min(count, start + 1000)):
                wire = filing_message(county=COUNTY, uscc=uscc_for(COUNTY, n), person=n,
                                      hmac_key=hmac_key, city_public_key=public_key,
                                      channel=channel, submitted=date(2026, 3, 2))
                wires.append(wire)
                cqo = {k: v for k, v in wire["cqo"].items() if not k.startswith("id_")}
                filings.append({
                    "id": wire["filing_id"], "county": COUNTY, "uscc": wire["enterprise"]["uscc"],
                    "enterprise_name": wire["enterprise"]["name"],
                    "category": wire["enterprise"]["category"], "kind": "establishment",
                    "channel": channel, "campaign_year": 2026 if campaign else None,
                    "status": "approved" if campaign else "forwarded",
                    "version": 1, "submitted_to_county_on": date(2026, 3, 2), "created_at": now,
                    "updated_at": now, "created_by": "bench", "cqo_name": cqo["name"],
                    "cqo_id_masked": wire["cqo"]["id_masked"], "approved_on": date(2026, 3, 2),
                    "approved_by": "县局预审员", "forwarded_at": None if campaign else now})
                versions.append({
                    "filing_id": wire["filing_id"], "version": 1, "submitted_at": now,
                    "submitted_by": "bench",
                    "data": {"kind": "establishment", "enterprise": wire["enterprise"], "cqo": cqo,
                             "appointment": wire["appointment"]},
                    "id_type": "resident_id", "id_encrypted": cipher.encrypt(resident_id_for(n)),
                    "id_hmac": wire["cqo"]["id_hmac"], "id_sealed": wire["cqo"]["id_sealed"],
                    "id_masked": wire["cqo"]["id_masked"], "findings": [], "wire": wire})
            with db.engine.begin() as conn:
                conn.execute(insert(Filing), filings)
                conn.execute(insert(FilingVersion), versions)
            progress.advance(task, len(filings))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return wires


def cpu_seconds(process) -> float:
    """CPU time (user + system) used so far by the process group a spawned service leads
    (its worker processes too): less disturbed by other load on the machine than the
    wall clock, so two versions can be compared on a busy machine."""
    return _cpu_where(lambda command, group: group == process.pid)


def broker_cpu_seconds() -> float:
    """CPU time used so far by a RabbitMQ on this machine (its Erlang VM, where the
    shovels run too); 0 when the broker runs elsewhere."""
    return _cpu_where(lambda command, group: command == "beam.smp")


def _cpu_where(selected) -> float:
    """CPU seconds of the processes for which selected(command name, process group)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                head, tail = stat.read().rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        fields = tail.split()
        if selected(head.split("(", 1)[1], int(fields[2])):  # fields[2]: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def decided(db: Database) -> int:
    return db.read(lambda c: c.execute(
        select(func.count()).select_from(Filing).where(Filing.decision_outcome.is_not(None))).scalar())


def phase_times(pg_url: str, county_schema: str, registry_schema: str,
                since: datetime | None = None) -> dict[str, float]:
    """Where the time went, from the services' own timestamps: seconds after `since`
    (default: the county's first batch) at which the county's relay published its last
    filing, the city received its first and last filing message and made its last
    decision, wrote its last decision message and published it, and the county recorded
    its last decision."""
    county, registry = Database(pg_url, schema=county_schema), Database(pg_url, schema=registry_schema)
    try:
        if since is None:
            since = county.read(lambda c: c.execute(text(
                "SELECT min(created_at) FROM filing_batches")).scalar())
        published = county.read(lambda c: c.execute(text(
            "SELECT max(sent_at) FROM outbox_messages WHERE exchange = 'cqo.filings'")).scalar())
        first_in, last_in, last_decided = registry.read(lambda c: c.execute(text(
            "SELECT min(received_at), max(received_at), max(decided_at) FROM filing_ledger")).one())
        last_queued, last_sent = registry.read(lambda c: c.execute(text(
            "SELECT max(created_at), max(sent_at) FROM outbox_messages "
            "WHERE exchange = 'cqo.decisions'")).one())
        back = county.read(lambda c: c.execute(text(
            "SELECT max(received_at) FROM filing_decisions")).scalar())
    finally:
        county.dispose()
        registry.dispose()
    times = {"published": published, "first_in": first_in, "last_in": last_in,
             "last_decided": last_decided, "last_queued": last_queued, "last_sent": last_sent,
             "back": back}
    return {name: (t - since).total_seconds() for name, t in times.items()}


def phase_report(pg_url: str, county_schema: str, registry_schema: str) -> str:
    """Where the time went (seconds after the batch)."""
    t = phase_times(pg_url, county_schema, registry_schema)
    return (f"阶段（秒）：市局收到首批 {t['first_in']:.2f}，收到末批 {t['last_in']:.2f}，"
            f"末条决定 {t['last_decided']:.2f}，决定写入发件箱 {t['last_queued']:.2f}，"
            f"发出 {t['last_sent']:.2f}，县局收齐决定 {t['back']:.2f}")


def bare_kombu(amqp_uri: str, payloads: list[bytes]) -> float:
    """Messages per second: publish each payload, consume and ack it, same broker."""
    exchange = Exchange(f"bench.bare.{uuid.uuid4().hex[:6]}", type="topic", durable=True)
    queue = Queue(f"bench.bare.{uuid.uuid4().hex[:6]}", exchange=exchange, routing_key="filing.#",
                  durable=True, queue_arguments={"x-queue-type": "quorum"})
    done = threading.Event()
    received = [0]
    with Connection(amqp_uri) as consumer_conn, Connection(amqp_uri) as producer_conn:
        queue(consumer_conn.channel()).declare()

        def on_message(body, message):
            message.ack()
            received[0] += 1
            if received[0] == len(payloads):
                done.set()

        def consume():
            with Consumer(consumer_conn, queues=[queue], callbacks=[on_message],
                          accept=["json", "application/json"], prefetch_count=200):
                while not done.is_set():
                    try:
                        consumer_conn.drain_events(timeout=1)
                    except TimeoutError:
                        pass

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        time.sleep(0.5)  # the consumer is attached
        producer = Producer(producer_conn.channel())
        started = time.perf_counter()
        for payload in payloads:
            producer.publish(payload, exchange=exchange, routing_key=f"filing.{COUNTY}.establishment",
                             content_type="application/json", content_encoding="utf-8",
                             delivery_mode=2, message_id=str(uuid.uuid4()))
        done.wait(300)
        elapsed = time.perf_counter() - started
        thread.join(5)
        queue(consumer_conn.channel()).delete()
        exchange(consumer_conn.channel()).delete()
    return len(payloads) / elapsed


def submit_and_wait(county_db: Database, county_url: str, secret: str, filings: int,
                    timeout: float = 600) -> tuple[float, float, int]:
    """POST /batches at the county, then until every filing has its decision there:
    (seconds in all, seconds of the POST, filings decided)."""
    import requests

    token = issue_token(secret, "county_officer", county=COUNTY, ttl=timedelta(hours=1))
    started = time.perf_counter()
    response = requests.post(f"{county_url}/api/v1/batches", json={},
                             headers={"Authorization": f"Bearer {token}"}, timeout=120)
    response.raise_for_status()
    submitted_in = time.perf_counter() - started
    count = wait_decided(county_db, filings, timeout)
    return time.perf_counter() - started, submitted_in, count


def wait_decided(county_db: Database, filings: int, timeout: float = 600) -> int:
    """Until `filings` filings have their decision at the county (or `timeout` seconds):
    how many have."""
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("等待市局决定回传县局…", total=filings)
        deadline = time.monotonic() + timeout
        count = 0
        while count < filings and time.monotonic() < deadline:
            time.sleep(0.1)
            count = decided(county_db)
            progress.update(task, completed=count)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filings", type=int, default=10_000)
    parser.add_argument("--registry-processes", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=500)
    args = parser.parse_args()

    with isolated_infra("forwarding") as (amqp_uri, pg_url, prefix, schemas), \
            tempfile.TemporaryDirectory() as tmp:
        county_schema, registry_schema = f"{prefix}_filing", f"{prefix}_registry"
        schemas += [county_schema, registry_schema]
        keys = Keys({"DEV_KEYS_DIR": f"{tmp}/keys"})
        common = {"AMQP_URI": amqp_uri, "DATABASE_URL": pg_url, "CQO_AUTH_SECRET": SECRET,
                  "DEV_KEYS_DIR": f"{tmp}/keys", "LOG_LEVEL": "WARNING"}
        county_db = Database(pg_url, schema=county_schema)
        upgrade(county_db, Path("services/filing/migrations/versions"))
        wires = seed_county(county_db, keys, args.filings)

        registry_port, county_port = free_port(), free_port()
        registry = spawn(serve_args("registry", "--port", str(registry_port), "--processes",
                                    str(args.registry_processes)),
                         {**common, "DATABASE_SCHEMA": registry_schema}, Path(tmp) / "registry.log")
        county = spawn(serve_args("filing", "--county", COUNTY, "--port", str(county_port)),
                       {**common, "DATABASE_SCHEMA": county_schema,
                        "BATCH_CHUNK_SIZE": str(args.chunk_size)}, Path(tmp) / "county.log")
        try:
            wait_http(f"http://127.0.0.1:{registry_port}/api/v1/health", process=registry)
            wait_http(f"http://127.0.0.1:{county_port}/api/v1/health", process=county)
            cpu_before = cpu_seconds(registry), cpu_seconds(county)
            elapsed, submitted_in, count = submit_and_wait(
                county_db, f"http://127.0.0.1:{county_port}", SECRET, args.filings)
            cpu = (cpu_seconds(registry) - cpu_before[0], cpu_seconds(county) - cpu_before[1])
            if count < args.filings:
                raise SystemExit(f"超时：{count}/{args.filings} 条备案收到决定，详见 {tmp} 中的日志")
            accepted = county_db.read(lambda c: c.execute(text(
                "SELECT count(*) FROM filings WHERE decision_outcome = 'accepted'")).scalar())
            phases = phase_report(pg_url, county_schema, registry_schema)
        finally:
            stop(county)
            stop(registry)
            county_db.dispose()
        filings_per_s = args.filings / elapsed
        with console.status("基线：kombu 逐条发布→消费→确认…"):
            payloads = [json.dumps(w, ensure_ascii=False).encode() for w in wires]
            baseline = bare_kombu(amqp_uri, payloads)

    print(f"{args.filings:,} 条备案集中报送至市局并收到决定：{elapsed:.2f} 秒，{filings_per_s:,.0f} 条/秒"
          f"（通过 {accepted:,} 条；市局 {args.registry_processes} 个进程，每批 {args.chunk_size} 条）")
    print(f"县局集中报送请求 {submitted_in:.2f} 秒；" + phases)
    print(f"CPU（秒，含各工作进程）：市局 {cpu[0]:.2f}，县局 {cpu[1]:.2f}；"
          f"每千条备案市局 {1000 * cpu[0] / args.filings:.2f} 秒")
    print(f"基线（kombu 逐条发布→消费→确认，同一消息代理）：{baseline:,.0f} 条/秒")
    print(f"RESULT filings_per_s={filings_per_s:.0f} baseline_msgs_per_s={baseline:.0f} "
          f"ratio={filings_per_s / baseline:.2f}")


if __name__ == "__main__":
    main()
