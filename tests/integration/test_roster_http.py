"""POST/GET /api/v1/roster at the registry: who may import, uploads (multipart, raw CSV,
raw XLSX), problem+json for bad files, scoped listing."""
import re

import pytest
import requests

from tests.support.factories import uscc_for
from tests.integration.registry_support import running_registry, token
from tests.integration.test_roster_import import (HEADER, SHAPES, csv_bytes, row, shaped, snapshot, stored_as,
                                                  varied_rows, xlsx_bytes)

pytestmark = pytest.mark.integration
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def small_registry(amqp_uri, db_config, tmp_path, free_port):
    """The registry with a 20 kB upload limit."""
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port(),
                          ROSTER_MAX_UPLOAD_BYTES=20_000) as (_, base, _):
        yield base


def post(base, content=None, *, role="city_officer", files=None, content_type="text/csv", params=None, **kw):
    headers = {"Authorization": token(role, **kw)}
    if files is None:
        headers["Content-Type"] = content_type
    return requests.post(base + "/api/v1/roster", data=content, files=files, params=params,
                         headers=headers, timeout=30)


def problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["title"] and body["detail"]
    return body


def test_city_officer_imports_multipart_and_raw_uploads(registry):
    _, base, _ = registry
    rows = [row("130921", n) for n in range(5)] + [row("130922", n) for n in range(3)] + [row("999999", 1)]
    sent = post(base, files={"file": ("2026名录.csv", csv_bytes(rows), "text/csv")})
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert (report["accepted"], report["inserted"], report["rejected"], report["source"]) == (8, 8, 1, "2026名录.csv")
    assert report["rejected_rows"][0]["line"] == 10 and "不属于本辖区" in report["rejected_rows"][0]["reasons"][0]

    again = post(base, csv_bytes(rows), params={"filename": "again.csv"})
    assert again.status_code == 200 and again.json()["unchanged"] == 8 and again.json()["source"] == "again.csv"

    header = [h for h in HEADER if h != "年度"]
    book = xlsx_bytes([r[:4] + r[5:] for r in rows[:3]], header)
    raw = post(base, book, content_type=XLSX, params={"year": 2027}, role="admin")
    assert raw.status_code == 200 and raw.json()["format"] == "xlsx" and raw.json()["years"] == [2027]

    listed = requests.get(base + "/api/v1/roster", params={"year": 2026, "county": "130921"},
                          headers={"Authorization": token("city_officer")}, timeout=10).json()
    assert listed["total"] == 5 and listed["items"][0]["category_name"] == "规模以上工业"
    imports = requests.get(base + "/api/v1/roster/imports", timeout=10,
                           headers={"Authorization": token("admin")}).json()
    assert [i["source"] for i in imports] == ["upload", "again.csv", "2026名录.csv"]


def test_only_the_city_imports_and_counties_see_their_own_roster(registry):
    _, base, _ = registry
    content = csv_bytes([row("130921", 1), row("130922", 2)])
    problem(post(base, content, role="county_officer", county="130921"), 403, "AUTH_FORBIDDEN")
    problem(post(base, content, role="enterprise", uscc=uscc_for("130921", 1)), 403, "AUTH_FORBIDDEN")
    assert requests.post(base + "/api/v1/roster", data=content, timeout=10).status_code == 401
    assert post(base, content).status_code == 200

    def listing(**params):
        return requests.get(base + "/api/v1/roster", params={"year": 2026, **params}, timeout=10,
                            headers={"Authorization": token("county_officer", county="130921")})

    own = listing().json()
    assert [i["uscc"] for i in own["items"]] == [uscc_for("130921", 1)]
    problem(listing(county="130922"), 403, "AUTH_FORBIDDEN")
    assert listing(year="x").status_code == 422


def test_bad_files_get_problems_and_change_nothing(registry, small_registry):
    _, base, _ = registry
    problem(post(base, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, content_type="application/vnd.ms-excel"),
            415, "ROSTER_FORMAT_UNSUPPORTED")
    problem(post(base, b"PK\x03\x04 broken", content_type=XLSX), 400, "ROSTER_FILE_UNREADABLE")
    missing = problem(post(base, csv_bytes([row("130921", 1)[:3]], HEADER[:3])), 422, "ROSTER_COLUMNS_MISSING")
    assert "企业类别" in missing["detail"]
    problem(post(base, b""), 422, "ROSTER_EMPTY")
    problem(post(base, b'{"a": 1}', content_type="application/json"), 415, "UNSUPPORTED_MEDIA_TYPE")
    problem(post(base, csv_bytes([row("130921", 1)]), params={"year": "1900"}), 422, "VALIDATION_FAILED")
    big = csv_bytes([row("130921", n) for n in range(400)])
    assert len(big) > 20_000
    problem(post(small_registry, big), 413, "PAYLOAD_TOO_LARGE")
    assert post(small_registry, csv_bytes([row("130921", 1)])).status_code == 200
    listed = requests.get(base + "/api/v1/roster", params={"year": 2026}, timeout=10,
                          headers={"Authorization": token("city_officer")}).json()
    assert listed["total"] == 1  # the one small import (both registries share the database)


def test_multipart_without_a_file_field_is_a_problem(registry):
    _, base, _ = registry
    response = requests.post(base + "/api/v1/roster", files={"note": (None, "no file")}, timeout=10,
                             headers={"Authorization": token("city_officer")})
    problem(response, 400, "ROSTER_FILE_MISSING")


def test_every_shape_of_optional_columns_is_stored_whole(registry):
    """Files with any of 联系人/联系电话/电子邮箱 missing, of one row and of several, as CSV
    and XLSX: the report's counts are what the roster then holds, value for value."""
    _, base, database = registry
    expected = []
    years = iter(range(2030, 2100))
    for optional in SHAPES:
        for count, fmt in ((1, "csv"), (6, "csv"), (1, "xlsx"), (6, "xlsx")):
            rows = varied_rows(next(years), 0, count)
            header, cells = shaped(rows, optional)
            content = csv_bytes(cells, header) if fmt == "csv" else xlsx_bytes(cells, header)
            sent = post(base, files={"file": (f"名录.{fmt}", content, "application/octet-stream")})
            assert sent.status_code == 200, (optional, count, fmt, sent.text)
            report = sent.json()
            assert (report["accepted"], report["inserted"], report["rejected"]) == (count, count, 0), report
            expected += stored_as(rows, optional)
    assert snapshot(database) == sorted(expected)


def test_a_header_without_rows_is_a_problem_of_its_own(registry):
    _, base, database = registry
    for header in (HEADER, HEADER[:5]):
        for content, content_type in ((csv_bytes([], header), "text/csv"),
                                      (csv_bytes([[""] * len(header)] * 3, header), "text/csv"),
                                      (xlsx_bytes([], header), XLSX)):
            body = problem(post(base, content, content_type=content_type), 422, "ROSTER_EMPTY")
            assert re.search("[\u4e00-\u9fff]", body["title"]) and "没有数据行" in body["detail"], body
    assert snapshot(database) == []
    imports = requests.get(base + "/api/v1/roster/imports", timeout=10, headers={"Authorization": token("admin")})
    assert imports.status_code == 200 and imports.json() == []
