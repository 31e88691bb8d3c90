"""Training attendance import at scale (issue 10; art. 6, art. 15 教育培训).

Generates a CSV of attendance rows (valid resident ID numbers, enterprises, results,
certificate numbers for those who passed), imports it into one course on PostgreSQL
through the project's own import use case
(`services.talent.training.importing.import_attendance`, what
`POST /api/v1/courses/{id}/attendance/import` and `cqo training import` run: row checks,
HMAC, encryption, batched inserts, one certificate event per certificate in the outbox),
and beside it, in the same run, a baseline that reads the same file and does the same
per-row work on the ID number (`validate_person_id`, `id_hmac`, Fernet, the mask), then
one bare COPY into a plain table (same columns, no keys or indexes), before and after
the import (the faster of the two is the baseline). Then the same file again (every
row unchanged).

    python -m bench.training [--rows 100000]
"""
from __future__ import annotations

import argparse
import csv
import gc
import io
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from bench.common import isolated_infra
from services.talent.service import MIGRATIONS
from services.talent.training import courses, importing
from services.talent.training.recording import PersonKeys
from shared.auth import Principal
from shared.db import Database
from shared.migrate import upgrade
from shared.personal_data import IdCipher, generate_key, id_hmac, mask_id
from shared.validators import make_resident_id, validate_person_id
from shared.validators.uscc import complete_uscc

console = Console(stderr=True)
YEAR = 2026
HEADER = ["姓名", "证件类型", "证件号码", "统一社会信用代码", "企业名称", "培训类别", "考核结果", "证书编号", "发证日期"]
DIVISIONS = ["130902", "130903", "130921", "130922", "130925", "130926", "130927", "130928"]
PLAIN_TABLE = """
CREATE TABLE attendance_copy (
    person_name varchar(100), id_type varchar(32), id_hmac varchar(64), id_encrypted text,
    id_masked varchar(32), uscc varchar(18), enterprise_name varchar(200), passed boolean,
    certificate_no varchar(64), issued_on date)
"""
CITY = Principal("bench", "city_officer")


def generate(path: Path, rows: int) -> int:
    """The attendance CSV; returns how many rows carry a certificate (the passed ones)."""
    certified = 0
    born = date(1960, 1, 1)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            division = DIVISIONS[n % len(DIVISIONS)]
            number = make_resident_id(division, born + timedelta(days=(n // len(DIVISIONS)) % 15000),
                                      n // (len(DIVISIONS) * 15000))
            passed = n % 10 != 0
            certified += passed
            writer.writerow([f"学员{n}", "居民身份证", number, complete_uscc(f"91{division}M{n % 10**7:07d}"),
                             f"测试企业{n}有限公司", "任职培训", "合格" if passed else "不合格",
                             f"CZ{YEAR}-{n:07d}" if passed else "", f"{YEAR}-03-20" if passed else ""])
    return certified


def baseline(db: Database, path: Path, keys: PersonKeys) -> float:
    """Seconds for the same ID work per row and a bare COPY of the result, committed."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS attendance_copy")
        conn.exec_driver_sql(PLAIN_TABLE)
    raw = db.engine.raw_connection()
    try:
        started = time.perf_counter()
        out = io.StringIO()
        writer = csv.writer(out)
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for name, _, number, uscc, enterprise, _, result, certificate, issued in reader:
                number = validate_person_id("resident_id", number)
                writer.writerow([name, "resident_id", id_hmac(keys.hmac_key, "resident_id", number),
                                 keys.cipher.encrypt(number), mask_id(number), uscc, enterprise,
                                 result == "合格", certificate, issued])
        out.seek(0)
        with raw.cursor() as cur:
            cur.copy_expert("COPY attendance_copy FROM STDIN WITH (FORMAT csv)", out, size=1 << 20)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def timed_import(db: Database, path: Path, course_id: int, keys: PersonKeys):
    started = time.perf_counter()
    report = importing.import_attendance(db, path.read_bytes(), course_id=course_id, principal=CITY,
                                         keys=keys, source=path.name)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    keys = PersonKeys("bench-id-hmac-key-0123456789abcdef", IdCipher(generate_key()))
    with isolated_infra("training") as (_, pg_url, prefix, schemas), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "attendance.csv"
        with console.status(f"生成 {args.rows:,} 行学员名单…"):
            certified = generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        schema = f"{prefix}_talent"
        schemas.append(schema)
        db = Database(pg_url, schema=schema)
        try:
            upgrade(db, MIGRATIONS)
            with db.unit_of_work() as uow:
                course = courses.create(uow, CITY, {
                    "title": f"{YEAR}年首席质量官任职培训", "kind": "appointment", "level": "city",
                    "starts_on": date(YEAR, 3, 16), "ends_on": date(YEAR, 3, 20), "hours": 32,
                    "capacity": args.rows})
            # as in the talent service (cqo/runner.py): what the process built before the
            # work is kept out of the collector's full passes, for the import and baseline alike
            gc.collect()
            gc.freeze()
            with console.status("基准：同样的逐行证件处理＋COPY 到普通表…"):
                base_first = baseline(db, path, keys)
            with console.status("通过项目导入路径导入…"):
                import_s, report = timed_import(db, path, course["id"], keys)
            with console.status("基准：再次逐行证件处理＋COPY…"):
                base_second = baseline(db, path, keys)
            with console.status("同一文件再次导入（应无变化）…"):
                reimport_s, again = timed_import(db, path, course["id"], keys)
            with db.engine.connect() as conn:
                # events travel in batches of up to 500 a message (docs/events.md)
                queued = sum(len(body.get("events", [body])) for (body,) in conn.exec_driver_sql(
                    "SELECT payload::json FROM outbox_messages"))
        finally:
            db.dispose()

    if report.inserted != args.rows or report.rejected or report.certificates_announced != certified:
        raise SystemExit(f"import report unexpected: {report.summary()}")
    if again.unchanged != args.rows or again.certificates_announced:
        raise SystemExit(f"re-import changed rows: {again.summary()}")
    if queued != certified:
        raise SystemExit(f"{queued} certificate events queued, {certified} expected")
    base_s = min(base_first, base_second)
    rate, base_rate = args.rows / import_s, args.rows / base_s
    print(f"学员名单：{args.rows:,} 行，{size_mb:.1f} MB，其中 {certified:,} 行有证书")
    print(f"项目导入路径：{import_s:.2f} 秒，{rate:,.0f} 行/秒（{report.summary()}；"
          f"证书事件 {report.certificates_announced:,} 条进入发件箱）")
    print(f"基准（校验、HMAC、加密、脱敏＋COPY 到普通表）：{base_first:.2f} 秒 / {base_second:.2f} 秒"
          f"（导入前 / 导入后），取较快者 {base_rate:,.0f} 行/秒")
    print(f"同一文件再次导入：{reimport_s:.2f} 秒，{args.rows / reimport_s:,.0f} 行/秒（{again.summary()}）")
    print(f"RESULT rows_per_s={rate:.0f} baseline_rows_per_s={base_rate:.0f} ratio={rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
