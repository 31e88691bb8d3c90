"""Roster import and the per-county coverage table at national scale (issue 4, art. 4).

Generates a CSV roster of 1,000,000 above-scale enterprises (valid USCCs, Chinese
column names and categories) across 3,000 county codes (a generated jurisdiction
list), imports it into PostgreSQL through the project's own import path
(`services.registry.roster.import_roster`, what `cqo roster import` and
`POST /api/v1/roster` run), and times a bare `COPY` of the same file into an
equivalent plain table (same columns and types, no keys or indexes) in the same run,
before and after the import (the faster of the two is the baseline). Then seeds
appointments for 40% of the enterprises (active, lapsed, ended) and times the
per-county coverage table (`services.registry.coverage.per_county`) over it.

    python -m bench.roster [--rows 1000000] [--counties 3000]
"""
from __future__ import annotations

import argparse
import csv
import io
import statistics
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console

from bench.common import isolated_infra
from services.registry.roster import coverage, importing, import_report
from services.registry.service import MIGRATIONS
from shared.contracts import use_jurisdiction
from shared.db import Database
from shared.migrate import upgrade
from shared.validators.divisions import Jurisdiction
from shared.validators.uscc import CHARSET, complete_uscc

console = Console(stderr=True)
YEAR = 2026
AS_OF = date(2026, 11, 25)
PROVINCES = ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
             "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
             "65"]
HEADER = ["统一社会信用代码", "企业名称", "县级区划代码", "企业类别", "年度", "联系人", "联系电话", "电子邮箱"]
PLAIN_TABLE = """
CREATE TABLE roster_copy (
    uscc varchar(18), name varchar(200), county varchar(6), category varchar(32),
    year integer, contact_person varchar(100), phone varchar(32), email varchar(200))
"""


def county_codes(count: int) -> list[str]:
    codes = [f"{p}{city:02d}{county:02d}" for p in PROVINCES for city in range(1, 11)
             for county in range(1, 11)]
    if count > len(codes):
        raise SystemExit(f"at most {len(codes)} county codes")
    return codes[:count]


def write_jurisdiction(path: Path, codes: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "name", "kind"])
        for number, code in enumerate(codes, start=1):
            writer.writerow([code, f"测试县{number:04d}", "official"])


def uscc(county: str, n: int) -> str:
    """A valid USCC (both check characters computed by the validator module)."""
    body = ""
    for _ in range(7):
        n, digit = divmod(n, len(CHARSET))
        body = CHARSET[digit] + body
    return complete_uscc(f"91{county}M{body}")


def generate(path: Path, rows: int, codes: list[str]) -> list[tuple[str, str]]:
    """The roster CSV; returns (uscc, county) of every row."""
    enterprises = []
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            county = codes[n % len(codes)]
            code = uscc(county, n)
            enterprises.append((code, county))
            writer.writerow([code, f"测试企业{n}有限公司", county,
                             "规模以上工业" if n % 3 else "规模以上服务业", YEAR,
                             f"联系人{n % 1000}", f"138{n % 100000000:08d}", f"qy{n}@example.cn"])
    return enterprises


