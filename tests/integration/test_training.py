"""Training at the talent service (art. 6, art. 15 教育培训), on the real broker and both
databases: courses, one attendance over HTTP (masked, never the clear number), CSV and
XLSX imports with a per-row report and idempotent re-imports, county scope, the
certificate events on cqo.events, and the yearly summary over RPC."""
from __future__ import annotations

import logging
from datetime import date

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from shared.contracts import events
from tests.integration.registry_support import token
from tests.integration.test_domain_events import Events
from tests.integration.test_roster_import import csv_bytes as roster_csv, xlsx_bytes as roster_xlsx
from tests.support.factories import resident_id_for, uscc_for

pytestmark = pytest.mark.integration

HEADER = ["姓名", "证件类型", "证件号码", "统一社会信用代码", "企业名称", "培训类别", "考核结果", "证书编号", "发证日期"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CERTIFICATE = "talent.certificate.issued"


@pytest.fixture
def published(amqp_uri):
    probe = Events(amqp_uri)
    yield probe
    probe.close()


def call(method, base, path, role="city_officer", *, json=None, data=None, params=None, headers=None,
         **claims):
    return requests.request(method, base + path, json=json, data=data, params=params, timeout=30,
                            headers={"Authorization": token(role, **claims), **(headers or {})})


def new_course(base, *, kind="appointment", level="city", of=None, role="city_officer", **claims):
    """A course; `of`: the county of a county-level course."""
    body = {"title": "2026年首席质量官任职培训（第一期）", "kind": kind, "level": level, "county": of,
            "starts_on": "2026-03-02", "ends_on": "2026-03-04", "hours": 24, "capacity": 200}
    return call("POST", base, "/api/v1/courses", role, json=body, **claims)


def person(n, *, passed="合格", certificate=None, kind="任职培训", issued="2026-03-05"):
    return [f"学员{n}", "居民身份证", resident_id_for(n), uscc_for("130921", n), f"测试企业{n}有限公司", kind,
            passed, certificate if certificate is not None else f"CZ2026-{n:04d}", issued]


def csv_bytes(rows, header=HEADER) -> bytes:
    return roster_csv(rows, header)


def xlsx_bytes(rows, header=HEADER) -> bytes:
    return roster_xlsx(rows, header, title="沧州市首席质量官培训学员名单")  # a title row above the header


def upload(base, course_id, content, content_type="text/csv", role="city_officer", **claims):
    return call("POST", base, f"/api/v1/courses/{course_id}/attendance/import", role, data=content,
                headers={"Content-Type": content_type}, **claims)


def certificates(published, count):
    published.wait(lambda seen: len([e for e, _, _ in seen if e["type"] == CERTIFICATE]) >= count)
    return published.of(CERTIFICATE)


def test_a_course_and_one_attendance_masked_and_announced(talent, published, caplog):
    caplog.set_level(logging.DEBUG)
    base, db, _ = talent
    created = new_course(base)
    assert created.status_code == 201, created.text
    course = created.json()
    assert (course["kind_name"], course["level_name"], course["county"]) == ("任职培训", "市级", None)
    assert created.headers["Location"] == f"/api/v1/courses/{course['id']}"

    number = resident_id_for(7)
    body = {"person_name": "张七", "id_type": "resident_id", "id_number": number,
            "uscc": uscc_for("130921", 7), "enterprise_name": "测试企业七有限公司", "passed": True,
            "certificate_no": "cz-2026-0007", "issued_on": "2026-03-05"}
    first = call("POST", base, f"/api/v1/courses/{course['id']}/attendance", json=body)
    assert first.status_code == 201, first.text
    recorded = first.json()
    assert recorded["result"] == "inserted" and recorded["id_masked"] == number[:6] + "********" + number[-4:]
    assert recorded["certificate_no"] == "CZ-2026-0007" and recorded["revision"] == 1
    again = call("POST", base, f"/api/v1/courses/{course['id']}/attendance", json=body)
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    corrected = call("POST", base, f"/api/v1/courses/{course['id']}/attendance", json={**body, "passed": False})
    assert corrected.status_code == 200 and corrected.json()["result"] == "updated"
    assert corrected.json()["revision"] == 2

    bad = call("POST", base, f"/api/v1/courses/{course['id']}/attendance",
               json={**body, "id_number": number[:17] + ("0" if number[17] != "0" else "1")})
    assert bad.status_code == 422 and bad.json()["code"] == "TRAINING_ATTENDANCE_INVALID"
    assert "校验码" in bad.json()["errors"]["id_number"][0]
    # the correction to failed revoked the certificate: nobody takes the number up again
    taken = call("POST", base, f"/api/v1/courses/{course['id']}/attendance",
                 json={**body, "person_name": "李八", "id_number": resident_id_for(8)})
    assert taken.status_code == 409 and taken.json()["code"] == "TRAINING_CERTIFICATE_REVOKED"

    listed = call("GET", base, f"/api/v1/courses/{course['id']}/attendance").json()
    assert listed["total"] == 1 and listed["items"][0]["passed"] is False
    detail = call("GET", base, f"/api/v1/courses/{course['id']}").json()
    assert (detail["attendees"], detail["passed"]) == (1, 0)
    for response in (first, again, corrected, bad, taken):
        assert number not in response.text and number[:17] not in response.text
    assert not [r for r in caplog.records if number[:17] in r.getMessage()]
    with db.unit_of_work() as uow:
        stored = uow.session.execute(text("SELECT id_encrypted, id_hmac FROM training_attendance")).one()
    assert number not in stored[0] and len(stored[1]) == 64

    (env1, data1), (env2, data2) = certificates(published, 2)
    assert env1["source"] == "talent" and env1["subject"] == {"kind": "certificate", "id": "CZ-2026-0007"}
    assert (data1["passed"], data2["passed"]) == (True, False) and env1["event_id"] != env2["event_id"]
    assert data1["course_id"] == course["id"] and data1["course_kind"] == "appointment"
    assert data1["county"] is None and data1["id_hmac"] == stored[1] and data1["issued_on"] == date(2026, 3, 5)
    for _, _, raw in published.seen:
        events.refuse_id_numbers(raw)
        assert number not in raw


def test_imports_report_each_row_and_a_reimport_changes_nothing(talent, published):
    base, db, _ = talent
    course = new_course(base, level="county", of="130921")
    course_id = course.json()["id"]
    bad_check = person(3)
    bad_check[2] = bad_check[2][:17] + ("0" if bad_check[2][17] != "0" else "1")
    rows = [person(1), person(2, passed="不合格", certificate="", issued=""), bad_check,
            person(4, kind="安全培训"), person(5, certificate="CZ2026-0001"), person(6)]
    report = upload(base, course_id, csv_bytes(rows))
    assert report.status_code == 200, report.text
    r = report.json()
    assert (r["total_rows"], r["inserted"], r["rejected"], r["format"]) == (6, 3, 3, "csv")
    assert r["certificates_announced"] == 2
    rejected = {row["line"]: row for row in r["rejected_rows"]}
    assert sorted(rejected) == [4, 5, 6]
    assert "校验码" in rejected[4]["reasons"][0] and rejected[4]["id_masked"].count("*") == 8
    assert "未知的培训类别" in rejected[5]["reasons"][0]
    assert "与第2行重复" in rejected[6]["reasons"][0]
    assert bad_check[2] not in report.text and resident_id_for(1) not in report.text

    again = upload(base, course_id, csv_bytes(rows)).json()
    assert (again["inserted"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 3, 3)
    assert again["certificates_announced"] == 0

    corrected = [person(1, passed="不合格"), person(2, passed="不合格", certificate="", issued=""), person(6)]
    book = upload(base, course_id, xlsx_bytes(corrected), content_type=XLSX).json()
    assert (book["format"], book["header_line"], book["updated"], book["unchanged"]) == ("xlsx", 2, 1, 2)
    with db.unit_of_work() as uow:
        count = uow.session.execute(text("SELECT count(*) FROM training_attendance")).scalar()
    assert count == 3

    announced = certificates(published, 3)
    assert [d["certificate_no"] for _, d in announced] == ["CZ2026-0001", "CZ2026-0006", "CZ2026-0001"]
    assert [d["passed"] for _, d in announced] == [True, True, False]
    assert announced[0][1]["county"] == "130921"
    assert len({e["event_id"] for e, _ in announced}) == 3


def test_a_certificate_belongs_to_one_attendance_across_courses(talent):
    base, _, _ = talent
    first, second = (new_course(base).json()["id"] for _ in range(2))
    assert upload(base, first, csv_bytes([person(1), person(2)])).json()["inserted"] == 2
    elsewhere = upload(base, second, csv_bytes([person(3, certificate="CZ2026-0001"), person(4)])).json()
    assert (elsewhere["inserted"], elsewhere["rejected"]) == (1, 1)
    assert elsewhere["rejected_rows"][0]["line"] == 2 and "已用于其他培训记录" in elsewhere["rejected_rows"][0]["reasons"][0]
    swapped = upload(base, first, csv_bytes([person(1, certificate="CZ2026-0004"), person(2)])).json()
    assert (swapped["updated"], swapped["unchanged"], swapped["rejected"]) == (0, 1, 1)
    detail = call("GET", base, f"/api/v1/courses/{second}").json()
    assert (detail["attendees"], detail["passed"]) == (1, 1)


def test_xlsx_import_with_its_own_spellings(talent):
    base, _, _ = talent
    course_id = new_course(base, kind="basic").json()["id"]
    header = ["证件号码", "姓名", "是否合格", "证书号", "备注"]
    rows = [[resident_id_for(11), "王十一", "是", "JC-11"], [resident_id_for(12), "王十二", "否", None, "补考"]]
    r = upload(base, course_id, xlsx_bytes(rows, header), content_type=XLSX).json()
    assert (r["inserted"], r["rejected"], r["ignored_columns"]) == (2, 0, ["备注"])
    listed = call("GET", base, f"/api/v1/courses/{course_id}/attendance", params={"passed": "true"}).json()
    assert [i["person_name"] for i in listed["items"]] == ["王十一"]


def test_files_that_cannot_be_imported_change_nothing(talent):
    base, _, _ = talent
    course_id = new_course(base).json()["id"]
    missing = upload(base, course_id, csv_bytes([["张三", "合格"]], header=["姓名", "考核结果"]))
    assert missing.status_code == 422 and missing.json()["code"] == "TRAINING_COLUMNS_MISSING"
    xls = upload(base, course_id, b"\xd0\xcf\x11\xe0" + b"\x00" * 100, content_type="application/vnd.ms-excel")
    assert xls.status_code == 415
    empty = upload(base, course_id, csv_bytes([]))
    assert empty.status_code == 422 and empty.json()["code"] == "TRAINING_EMPTY"
    assert upload(base, 999999, csv_bytes([person(1)])).status_code == 404


def test_county_officers_act_for_their_own_county_only(talent):
    base, _, _ = talent
    own = new_course(base, level="county", of="130921", role="county_officer", county="130921")
    assert own.status_code == 201, own.text
    other = new_course(base, level="county", of="130922", role="county_officer", county="130921")
    assert other.status_code == 403 and other.json()["code"] == "AUTH_FORBIDDEN"
    city_level = new_course(base, role="county_officer", county="130921")
    assert city_level.status_code == 403
    city_course = new_course(base).json()["id"]
    own_id = own.json()["id"]
    content = csv_bytes([person(1)])

    assert upload(base, own_id, content, role="county_officer", county="130922").status_code == 403
    assert upload(base, city_course, content, role="county_officer", county="130921").status_code == 403
    body = {"person_name": "张一", "id_number": resident_id_for(1), "passed": True}
    assert call("POST", base, f"/api/v1/courses/{own_id}/attendance", "county_officer", json=body,
                county="130922").status_code == 403
    assert call("GET", base, f"/api/v1/courses/{own_id}", "county_officer", county="130922").status_code == 403
    assert upload(base, own_id, content, role="county_officer", county="130921").json()["inserted"] == 1
    listing = call("GET", base, "/api/v1/courses", "county_officer", county="130922").json()
    assert [c["id"] for c in listing["items"]] == [city_course]
    enterprise = call("GET", base, "/api/v1/courses", "enterprise", uscc=uscc_for("130921", 1))
    assert enterprise.status_code == 403
    assert upload(base, own_id, content, role="enterprise", uscc=uscc_for("130921", 1)).status_code == 403


def test_training_summary_per_county_over_rpc(talent):
    base, _, config = talent
    city = new_course(base).json()["id"]
    county = new_course(base, kind="basic", level="county", of="130921").json()["id"]
    upload(base, city, csv_bytes([person(1), person(2, passed="不合格", certificate="", issued="")]))
    upload(base, county, csv_bytes([person(3, kind="基础培训")]))
    with ServiceRpcProxy("talent", config) as talent_rpc:
        assert talent_rpc.training_summary(2026) == {
            "city": {"courses": 1, "attendees": 2, "passed": 1},
            "130921": {"courses": 1, "attendees": 1, "passed": 1}}
        assert talent_rpc.training_summary(2025) == {}


def test_cli_training_import_posts_the_file_and_prints_the_report(talent, tmp_path):
    from typer.testing import CliRunner

    from cqo.cli import app

    base, _, _ = talent
    course_id = new_course(base).json()["id"]
    runner = CliRunner(env={"COLUMNS": "200"})
    bearer = token("city_officer").removeprefix("Bearer ")
    good = tmp_path / "学员名单.csv"
    good.write_bytes(csv_bytes([person(1), person(2)]))
    args = ["training", "import", str(good), "--course", str(course_id), "--url", base, "--token", bearer]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "接受2行（新增2、更新0、未变化0），拒绝0行" in result.output and "发布证书事件 2 条" in result.output

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx_bytes([person(1), person(3, kind="安全培训")]))
    result = runner.invoke(app, ["training", "import", str(bad), *args[3:]])
    assert result.exit_code == 1, result.output
    assert "被拒绝的行" in result.output and "未知的培训类别" in result.output and "未变化1" in result.output
    assert resident_id_for(3) not in result.output

    county = token("county_officer", county="130922").removeprefix("Bearer ")
    result = runner.invoke(app, [*args[:-1], county])
    assert result.exit_code == 2 and "导入失败" in result.output
    result = runner.invoke(app, [*args[:5], "--url", "http://127.0.0.1:1", "--token", bearer])
    assert result.exit_code == 2 and "无法连接人才服务" in result.output
