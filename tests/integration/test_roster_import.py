"""Importing the above-scale roster (art. 4) on SQLite and PostgreSQL: CSV and XLSX,
invalid rows reported and not written, idempotent re-import, updates, whole-file errors."""
import codecs
import csv
import io
import itertools

import pytest
from openpyxl import Workbook
from sqlalchemy import select, text

from services.registry.roster import importing, import_report, layout
from services.registry.models import RosterEntry, RosterImport
from services.registry.roster.file_source import RosterFileError
from services.registry.service import MIGRATIONS
from shared.migrate import upgrade
from tests.support.factories import uscc_for

pytestmark = pytest.mark.integration

HEADER = ["统一社会信用代码", "企业名称", "县级区划代码", "企业类别", "年度", "联系人", "联系电话", "电子邮箱"]


def row(county: str, n: int, *, year=2026, category="规模以上工业", name=None, contact="张三",
        phone="13800000000", email=None) -> list:
    return [uscc_for(county, n), name or f"沧州测试企业{county}{n}有限公司", county, category, year, contact,
            phone, email if email is not None else f"qy{n}@example.cn"]


def csv_bytes(rows: list[list], header=HEADER, *, encoding="utf-8-sig", title=None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # \r\n line ends, as Excel writes them
    if title:
        writer.writerow([title])
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list], header=HEADER, *, title=None) -> bytes:
    book = Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    sheet.append(header)
    for r in rows:
        sheet.append(r)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def import_bytes(db, content: bytes, name="roster.csv", **kw) -> import_report.ImportReport:
    return importing.import_roster(db, io.BytesIO(content), source=name, actor="test", **kw)


def snapshot(db) -> list[tuple]:
    with db.unit_of_work() as uow:
        return [tuple(r) for r in uow.session.execute(select(
            RosterEntry.year, RosterEntry.uscc, RosterEntry.name, RosterEntry.county, RosterEntry.category,
            RosterEntry.contact_person, RosterEntry.phone, RosterEntry.email).order_by(
            RosterEntry.year, RosterEntry.uscc))]


@pytest.fixture
def db(database):
    upgrade(database, MIGRATIONS)
    return database


def test_csv_import_then_reimport_changes_nothing(db):
    rows = [row("130921", n) for n in range(30)] + [row("130922", n, category="规模以上服务业") for n in range(20)]
    content = csv_bytes(rows)
    report = import_bytes(db, content)
    assert (report.total_rows, report.accepted, report.inserted, report.rejected) == (50, 50, 50, 0)
    assert report.encoding == "utf-8-sig" and report.years == {2026}
    before = snapshot(db)
    assert len(before) == 50
    assert before[0][4] in ("industrial_above_scale", "service_above_scale")
    assert {r[4] for r in before if r[3] == "130922"} == {"service_above_scale"}

    again = import_bytes(db, content)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 50, 0)
    assert snapshot(db) == before
    with db.unit_of_work() as uow:
        records = uow.session.scalars(select(RosterImport).order_by(RosterImport.id)).all()
        assert [(r.inserted, r.unchanged, r.actor) for r in records] == [(50, 0, "test"), (0, 50, "test")]
        assert records[0].sha256 == records[1].sha256 and len(records[0].sha256) == 64


def test_invalid_rows_are_reported_by_line_and_never_written(db):
    good = [row("130921", n) for n in range(6)]
    bad_check = row("130921", 100)
    bad_check[0] = bad_check[0][:-1] + ("X" if bad_check[0][-1] != "X" else "Y")
    rows = good[:2] + [bad_check] + good[2:4] + [
        row("999999", 101),                                   # county outside the jurisdiction
        row("130921", 102, category="其他", email="bad@"),      # two reasons
        row("130921", 0, name="重复的企业名称"),                 # duplicate of line 2
        ["", "", "", "", "", "", "", ""],                      # blank: skipped, not counted
    ] + good[4:]
    report = import_bytes(db, csv_bytes(rows))
    assert (report.total_rows, report.accepted, report.rejected) == (10, 6, 4)
    by_line = {r["line"]: r for r in report.rejected_rows}
    assert set(by_line) == {4, 7, 8, 9}  # header is line 1
    assert "校验码" in by_line[4]["reasons"][0]
    assert "不属于本辖区" in by_line[7]["reasons"][0]
    assert len(by_line[8]["reasons"]) == 2 and by_line[8]["name"].startswith("沧州测试企业")
    assert by_line[9]["reasons"] == ["与第2行重复（同一年度同一统一社会信用代码），以第2行为准"]
    stored = snapshot(db)
    assert sorted(r[1] for r in stored) == sorted(r[0] for r in good)
    assert "重复的企业名称" not in {r[2] for r in stored}


