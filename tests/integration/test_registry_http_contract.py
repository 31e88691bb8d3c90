"""The registry's HTTP contract on SQLite and PostgreSQL (issue 8, defects 9-11): bounded
numbers, one JSON type per field whatever the database, and an OpenAPI document that
states the validation the endpoints apply."""
import re
from datetime import date

import pytest
import requests
from jsonschema import Draft4Validator, FormatChecker

from tests.integration.registry_support import get, token

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
HUGE = (2**63 - 1, 2**64, 10**30)


def _problem(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["title"]  # Chinese title, stable code
    if code:
        assert body["code"] == code, body
    return body


def _post(base, path, body, role="city_officer", **kw):
    return requests.post(base + path, json=body, timeout=10,
                         headers={"Authorization": token(role, **kw)})


# -- defect 9: 500 on large numbers ------------------------------------------------------------

LISTINGS = ["/api/v1/terms", "/api/v1/filings", "/api/v1/coverage?year=2026",
            "/api/v1/roster?year=2026", "/api/v1/recommendations", "/api/v1/overdue"]


@pytest.mark.parametrize("path", LISTINGS)
def test_a_page_beyond_the_last_possible_is_422(registry, path):
    _, base, _ = registry
    sep = "&" if "?" in path else "?"
    for page in HUGE:
        body = _problem(get(base, f"{path}{sep}page={page}"), 422, "VALIDATION_FAILED")
        assert list(body["errors"]) == ["page"], body
    assert get(base, f"{path}{sep}page=1000000").status_code == 200  # the last allowed page


# -- paging: page_size, as at the county; per_page, its old name, still accepted ----------------

def _envelope(body: dict) -> dict:
    return body["uncovered"] if "uncovered" in body else body  # coverage nests its page


def test_the_ledger_pages_by_page_size_or_by_its_old_name_per_page(registry):
    county, base, _ = registry
    for n in (61, 62, 63):
        filing = county.filing(n=n)
        county.publish(filing)
        county.decision_of(filing)
    default = get(base, "/api/v1/filings").json()
    assert (default["total"], default["page_size"], default["per_page"]) == (3, 50, 50)
    pages = {}
    for query in ("page_size=2", "per_page=2", "page_size=2&per_page=2", "page_size=2&per_page=02"):
        for page in (1, 2):
            body = get(base, f"/api/v1/filings?{query}&page={page}").json()
            # the answer names the size both ways: clients read per_page
            assert (body["total"], body["page"], body["page_size"], body["per_page"]) == (3, page, 2, 2)
            pages.setdefault(page, set()).add(tuple(e["filing_id"] for e in body["items"]))
    (first,), (second,) = pages[1], pages[2]  # the same pages whichever name gave the size
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)


@pytest.mark.parametrize("path", LISTINGS)
def test_every_listing_takes_page_size_and_per_page_and_refuses_two_sizes(registry, path):
    _, base, _ = registry
    sep = "&" if "?" in path else "?"
    default = 200 if path == "/api/v1/overdue" else 50
    for query, size in (("", default), ("page_size=7", 7), ("per_page=7", 7),
                        ("page_size=7&per_page=7", 7)):
        resp = get(base, f"{path}{sep}{query}")
        assert resp.status_code == 200, resp.text
        page = _envelope(resp.json())
        assert (page["page"], page["page_size"], page["per_page"]) == (1, size, size), query
    body = _problem(get(base, f"{path}{sep}page_size=7&per_page=8"), 400, "PAGE_SIZE_CONFLICT")
    assert body["title"] == "每页条数参数相互矛盾"
    assert "page_size=7" in body["detail"] and "per_page=8" in body["detail"] and "已弃用" in body["detail"]
    assert list(body["errors"]) == ["page_size"]
    assert body["details"] == {"page_size": 7, "per_page": 8}
    # the old name keeps its bounds
    body = _problem(get(base, f"{path}{sep}per_page=0"), 422, "VALIDATION_FAILED")
    assert list(body["errors"]) == ["per_page"]


def test_an_id_beyond_64_bits_is_not_found(registry):
    _, base, _ = registry
    for rec_id in (2**64, 10**30):
        _problem(get(base, f"/api/v1/recommendations/{rec_id}"), 404)
        for action in ("withdraw", "close"):
            _problem(_post(base, f"/api/v1/recommendations/{rec_id}/{action}", {"comment": "撤回"}), 404)
        _problem(_post(base, f"/api/v1/recommendations/{rec_id}/answer", {"text": "已整改"},
                       "enterprise", uscc="91130921MA0CQ00188"), 404)
    # within 64 bits: the recommendation is looked up, and is not there
    _problem(get(base, f"/api/v1/recommendations/{2**63 - 1}"), 404, "RECOMMENDATION_NOT_FOUND")
    for year in (2**31, 2**64):  # a 32-bit column on PostgreSQL
        _problem(_post(base, f"/api/v1/campaigns/{year}/close", None), 404)
        _problem(get(base, f"/api/v1/campaigns/{year}/progress"), 404)


