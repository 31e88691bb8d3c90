"""`cqo contacts import` against the running notify service (real broker, SQLite and
PostgreSQL): CSV and XLSX with Chinese columns, a per-row report with masked phones,
idempotent re-import, and a county officer limited to their county's rows."""
from __future__ import annotations

import json

import pytest
import requests
from openpyxl import Workbook
from typer.testing import CliRunner

from cqo.cli import app
from tests.integration.registry_support import token
from tests.integration.test_notify_service import notify  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

HEADER = ["单位级别", "县区代码", "名称", "联系人", "手机", "邮箱"]
ROWS = [
    ["市局", "", "市局质量发展科", "刘科长", "13900000001", "zlk@scjg.example.cn"],
    ["县级", "130921", "沧县市场监管局", "王股长", "13900000002", ""],
    ["县级", "130922", "青县市场监管局", "", "", "qx@scjg.example.cn"],
    ["省局", "", "河北省局", "", "13900000003", ""],             # no such level
    ["县级", "", "无县代码局", "", "13900000004", ""],           # county missing
    ["县级", "130921", "沧县市场监管局", "赵股长", "1390000", ""],  # not a phone number
    ["县级", "999999", "外地局", "", "13900000005", ""],         # outside the jurisdiction
]


def _csv(tmp_path, rows, name="contacts.csv", encoding="gb18030"):
    path = tmp_path / name
    path.write_bytes("\n".join(",".join(r) for r in [["通知联系人名单"], HEADER, *rows]).encode(encoding))
    return path


def _cli(base, path, role="city_officer", **scope):
    from cqo import cli_contacts
    cli_contacts.console.width = 250  # no wrapping inside the table's cells
    result = CliRunner().invoke(app, ["contacts", "import", str(path), "--url", base.removesuffix("/api/v1"),
                                      "--token", token(role, **scope).removeprefix("Bearer ")])
    return result.exit_code, result.output


def _import(base, path, role, **scope):
    return requests.post(base + "/contacts/import", data=path.read_bytes(), params={"filename": path.name},
                         headers={"Authorization": token(role, **scope), "Content-Type": "text/csv"}, timeout=20)


def test_contacts_import_reports_each_row_and_is_idempotent(notify, tmp_path):
    base, _ = notify
    path = _csv(tmp_path, ROWS)
    code, output = _cli(base, path)
    assert code == 1, output
    assert "共读取7行：接受3行（新增3、更新0、未变化0），拒绝4行" in output
    assert "单位级别“省局”无效" in output and "139****0004" in output and "13900000004" not in output

    report = _import(base, path, "city_officer").json()  # the same file again: nothing changes
    assert (report["inserted"], report["updated"], report["unchanged"], report["rejected"]) == (0, 0, 3, 4)
    assert report["format"] == "csv" and report["encoding"] == "gb18030" and report["header_line"] == 2
    by_line = {r["line"]: r for r in report["rejected_rows"]}
    assert set(by_line) == {6, 7, 8, 9}
    assert by_line[7]["reasons"] == ["县区代码：县级联系人必须填写县级区划代码"]
    assert by_line[8]["reasons"] == ["手机：电话号码格式不正确"]
    assert by_line[9]["reasons"][0].startswith("县区代码：")
    assert "13900000004" not in json.dumps(report, ensure_ascii=False)

    # an XLSX with one new phone: that row is updated, found by (level, county, name, person)
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["县级", "130921", "沧县市场监管局", "王股长", 13900000009, None])
    sheet.append(["市局", None, "市局质量发展科", "刘科长", 13900000001, "zlk@scjg.example.cn"])
    book.save(tmp_path / "contacts.xlsx")
    code, output = _cli(base, tmp_path / "contacts.xlsx")
    assert code == 0 and "接受2行（新增0、更新1、未变化1）" in output, output
    listed = requests.get(base + "/contacts", headers={"Authorization": token("city_officer")}, timeout=10).json()
    assert sorted((c["name"], c["person"], c["phone_masked"]) for c in listed["items"]) == [
        ("市局质量发展科", "刘科长", "139****0001"), ("沧县市场监管局", "王股长", "139****0009"),
        ("青县市场监管局", None, None)]


def test_a_county_officer_imports_only_their_county(notify, tmp_path):
    base, _ = notify
    report = _import(base, _csv(tmp_path, ROWS[:3]), "county_officer", county="130921").json()
    assert (report["inserted"], report["rejected"]) == (1, 2)
    assert {r["line"]: r["reasons"] for r in report["rejected_rows"]} == {
        3: ["县级监管人员只能导入本县（市、区）的联系人"], 5: ["县级监管人员只能导入本县（市、区）的联系人"]}
    refused = _import(base, _csv(tmp_path, ROWS[:1]), "enterprise", uscc="91130921MA0CXXXX0X")
    assert refused.status_code == 403
    empty = requests.post(base + "/contacts/import", data=b"a,b\n1,2\n", timeout=10,
                          headers={"Authorization": token("admin"), "Content-Type": "text/csv"})
    assert empty.status_code == 422 and empty.json()["code"] == "CONTACTS_HEADER_NOT_FOUND"
    code, output = _cli(base, _csv(tmp_path, [], name="header-only.csv"), role="admin")
    assert code == 0 and "共读取0行" in output