def test_changed_name_and_contact_update_the_row_only(db):
    rows = [row("130921", n) for n in range(5)]
    import_bytes(db, csv_bytes(rows))
    rows[3] = row("130921", 3, name="沧州新名称有限公司", contact="李四", email="")
    report = import_bytes(db, csv_bytes(rows))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 4)
    changed = [r for r in snapshot(db) if r[1] == uscc_for("130921", 3)][0]
    assert (changed[2], changed[5], changed[7]) == ("沧州新名称有限公司", "李四", None)


def test_xlsx_with_title_row_numbers_and_a_given_year(db):
    header = [h for h in HEADER if h != "年度"] + ["序号"]
    rows = [[uscc_for("130921", n), f"沧州表格企业{n}有限公司", 130921, "规上工业", "王五", 13800000000 + n,
             None, n] for n in range(8)]
    rows.append([uscc_for("130922", 9), "沧州表格企业9有限公司", "130922", "规模以上服务业", None, None, "bad", 9])
    report = import_bytes(db, xlsx_bytes(rows, header, title="2026年规模以上企业名录"), "名录.xlsx", year=2026)
    assert report.file_format == "xlsx" and report.header_line == 2 and report.ignored_columns == ["序号"]
    assert (report.accepted, report.rejected) == (8, 1)
    assert report.rejected_rows[0]["line"] == 11 and "电子邮箱" in report.rejected_rows[0]["reasons"][0]
    stored = snapshot(db)
    assert {r[0] for r in stored} == {2026} and {r[3] for r in stored} == {"130921"}
    assert stored[0][6].startswith("138")  # a number cell becomes its digits
    assert import_bytes(db, xlsx_bytes(rows, header, title="2026年规模以上企业名录"), "名录.xlsx",
                        year=2026).unchanged == 8


def test_gbk_csv_saved_by_excel_on_chinese_windows(db):
    content = csv_bytes([row("130921", n) for n in range(3)], encoding="gbk")
    report = import_bytes(db, content)
    assert report.encoding == "gb18030" and report.accepted == 3
    assert snapshot(db)[0][2].startswith("沧州测试企业")


def test_a_large_file_mixes_fast_blocks_and_bad_rows_with_exact_line_numbers(db):
    rows = [row("130921" if n % 2 else "130981", n, category="规模以上服务业" if n % 3 else "规模以上工业")
            for n in range(5000)]
    rows[10][6] = "12"                    # bad phone in the first block
    rows[2500][1] = "厂"                  # name too short in the second block
    rows[4000][2] = "130999"              # unknown county
    rows.append(row("130921", 7))          # duplicate of the row on line 9
    content = csv_bytes(rows)
    report = import_bytes(db, content, chunk_rows=1000)
    assert (report.total_rows, report.accepted, report.rejected) == (5001, 4997, 4)
    assert [r["line"] for r in report.rejected_rows] == [12, 2502, 4002, 5002]
    assert report.rejected_rows[-1]["reasons"][0].startswith("与第9行重复")
    assert len(snapshot(db)) == 4997
    again = import_bytes(db, content, chunk_rows=1000)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4997)


def test_quoted_cells_multiline_notes_and_several_years(db):
    header = HEADER + ["备注"]
    rows = [row("130921", 1) + ["第一行\n第二行，含逗号"], row("130921", 2, year=2025) + ['含"引号"'],
            row("130921", 1, year=2025) + [""], row("130921", 3, name="沧州,逗号\"公司\"有限公司") + [""],
            row("130921", 4) + [""]]
    report = import_bytes(db, csv_bytes(rows, header))
    assert (report.accepted, report.rejected, report.years) == (5, 0, {2025, 2026})
    assert [r[2] for r in snapshot(db) if r[1] == uscc_for("130921", 3)] == ["沧州,逗号\"公司\"有限公司"]
    bad = rows + [row("130921", 5, name="换行\n的名称有限公司") + [""]]
    report = import_bytes(db, csv_bytes(bad, header))
    assert report.rejected_rows[0]["line"] == 7  # records, not physical lines
    assert "控制字符" in report.rejected_rows[0]["reasons"][0]


