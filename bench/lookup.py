"""GET /enterprises/{uscc} under load, next to a bare nameko HTTP handler (issue 3).

100,000 appointments on PostgreSQL, random USCCs, a bearer token on every request, no
response cache, 50 concurrent keep-alive connections; the registry and the baseline
each run as the same number of processes (2, sharing their port). Then the registry
alone at a fixed 500 req/s for its p99 latency.

    python -m bench.lookup [--enterprises 100000] [--duration 10] [--processes 2]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from sqlalchemy import insert

from bench import loadgen
from bench.common import SECRET, free_port, isolated_infra, serve_args, spawn, stop, wait_http
from services.registry.models import Appointment, Enterprise, LedgerEntry
from shared.auth import issue_token
from shared.db import Database
from shared.migrate import upgrade
from shared.personal_data import IdCipher, generate_key, mask_id
from tests.support.factories import resident_id_for, uscc_for

console = Console(stderr=True)
COUNTIES = ["130921", "130922", "130923", "130924", "130925", "130926", "130927", "130928"]


def seed(db: Database, count: int) -> list[str]:
    cipher = IdCipher(generate_key())
    now = datetime.now(timezone.utc)
    usccs = []
    with console.status(f"写入 {count:,} 条任职记录…"):
        for start in range(0, count, 5000):
            enterprises, appointments, ledger = [], [], []
            for n in range(start, min(count, start + 5000)):
                county = COUNTIES[n % len(COUNTIES)]
                uscc = uscc_for(county, n)
                usccs.append(uscc)
                number = resident_id_for(n)
                appointed = date(2024, 1, 1) + timedelta(days=n % 700)
                enterprises.append({"uscc": uscc, "name": f"沧州测试企业{n}有限公司", "county": county,
                                    "category": "industrial_above_scale", "created_at": now,
                                    "updated_at": now})
                appointments.append({
                    "uscc": uscc, "filing_id": f"00000000-0000-4000-8000-{n:012d}", "filing_version": 1,
                    "cqo_name": f"质量官{n}", "id_type": "resident_id", "id_hmac": f"{n:064x}",
                    "id_encrypted": cipher.encrypt(number), "id_masked": mask_id(number),
                    "phone": "13800000000", "email": f"cqo{n}@example.cn", "position": "副总经理",
                    "is_decision_level": True, "education_level": "bachelor",
                    "title_level": "intermediate", "years_quality_work": 5.0,
                    "training_certificate": f"CZ-{n}", "appointed_by": "总经理",
                    "appointed_by_top_manager": True, "appointed_on": appointed,
                    "letter_number": f"任字{n}号", "letter_date": appointed, "letter_sha256": None,
                    "term_end": appointed + timedelta(days=3 * 365), "created_at": now})
                ledger.append({
                    "filing_id": f"00000000-0000-4000-8000-{n:012d}", "version": 1,
                    "kind": "establishment", "channel": "proactive", "campaign_year": None,
                    "county": county, "uscc": uscc, "submitted_to_county_on": appointed,
                    "received_at": now, "decided_at": now, "outcome": "accepted", "reasons": "[]",
                    "findings": "[]", "late": False, "days_late": 0, "deadline": None,
                    "appointment_id": None, "payload": None})
            with db.engine.begin() as conn:
                conn.execute(insert(Enterprise), enterprises)
                conn.execute(insert(Appointment), appointments)
                conn.execute(insert(LedgerEntry), ledger)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return usccs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=15.0, help="每一方的总测量秒数")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2, choices=[1, 2])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()

    with isolated_infra("lookup") as (amqp_uri, pg_url, prefix, schemas), \
            tempfile.TemporaryDirectory() as tmp:
        schema = f"{prefix}_registry"
        schemas.append(schema)
        db = Database(pg_url, schema=schema)
        upgrade(db, Path("services/registry/migrations/versions"))
        usccs = seed(db, args.enterprises)
        db.dispose()

        token = issue_token(SECRET, "city_officer", ttl=timedelta(hours=1))
        headers = {"Authorization": f"Bearer {token}"}
        pick = lambda: f"/api/v1/enterprises/{random.choice(usccs)}"  # noqa: E731

        registry_port, bare_port = free_port(), free_port()
        # the registry as configured by default (10 workers and 10 pooled connections per
        # process): 50 workers each holding a connection kept ~100 PostgreSQL backends
        # busy on 2 cores and was ~7% slower
        env = {"AMQP_URI": amqp_uri, "DATABASE_URL": pg_url, "DATABASE_SCHEMA": schema,
               "CQO_AUTH_SECRET": SECRET, "DEV_KEYS_DIR": f"{tmp}/keys", "LOG_LEVEL": "WARNING"}
        registry = spawn(serve_args("registry", "--port", str(registry_port), "--processes",
                                    str(args.processes)), env, Path(tmp) / "registry.log")
        bare = [spawn([sys.executable, "-m", "bench.bare_http", str(bare_port)],
                      {"CQO_SHARED_PORT": "1"}, Path(tmp) / "bare.log")
                for _ in range(args.processes)]
        try:
            wait_http(f"http://127.0.0.1:{registry_port}/api/v1/health", process=registry)
            wait_http(f"http://127.0.0.1:{bare_port}/api/v1/enterprises/x")
            # warm both (connection pools, imports, the OS page cache)
            loadgen.closed_loop("127.0.0.1", registry_port, headers, pick, args.connections, 2)
            loadgen.closed_loop("127.0.0.1", bare_port, headers, pick, args.connections, 2)
            # alternate short rounds and take medians: this machine's speed drifts, and a
            # drift must not land on one side of the ratio only
            ours, bare_rates, errors, bare_errors = [], [], 0, 0
            for round_no in range(args.rounds):
                with console.status(f"第 {round_no + 1}/{args.rounds} 轮：测量吞吐量…"):
                    rate, err = loadgen.closed_loop("127.0.0.1", registry_port, headers, pick,
                                                    args.connections, args.duration / args.rounds)
                    ours.append(rate)
                    errors += err
                    rate, err = loadgen.closed_loop("127.0.0.1", bare_port, headers, pick,
                                                    args.connections, args.duration / args.rounds)
                    bare_rates.append(rate)
                    bare_errors += err
            req_per_s, bare_per_s = statistics.median(ours), statistics.median(bare_rates)
            with console.status(f"固定 {args.rate:.0f} 次/秒测量延迟…"):
                latencies, rate_errors = loadgen.open_loop(
                    "127.0.0.1", registry_port, headers, pick, rate=args.rate,
                    duration=10.0, max_connections=args.connections)
        finally:
            stop(registry)
            for process in bare:
                stop(process)

    p50 = loadgen.percentile(latencies, 50) * 1000
    p99 = loadgen.percentile(latencies, 99) * 1000
    print(f"企业查询接口：{req_per_s:,.0f} 次/秒（错误 {errors}）；"
          f"裸 nameko 处理器：{bare_per_s:,.0f} 次/秒（错误 {bare_errors}）；"
          f"{args.processes} 个进程，{args.connections} 个并发连接，{args.enterprises:,} 条任职记录")
    print(f"固定 {args.rate:.0f} 次/秒：p50 {p50:.1f} ms，p99 {p99:.1f} ms，"
          f"成功 {len(latencies)}，错误 {rate_errors}")
    print(f"RESULT req_per_s={req_per_s:.0f} bare_req_per_s={bare_per_s:.0f} "
          f"ratio={req_per_s / bare_per_s:.2f} p99_ms_at_500={p99:.1f}")


if __name__ == "__main__":
    main()