def test_text_no_database_stores_is_422_in_a_query(registry):
    # a NUL in a filter reached PostgreSQL (500 "A string literal cannot contain NUL")
    _, base, _ = registry
    for path in ("/api/v1/filings?uscc=9113092%00M00000019X", "/api/v1/terms?county=13092%00",
                 "/api/v1/roster?year=2026&uscc=9113092%00M00000019X"):
        _problem(get(base, path), 422, "VALIDATION_FAILED")


# -- defect 10: the same field, two JSON types ---------------------------------------------------

def _resolve(document: dict, schema):
    """An OpenAPI 3.0 schema as JSON Schema draft 4: $refs inlined, `nullable` as a type."""
    if isinstance(schema, list):
        return [_resolve(document, s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(document, document["components"]["schemas"][name])
    out = {k: _resolve(document, v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def test_enterprise_lookup_has_the_documented_json_types(registry):
    county, base, _ = registry
    establishment = county.filing(n=41)
    county.publish(establishment)
    county.decision_of(establishment)
    late = county.filing(n=41, kind="change", person=410, effective_on=date(2026, 1, 31),
                         submitted=date(2026, 3, 3))
    county.publish(late)
    assert county.decision_of(late)["late"] is True
    uscc = establishment["enterprise"]["uscc"]
    body = get(base, f"/api/v1/enterprises/{uscc}").json()
    # booleans are JSON booleans (SQLite answered 0/1), on every filing and appointment
    assert [f["late"] for f in body["filings"]] == [True, False]
    assert all(type(a[key]) is bool for a in body["history"]
               for key in ("is_decision_level", "appointed_by_top_manager"))
    # the whole document as the OpenAPI document says, formats included (SQLite's times
    # came without a time zone: not a date-time)
    document = get(base, "/api/v1/openapi.json").json()
    schema = _resolve(document, document["paths"]["/api/v1/enterprises/{uscc}"]["get"]
                      ["responses"]["200"]["content"]["application/json"]["schema"])
    errors = sorted(Draft4Validator(schema, format_checker=FormatChecker()).iter_errors(body),
                    key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # RFC 3339 date-times carry their offset (the format checker needs an extra package)
    times = [f[key] for f in body["filings"] for key in ("received_at", "decided_at")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", t)
               for t in times), times


# -- defect 11: the document states the validation -----------------------------------------------

def test_the_document_states_what_the_endpoints_check(registry):
    _, base, _ = registry
    doc = get(base, "/api/v1/openapi.json").json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for path in ("/api/v1/enterprises/{uscc}", "/api/v1/enterprises/{uscc}/award-check"):
        operation = paths[path]["get"]
        (uscc,) = [p for p in operation["parameters"] if p["name"] == "uscc"]
        assert uscc["in"] == "path" and uscc["required"] is True
        assert uscc["schema"]["pattern"] == "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
        # validate_uscc answers 422 (USCC_*), unknown enterprises 404
        assert {"401", "403", "404", "422"} <= set(operation["responses"])
        assert operation["responses"]["422"] == {"$ref": "#/components/responses/ValidationFailed"}

    recommendation = schemas["RecommendationIn"]
    assert set(recommendation["required"]) == {"uscc", "incident", "reason"}
    assert recommendation["additionalProperties"] is False
    assert recommendation["properties"]["uscc"]["pattern"]
    for name in ("incident", "reason"):
        assert recommendation["properties"][name]["minLength"] == 1
        assert recommendation["properties"][name]["maxLength"] == 2000
    issue = paths["/api/v1/recommendations"]["post"]
    assert {"400", "404", "409", "413", "415", "422"} <= set(issue["responses"])

    roster = paths["/api/v1/roster"]["post"]
    upload = roster["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["file"]
    year = next(p for p in roster["parameters"] if p["name"] == "year")
    assert (year["schema"]["minimum"], year["schema"]["maximum"]) == (2000, 2100)
    assert {"400", "413", "415", "422"} <= set(roster["responses"])

    for path in ("/api/v1/filings", "/api/v1/terms", "/api/v1/recommendations", "/api/v1/roster",
                 "/api/v1/coverage", "/api/v1/overdue"):
        listing = paths[path]["get"]
        params = {p["name"]: p for p in listing["parameters"]}
        assert params["page"]["schema"]["maximum"] == 1_000_000, path
        # page_size, and per_page as its deprecated alias; two sizes that differ: 400
        assert "deprecated" not in params["page_size"]
        assert params["per_page"]["deprecated"] is True
        assert "page_size" in params["per_page"]["description"]
        assert params["per_page"]["schema"]["maximum"] == params["page_size"]["schema"]["maximum"]
        assert listing["responses"]["400"] == {"$ref": "#/components/responses/BadRequest"}
    (rec_id,) = paths["/api/v1/recommendations/{rec_id}"]["get"]["parameters"]
    assert rec_id["schema"]["maximum"] == 2**63 - 1
    (year,) = paths["/api/v1/campaigns/{year}/close"]["post"]["parameters"]
    assert (year["schema"]["minimum"], year["schema"]["maximum"]) == (2000, 2100)
    problem = doc["components"]["responses"]["ValidationFailed"]["content"]
    assert problem["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