@pytest.mark.parametrize("content,code", [
    (b"", "ROSTER_EMPTY"),
    (csv_bytes([], HEADER), "ROSTER_EMPTY"),
    (csv_bytes([], HEADER[:5]), "ROSTER_EMPTY"),
    (csv_bytes([[""] * 5, [" "] * 5], HEADER[:5]), "ROSTER_EMPTY"),
    (xlsx_bytes([], HEADER[:5]), "ROSTER_EMPTY"),
    (csv_bytes([row("130921", 1)[:4]], HEADER[:4]), "ROSTER_COLUMNS_MISSING"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "ROSTER_FORMAT_UNSUPPORTED"),
    (b"PK\x03\x04 not really a workbook", "ROSTER_FILE_UNREADABLE"),
    ("名称,地址\n甲,乙\n".encode(), "ROSTER_HEADER_NOT_FOUND"),
])
def test_whole_file_problems_change_nothing(db, content, code):
    import_bytes(db, csv_bytes([row("130921", 1)]))
    before = snapshot(db)
    with pytest.raises(RosterFileError) as err:
        import_bytes(db, content)
    assert err.value.code == code
    assert snapshot(db) == before
    with db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(RosterImport)).all()) == 1


# --- which optional columns a file has ------------------------------------------------------------
OPTIONAL = HEADER[5:]  # 联系人, 联系电话, 电子邮箱
SHAPES = [tuple(itertools.compress(OPTIONAL, present))
          for present in itertools.product((True, False), repeat=len(OPTIONAL))]  # all 8


def shape_id(optional: tuple) -> str:
    names = {"联系人": "contact", "联系电话": "phone", "电子邮箱": "email"}
    return "+".join(names[c] for c in optional) or "required-only"


def shaped(rows: list[list], optional: tuple) -> tuple[list[str], list[list]]:
    """(header, rows) of a file with the five required columns and only the `optional` ones."""
    keep = [i for i, column in enumerate(HEADER) if i < 5 or column in optional]
    return [HEADER[i] for i in keep], [[r[i] for i in keep] for r in rows]


def varied_rows(year: int, first: int, count: int) -> list[list]:
    """Rows that differ in every field (two counties, both categories, optional cells left
    blank in turn), so a row stored with another row's values shows."""
    return [row("130921" if n % 2 else "130922", n, year=year,
                category="规模以上服务业" if n % 3 else "规模以上工业",
                contact="" if n % 4 == 1 else f"联系人{n}", phone="" if n % 4 == 2 else f"0317-{5550000 + n}",
                email="" if n % 4 == 3 else f"contact{n}@example.cn") for n in range(first, first + count)]


def stored_as(rows: list[list], optional: tuple) -> list[tuple]:
    """What the roster holds after importing `rows` from a file of that shape (snapshot order)."""
    return sorted((r[4], r[0], r[1], r[2], layout.CATEGORY_VALUES[r[3]],
                   *(value or None if column in optional else None for column, value in zip(OPTIONAL, r[5:])))
                  for r in rows)


@pytest.mark.parametrize("optional", SHAPES, ids=shape_id)
def test_every_shape_of_optional_columns_stores_exactly_its_rows(db, optional):
    """Any of the optional columns may be missing: every row accepted is stored, with its
    own values in the columns the file has and blanks for the others; CSV and XLSX, files
    of several rows and of one, a fresh year and one that has rows already (on
    PostgreSQL: a new partition, then the staging table and its upsert)."""
    expected = []
    for make, years in ((csv_bytes, (2026, 2027)), (xlsx_bytes, (2028, 2029))):
        for year, count in zip(years, (6, 1)):
            rows = varied_rows(year, 0, count)
            header, cells = shaped(rows, optional)
            report = import_bytes(db, make(cells, header))
            assert (report.total_rows, report.accepted, report.inserted, report.rejected) == (count, count, count, 0)
            expected += stored_as(rows, optional)
            assert snapshot(db) == sorted(expected)
    first = varied_rows(2026, 0, 6)
    renamed = first[5][:1] + ["沧州改名后的企业有限公司"] + first[5][2:]
    rows = first[:5] + [renamed] + varied_rows(2026, 6, 1)
    header, cells = shaped(rows, optional)
    report = import_bytes(db, csv_bytes(cells, header))
    assert (report.accepted, report.inserted, report.updated, report.unchanged) == (7, 1, 1, 5)
    expected = [r for r in expected if r[0] != 2026] + stored_as(rows, optional)
    assert snapshot(db) == sorted(expected)


