"""Panel draws end to end (issue 10): `POST /api/v1/draws` (7 experts + 3 alternates) on
PostgreSQL from a pool of 20,000 city-level experts with their state history and 50
involved enterprises, then `GET /api/v1/draws/{id}/verification`, against a talent
service in its own process.

Baseline, in the same run: order the same 20,000 expert ids by HMAC-SHA256(seed, id)
with one precomputed `hmac.new(seed, digestmod=sha256)` copied per id, the least any
draw of this pool must do. `ratio` = bare_ms / draw_ms (goal: at least 0.3).

    python -m bench.draw [--experts 20000] [--involved 50] [--runs 5]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import requests
from rich.console import Console

from bench.common import SECRET, free_port, isolated_infra, serve_args, spawn, stop, wait_http
from services.talent.pool.models import Expert, ExpertConflict, ExpertState
from services.talent.service import MIGRATIONS
from shared.auth import issue_token
from shared.db import Database, insert_rows
from shared.migrate import upgrade
from tests.support.factories import uscc_for

console = Console(stderr=True)
COUNTIES = ["130902", "130903", "130921", "130922", "130925", "130926", "130927", "130928",
            "130929", "130930", "130981", "130982", "130983", "130984"]
DIVISIONS = [f"{n:02d}" for n in range(13, 44)] + ["44", "45", "46", "47", "48", "73", "74"]
ENTERPRISES = 2000
BATCH = 2000


def seed_pool(db: Database, experts: int, involved: int) -> tuple[list[str], list[str]]:
    """The pool: experts employed across 2,000 enterprises, 5% suspended, 2% out of
    term, 2% without consent, 2% with a declared conflict with an involved enterprise, a quarter with a second, later state
    in the history. Returns (expert ids, involved USCCs)."""
    rng = random.Random(20261203)
    employers = [uscc_for(COUNTIES[n % len(COUNTIES)], 7000 + n) for n in range(ENTERPRISES)]
    involved_usccs = employers[:involved]
    now = datetime.now(timezone.utc)
    first_at, later_at = now - timedelta(days=30), now - timedelta(hours=1)
    ids: list[str] = []
    for start in range(0, experts, BATCH):
        rows, conflicts, states = [], [], []
        for n in range(start, min(experts, start + BATCH)):
            expert_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ids.append(expert_id)
            county, employer = COUNTIES[n % len(COUNTIES)], rng.choice(employers)
            expertise = sorted(rng.sample(DIVISIONS, rng.randint(1, 3)))
            suspended = rng.random() < 0.05
            # 2% whose term has ended, 2% who did not consent to be contacted
            term_start = date(2026, 1, 1)
            term_end = date(2025, 12, 31) if rng.random() < 0.02 else date(2028, 12, 31)
            if term_end < term_start:
                term_start = date(2023, 1, 1)
            consent = rng.random() >= 0.02
            conflict = [rng.choice(involved_usccs)] if rng.random() < 0.02 else []
            rows.append({
                "id": expert_id, "member_id": None, "id_hmac": f"{n:064x}",
                "id_masked": "130921********123X", "name": f"专家{n:05d}", "county": county,
                "employer_uscc": employer, "employer_name": f"企业{employer[-6:]}",
                "expertise": json.dumps(expertise), "term_start": term_start,
                "term_end": term_end, "phone_encrypted": None, "phone_masked": None,
                "email_encrypted": None, "email_masked": None, "consent_to_contact": consent,
                "consent_recorded_at": first_at, "consent_recorded_by": "bench",
                "status": "suspended" if suspended else "active", "suspensions": "[]",
                "designated_at": first_at, "designated_by": "bench", "updated_at": first_at})
            conflicts += [{"expert_id": expert_id, "uscc": uscc, "since": date(2026, 1, 1),
                           "note": None, "recorded_at": first_at, "recorded_by": "bench",
                           "withdrawn_at": None} for uscc in conflict]
            state = {"county": county, "employer_uscc": employer, "expertise": expertise,
                     "suspended": suspended, "conflicts": conflict,
                     "term_start": term_start.isoformat(), "term_end": term_end.isoformat(),
                     "consent": consent}
            if rng.random() < 0.25:  # an earlier state, replaced an hour ago
                earlier = dict(state, expertise=sorted(rng.sample(DIVISIONS, 1)), suspended=False)
                states.append({"expert_id": expert_id, "at": first_at,
                               "state": json.dumps(earlier, sort_keys=True)})
                states.append({"expert_id": expert_id, "at": later_at,
                               "state": json.dumps(state, sort_keys=True)})
            else:
                states.append({"expert_id": expert_id, "at": first_at,
                               "state": json.dumps(state, sort_keys=True)})
        with db.engine.begin() as conn:
            insert_rows(conn, Expert.__table__, rows)
            if conflicts:
                insert_rows(conn, ExpertConflict.__table__, conflicts)
            insert_rows(conn, ExpertState.__table__, states)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return ids, involved_usccs


def bare_order(ids: list[str], seed: bytes) -> list[str]:
    keyed = hmac.new(seed, digestmod=hashlib.sha256)

    def rank(expert_id: str) -> bytes:
        mac = keyed.copy()
        mac.update(expert_id.encode())
        return mac.digest()

    return sorted(ids, key=rank)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=20_000)
    parser.add_argument("--involved", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with isolated_infra("draw") as (amqp_uri, pg_url, prefix, schemas), \
            tempfile.TemporaryDirectory() as tmp:
        schema = f"{prefix}_talent"
        schemas.append(schema)
        db = Database(pg_url, schema=schema)
        try:
            upgrade(db, MIGRATIONS)
            with console.status(f"写入专家库：{args.experts:,} 名专家及其状态历史…"):
                ids, involved = seed_pool(db, args.experts, args.involved)
            port = free_port()
            service = spawn(serve_args("talent", "--port", str(port)), {
                "AMQP_URI": amqp_uri, "DATABASE_URL": pg_url, "DATABASE_SCHEMA": schema,
                "CQO_AUTH_SECRET": SECRET, "DEV_KEYS_DIR": f"{tmp}/keys", "LOG_LEVEL": "WARNING"},
                Path(tmp) / "talent.log")
            base = f"http://127.0.0.1:{port}/api/v1"
            headers = {"Authorization": "Bearer " + issue_token(SECRET, "city_officer",
                                                                 ttl=timedelta(hours=1))}
            body = {"purpose": "质量诊断专家组（基准）", "size": 7, "alternates": 3,
                    "enterprises": involved}
            draws, verifies, bare = [], [], []
            try:
                wait_http(base + "/health", process=service)
                session = requests.Session()
                with console.status("抽取并核验…"):
                    for run in range(args.runs + 1):  # the first warms the service up
                        ms, resp = timed(lambda: session.post(base + "/draws", json=body,
                                                              headers=headers, timeout=120))
                        if resp.status_code != 201:
                            raise SystemExit(f"抽取失败：{resp.status_code} {resp.text[:500]}")
                        drawn = resp.json()
                        vms, check = timed(lambda: session.get(
                            f"{base}/draws/{drawn['id']}/verification", headers=headers, timeout=120))
                        report = check.json()
                        if check.status_code != 200 or not report["ok"]:
                            raise SystemExit(f"核验未通过：{check.text[:1000]}")
                        # the baseline right beside each draw: this machine's load varies
                        # from minute to minute, and both should see the same
                        bms, _ = timed(lambda: bare_order(ids, bytes.fromhex(report["seed"])))
                        if run:
                            draws.append(ms)
                            verifies.append(vms)
                            bare.append(bms)
                        else:
                            cold_ms = ms  # parses every state; later draws reuse them
            finally:
                stop(service)
            eligible = drawn["draws"][0]["eligible_count"]
        finally:
            db.dispose()

    draw_ms, verify_ms, bare_ms = (statistics.median(x) for x in (draws, verifies, bare))
    print(f"专家库 {args.experts:,} 名（涉及企业 {args.involved} 家），候选专家 {eligible:,} 名；"
          f"抽取 7 名专家 + 3 名备选，{args.runs} 次（另有 1 次预热）取中位数")
    print(f"POST /api/v1/draws：{', '.join(f'{t:.0f}' for t in draws)} 毫秒，中位数 {draw_ms:.0f} 毫秒"
          f"（服务启动后首次抽取 {cold_ms:.0f} 毫秒，需解析全部专家状态）")
    print(f"核验：{', '.join(f'{t:.0f}' for t in verifies)} 毫秒，中位数 {verify_ms:.0f} 毫秒")
    print(f"基线（同一批 {len(ids):,} 个编号按 HMAC-SHA256 排序，紧接每次抽取）："
          f"{', '.join(f'{t:.0f}' for t in bare)} 毫秒，中位数 {bare_ms:.1f} 毫秒")
    print(f"RESULT draw_ms={draw_ms:.1f} verify_ms={verify_ms:.1f} bare_ms={bare_ms:.1f} "
          f"ratio={bare_ms / draw_ms:.2f}")


if __name__ == "__main__":
    main()