def bare_copy(db: Database, path: Path) -> float:
    """Seconds for COPY of the file into a fresh plain table, committed."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS roster_copy")
        conn.exec_driver_sql(PLAIN_TABLE)
    raw = db.engine.raw_connection()
    try:
        started = time.perf_counter()
        with raw.cursor() as cur, open(path, "rb") as handle:
            cur.copy_expert("COPY roster_copy FROM STDIN WITH (FORMAT csv, HEADER true)", handle,
                            size=1 << 20)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def timed_import(db: Database, path: Path) -> tuple[float, import_report.ImportReport]:
    started = time.perf_counter()
    with open(path, "rb") as handle:
        report = importing.import_roster(db, handle, source=path.name, actor="bench")
    return time.perf_counter() - started, report


def seed_appointments(db: Database, enterprises: list[tuple[str, str]]) -> dict[str, int]:
    """Appointments for 40% of the roster: 30% in post and in term, 5% lapsed, 5% ended
    (every tenth of the active ones with an ended predecessor)."""
    now = datetime.now(timezone.utc).isoformat()
    ents, appts = io.StringIO(), io.StringIO()
    ent_writer, appt_writer = csv.writer(ents), csv.writer(appts)
    counts = {"active": 0, "lapsed": 0, "ended": 0}
    serial = 0

    def appointment(code, appointed, term_end, ended_on=None):
        nonlocal serial
        serial += 1
        appt_writer.writerow([
            code, f"00000000-0000-4000-8000-{serial:012d}", 1, f"质量官{serial}", "resident_id",
            f"{serial:064x}", "x", "130921********123X", "副总经理", True, 5.0, "总经理", True,
            appointed, f"任字{serial}号", appointed, term_end, ended_on or "",
            "变更" if ended_on else "", now])

    for n, (code, county) in enumerate(enterprises):
        bucket = n % 20
        if bucket >= 8:
            continue
        ent_writer.writerow([code, f"测试企业{n}有限公司", county, "industrial_above_scale", now, now])
        if bucket < 6:
            if bucket == 0 and n % 200 == 0:
                appointment(code, "2020-01-01", "2023-01-01", "2024-01-01")
            appointment(code, "2024-01-01", "2027-01-01")
            counts["active"] += 1
        elif bucket == 6:
            appointment(code, "2023-06-01", "2026-06-01")
            counts["lapsed"] += 1
        else:
            appointment(code, "2024-01-01", "2027-01-01", "2026-03-01")
            counts["ended"] += 1
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cur:
            ents.seek(0)
            appts.seek(0)
            cur.copy_expert("COPY enterprises (uscc, name, county, category, created_at, updated_at) "
                            "FROM STDIN WITH (FORMAT csv)", ents)
            cur.copy_expert(
                "COPY appointments (uscc, filing_id, filing_version, cqo_name, id_type, id_hmac, "
                "id_encrypted, id_masked, position, is_decision_level, years_quality_work, appointed_by, "
                "appointed_by_top_manager, appointed_on, letter_number, letter_date, term_end, ended_on, "
                "end_reason, created_at) FROM STDIN WITH (FORMAT csv)", appts)
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--counties", type=int, default=3000)
    parser.add_argument("--coverage-runs", type=int, default=3)
    args = parser.parse_args()

    with isolated_infra("roster") as (_, pg_url, prefix, schemas), \
            tempfile.TemporaryDirectory() as tmp:
        codes = county_codes(args.counties)
        divisions = Path(tmp) / "jurisdiction.csv"
        write_jurisdiction(divisions, codes)
        use_jurisdiction(Jurisdiction.from_csv(divisions))
        path = Path(tmp) / "roster.csv"
        with console.status(f"生成 {args.rows:,} 行名录（{args.counties:,} 个县级区划）…"):
            enterprises = generate(path, args.rows, codes)
        size_mb = path.stat().st_size / 1e6

        schema = f"{prefix}_registry"
        schemas.append(schema)
        db = Database(pg_url, schema=schema)
        try:
            upgrade(db, MIGRATIONS)
            with console.status("基准：COPY 到普通表…"):
                copy_first = bare_copy(db, path)
            with console.status("通过项目导入路径导入…"):
                import_s, report = timed_import(db, path)
            with console.status("基准：再次 COPY 到普通表…"):
                copy_second = bare_copy(db, path)
            with console.status("同一文件再次导入（应无变化）…"):
                reimport_s, again = timed_import(db, path)
            if report.accepted != args.rows or report.inserted != args.rows or report.rejected:
                raise SystemExit(f"import report unexpected: {report.summary()}")
            if again.unchanged != args.rows:
                raise SystemExit(f"re-import changed rows: {again.summary()}")
            with console.status("写入任职记录（40% 的名录企业）…"):
                seeded = seed_appointments(db, enterprises)
            timings, table = [], None
            for _ in range(args.coverage_runs):
                started = time.perf_counter()
                table = coverage.per_county(db, YEAR, AS_OF)
                timings.append(time.perf_counter() - started)
        finally:
            db.dispose()

    copy_s = min(copy_first, copy_second)
    import_rate, copy_rate = args.rows / import_s, args.rows / copy_s
    covered = sum(r["covered"] for r in table)
    lapsed = sum(r["lapsed"] for r in table)
    ended = sum(r["ended"] for r in table)
    if (covered, lapsed, ended) != (seeded["active"], seeded["lapsed"], seeded["ended"]):
        raise SystemExit(f"coverage figures wrong: {(covered, lapsed, ended)} vs {seeded}")
    coverage_s = statistics.median(timings)
    print(f"名录文件：{args.rows:,} 行，{size_mb:.0f} MB，{args.counties:,} 个县级区划代码")
    print(f"项目导入路径：{import_s:.2f} 秒，{import_rate:,.0f} 行/秒（{report.summary()}）")
    print(f"裸 COPY 到普通表：{copy_first:.2f} 秒 / {copy_second:.2f} 秒（导入前 / 导入后），"
          f"取较快者 {copy_rate:,.0f} 行/秒")
    print(f"同一文件再次导入：{reimport_s:.2f} 秒，{args.rows / reimport_s:,.0f} 行/秒（{again.summary()}）")
    print(f"分县覆盖率表：{len(table):,} 个县，覆盖 {covered:,}，任期届满 {lapsed:,}，已离任 {ended:,}；"
          f"耗时 {', '.join(f'{t:.2f}' for t in timings)} 秒，取中位数 {coverage_s:.2f} 秒")
    print(f"RESULT import_rows_per_s={import_rate:.0f} copy_rows_per_s={copy_rate:.0f} "
          f"ratio={import_rate / copy_rate:.2f} coverage_s={coverage_s:.2f} "
          f"reimport_rows_per_s={args.rows / reimport_s:.0f}")


if __name__ == "__main__":
    main()