def test_postgres_gives_each_year_a_partition_and_orm_rows_still_work(db):
    if not db.is_postgres:
        pytest.skip("partitions are PostgreSQL's")
    with db.unit_of_work() as uow:  # a row written by other code lands in the default partition
        uow.session.add(RosterEntry(year=2024, uscc=uscc_for("130921", 1), name="沧州默认分区有限公司",
                                    county="130921", category="industrial_above_scale"))
        uow.commit()
    import_bytes(db, csv_bytes([row("130921", n) for n in range(3)]))
    report = import_bytes(db, csv_bytes([row("130921", n, year=2024) for n in range(3)]))
    assert (report.inserted, report.updated) == (2, 1)
    with db.engine.connect() as conn:
        partitions = dict(conn.execute(text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'roster_entries'::regclass")).all())
        counts = dict(conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM roster_entries GROUP BY 1")).all())
    assert partitions == {"roster_entries_default": "DEFAULT", "roster_entries_y2026": "FOR VALUES IN (2026)"}
    assert counts == {"roster_entries_default": 3, "roster_entries_y2026": 3}


def test_cli_roster_import_exit_codes_and_rejects_file(db, db_config, amqp_uri, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cqo.cli import app

    config = tmp_path / "registry.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, **db_config}), encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200"})
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([row("130921", n) for n in range(4)]))
    result = runner.invoke(app, ["roster", "import", str(good), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "接受4行（新增4、更新0、未变化0），拒绝0行" in result.output

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([row("130921", n) for n in range(4)] + [row("999999", 9)]))
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["roster", "import", str(bad), "--config", str(config),
                                 "--rejects", str(rejects)])
    assert result.exit_code == 1, result.output
    assert "被拒绝的行" in result.output and "不属于本辖区" in result.output and "未变化4" in result.output
    lines = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8-sig"))))
    assert lines[1][:2] == ["6", uscc_for("999999", 9)]

    broken = tmp_path / "broken.csv"
    broken.write_bytes(csv_bytes([row("130921", 1)[:3]], HEADER[:3]))
    result = runner.invoke(app, ["roster", "import", str(broken), "--config", str(config)])
    assert result.exit_code == 2 and "缺少必需的列" in result.output

    template = tmp_path / "template.xlsx"
    assert runner.invoke(app, ["roster", "template", "--out", str(template)]).exit_code == 0
    assert import_bytes(db, template.read_bytes(), "template.xlsx").accepted == 1
    listed = runner.invoke(app, ["roster", "imports", "--config", str(config)])
    assert listed.exit_code == 0 and "good.csv" in listed.output


def test_utf16_tab_separated_text(db):
    text_rows = ["\t".join(HEADER)] + ["\t".join(map(str, row("130921", n))) for n in range(3)]
    content = codecs.BOM_UTF16_LE + "\r\n".join(text_rows).encode("utf-16-le")
    report = import_bytes(db, content, "名录.txt")
    assert (report.encoding, report.accepted) == ("utf-16", 3)


def test_cli_in_a_process_of_its_own_loads_on_a_writer_thread(db, db_config, amqp_uri, tmp_path):
    """Outside eventlet the import checks and loads in parallel (a writer thread, real
    COPY on PostgreSQL): the same report, rows and idempotence as in a service."""
    import os
    import subprocess
    import sys

    import yaml

    config = tmp_path / "registry.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, **db_config}), encoding="utf-8")
    rows = [row("130921" if n % 3 else "130922", n) for n in range(12_000)]
    rows[5000][7] = "not-an-email"
    rows[11_000][0] = rows[11_000][0][:-1] + ("0" if rows[11_000][0][-1] != "0" else "1")
    rows.append(row("130921", 1))  # duplicate of line 3
    file = tmp_path / "roster.csv"
    file.write_bytes(csv_bytes(rows))
    env = {**os.environ, "COLUMNS": "200", "ROSTER_CHUNK_ROWS": "2500"}

    def run():
        return subprocess.run([sys.executable, "-m", "cqo.cli", "roster", "import", str(file),
                               "--config", str(config)], env=env, capture_output=True, text=True, timeout=300)

    first = run()
    assert first.returncode == 1, first.stdout + first.stderr
    assert "接受11998行（新增11998、更新0、未变化0），拒绝3行" in first.stdout
    assert "5002" in first.stdout and "11002" in first.stdout and "与第3行重复" in first.stdout
    stored = snapshot(db)
    assert len(stored) == 11_998 and {r[0] for r in stored} == {2026}
    second = run()
    assert second.returncode == 1 and "未变化11998" in second.stdout, second.stdout + second.stderr
    assert snapshot(db) == stored
