"""shared.http / shared.auth / shared.openapi against a real in-process nameko service.

HTTP only, so no broker. Needs eventlet.monkey_patch() before anything else is imported
(tests/conftest.py does it): the test's blocking `requests` calls must yield to the
service's green threads.
"""
import json
import socket
from datetime import timedelta

import eventlet
import pytest
import requests

if not eventlet.patcher.is_monkey_patched("socket"):
    raise RuntimeError("tests/integration/test_http_problem.py needs eventlet.monkey_patch() "
                       "at the top of tests/conftest.py")

from nameko.containers import ServiceContainer  # noqa: E402

from shared.auth import issue_token  # noqa: E402
from tests.integration.http_app import DemoService  # noqa: E402

SECRET = "integration-test-secret-0123456789abcdef"
PROBLEM = "application/problem+json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def base_url():
    port = _free_port()
    container = ServiceContainer(DemoService, {
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "AUTH_SECRET": SECRET})
    container.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        container.stop()


def bearer(role, **claims):
    return {"Authorization": "Bearer " + issue_token(SECRET, role, **claims)}


CITY = bearer("city_officer")
COUNTY = bearer("county_officer", county="130921")
ITEMS = "/api/v1/counties/130921/items"


def assert_problem(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["type"].startswith("urn:cqo:problem:")
    return body


def test_health_needs_no_token(base_url):
    resp = requests.get(base_url + "/api/v1/health")
    assert resp.status_code == 200
    # no database and no broker in this service: nothing else to check
    assert resp.json() == {"status": "ok", "service": "http_demo", "checks": {}}


def test_missing_token_is_401(base_url):
    body = assert_problem(requests.get(base_url + "/api/v1/items/1"), 401, "AUTH_MISSING")
    assert body["instance"] == "/api/v1/items/1"
    assert "令牌" in body["detail"]


def test_not_bearer_scheme_is_401(base_url):
    resp = requests.get(base_url + "/api/v1/items/1", headers={"Authorization": "Basic eDp5"})
    assert_problem(resp, 401, "AUTH_INVALID")


def test_tampered_token_is_401(base_url):
    token = issue_token(SECRET, "admin")
    head, payload, sig = token.split(".")
    # a payload re-signed elsewhere (other subject), glued to our header and signature
    forged = issue_token("another-secret-0123456789abcdef0123", "admin", subject="mallory")
    for bad in (f"{head}.{forged.split('.')[1]}.{sig}", token[:-2] + "xx", "garbage"):
        resp = requests.get(base_url + "/api/v1/items/1",
                            headers={"Authorization": f"Bearer {bad}"})
        assert_problem(resp, 401, "AUTH_INVALID")


def test_expired_token_is_401(base_url):
    headers = bearer("admin", ttl=timedelta(minutes=-5))
    assert_problem(requests.get(base_url + "/api/v1/items/1", headers=headers),
                   401, "AUTH_EXPIRED")


def test_wrong_role_is_403(base_url):
    resp = requests.get(base_url + "/api/v1/coverage?year=2025", headers=CITY)
    assert_problem(resp, 403, "AUTH_FORBIDDEN")


def test_wrong_county_is_403(base_url):
    headers = bearer("county_officer", county="130922")
    resp = requests.post(base_url + ITEMS, json={"name": "x", "count": 1}, headers=headers)
    assert_problem(resp, 403, "AUTH_FORBIDDEN")


def test_ok_with_token(base_url):
    resp = requests.get(base_url + "/api/v1/items/7", headers=bearer("enterprise", uscc="91130900MA0CXXXX0X"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["name"] == "示例"
    resp = requests.post(base_url + ITEMS, json={"name": "甲", "count": 2}, headers=COUNTY)
    assert resp.status_code == 201
    assert resp.json() == {"id": "1", "county": "130921", "name": "甲", "count": 2}


def test_query_schema(base_url):
    admin = bearer("admin")
    assert requests.get(base_url + "/api/v1/coverage?year=2025", headers=admin).json() == {"year": 2025}
    body = assert_problem(requests.get(base_url + "/api/v1/coverage", headers=admin),
                          422, "VALIDATION_FAILED")
    assert body["errors"] == {"year": ["必填字段缺失"]}


def test_router_404_and_405_are_problems(base_url):
    body = assert_problem(requests.get(base_url + "/api/v1/nope"), 404, "NOT_FOUND")
    assert body["title"] == "未找到请求的资源" and body["instance"] == "/api/v1/nope"
    resp = requests.delete(base_url + "/api/v1/health")
    body = assert_problem(resp, 405, "METHOD_NOT_ALLOWED")
    assert body["title"] == "不支持该请求方法"
    assert "GET" in resp.headers["Allow"]


def test_domain_errors(base_url):
    body = assert_problem(requests.get(base_url + "/api/v1/items/404", headers=CITY),
                          404, "NOT_FOUND")
    assert body["detail"] == "条目不存在"
    body = assert_problem(requests.get(base_url + "/api/v1/items/422", headers=CITY),
                          422, "VALIDATION_FAILED")
    assert body["errors"] == {"count": ["数量必须为正数"]}


def test_path_ids_beyond_64_bits_match_no_route(base_url):
    # issue 8, defect 9: such an id reached the query (500); now no route matches (404)
    assert requests.get(base_url + f"/api/v1/items/{2**63 - 1}", headers=CITY).status_code == 200
    for huge in (2**63, 10**30):
        assert_problem(requests.get(base_url + f"/api/v1/items/{huge}", headers=CITY),
                       404, "NOT_FOUND")


def test_schema_validation_is_422_per_field(base_url):
    resp = requests.post(base_url + ITEMS, json={"name": "", "count": "many", "kind": "z",
                                                 "extra": 1}, headers=COUNTY)
    body = assert_problem(resp, 422, "VALIDATION_FAILED")
    errors = body["errors"]
    assert errors["name"] == ["长度必须在 1 到 20 之间"]
    assert errors["count"] == ["不是有效的整数"]
    assert errors["kind"] == ["取值必须为以下之一：a, b"]
    assert errors["extra"] == ["未知字段"]
    resp = requests.post(base_url + ITEMS, json=[1, 2], headers=COUNTY)
    assert assert_problem(resp, 422, "VALIDATION_FAILED")["errors"] == {
        "_schema": ["输入类型无效，应为 JSON 对象"]}


def test_bad_json_is_400(base_url):
    for raw in (b'{"name": ', b"", b"\xff\xfe", b'{"count": NaN}'):
        resp = requests.post(base_url + ITEMS, data=raw, headers={
            **COUNTY, "Content-Type": "application/json"})
        assert_problem(resp, 400, "BAD_JSON")


def test_form_post_is_415(base_url):
    resp = requests.post(base_url + ITEMS, data={"name": "x"}, headers=COUNTY)
    assert_problem(resp, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_oversize_body_is_413(base_url):
    big = {"name": "x" * 2000}
    body = assert_problem(requests.post(base_url + "/api/v1/small", json=big, headers=CITY),
                          413, "PAYLOAD_TOO_LARGE")
    assert body["title"] == "请求体过大"
    # the connection stays usable / the server keeps serving
    assert requests.post(base_url + "/api/v1/small", json={"a": 1}, headers=CITY).json() == {
        "echo": {"a": 1}}


def test_chunked_bodies_are_read_and_bounded(base_url):
    ok = requests.post(base_url + "/api/v1/small", data=iter([b'{"a":', b" 2}"]),
                       headers={**CITY, "Content-Type": "application/json"})
    assert ok.json() == {"echo": {"a": 2}}
    big = requests.post(base_url + "/api/v1/small", data=iter([b"[" + b"1," * 600, b"1]"]),
                        headers={**CITY, "Content-Type": "application/json"})
    assert_problem(big, 413, "PAYLOAD_TOO_LARGE")


def test_unhandled_exception_is_500_without_details(base_url, caplog):
    resp = requests.get(base_url + "/api/v1/boom")
    body = assert_problem(resp, 500, "INTERNAL_ERROR")
    assert body["title"] == "服务器内部错误"
    assert "secret" not in resp.text and "RuntimeError" not in resp.text
    assert "Traceback" not in resp.text and "130921198001011234" not in resp.text
    assert len(body["error_id"]) == 12
    # ...but the log has it all, under the same error_id
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info[0] is RuntimeError


def test_openapi_document(base_url):
    resp = requests.get(base_url + "/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"] == "3.0.3" and doc["info"]["title"] == "演示服务接口"
    paths = doc["paths"]
    assert {"/api/v1/health", "/api/v1/openapi.json", "/api/v1/counties/{county}/items",
            "/api/v1/items/{item_id}", "/api/v1/coverage", "/api/v1/small",
            "/api/v1/boom"} <= set(paths)
    create = paths["/api/v1/counties/{county}/items"]["post"]
    assert create["summary"] == "新增条目" and create["tags"] == ["条目"]
    assert create["security"] == [{"bearerAuth": []}]
    assert create["parameters"][0] == {"in": "path", "name": "county", "required": True,
                                       "schema": {"type": "string"}}
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemIn"}
    assert set(create["responses"]) >= {"201", "400", "401", "403", "404", "413", "422", "500"}
    assert create["responses"]["422"] == {"$ref": "#/components/responses/ValidationFailed"}
    get_item = paths["/api/v1/items/{item_id}"]["get"]
    # bounded as the converter matches (shared.http.BoundedIntegerConverter)
    assert get_item["parameters"][0]["schema"] == {"type": "integer", "minimum": 0,
                                                   "maximum": 2**63 - 1}
    coverage = paths["/api/v1/coverage"]["get"]
    assert coverage["parameters"] == [{"in": "query", "name": "year", "required": True,
                                       "schema": {"type": "integer"}}]
    assert paths["/api/v1/health"]["get"]["security"] == []
    assert paths["/api/v1/small"]["post"]["summary"] == "Echo a small body (max 1000 bytes)."
    comps = doc["components"]
    assert comps["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"ItemIn", "ItemOut", "Problem"} <= set(comps["schemas"])
    assert comps["responses"]["Unauthorized"]["content"]["application/problem+json"]


def test_httpbase_itself_has_no_entrypoints():
    # `nameko run module` runs every class with entrypoints it finds in the module,
    # imported ones included; a bare HttpBase (no `name`) must not be one of them.
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR as ATTR

    from shared.http import HttpBase

    class Abstract(HttpBase):  # no name: an intermediate base
        pass

    for cls in (HttpBase, Abstract):
        assert not any(hasattr(fn, ATTR) for fn in vars(cls).values())
    assert hasattr(DemoService.health_check, ATTR)
    assert DemoService.openapi_document is not HttpBase.__dict__.get("openapi_document")


@pytest.mark.parametrize("text", ["a\u0000b", "\ud800"])
def test_text_no_database_can_store_is_refused(base_url, text):
    """NUL and lone surrogates pass JSON but make PostgreSQL fail: refused up front."""
    body = json.dumps({"name": text, "nested": [{"k": "ok"}]})
    resp = requests.post(base_url + ITEMS, data=body, timeout=10,
                         headers={**COUNTY, "Content-Type": "application/json"})
    assert "name" in assert_problem(resp, 422, "VALIDATION_FAILED")["errors"]
