"""Paging (shared.paging): the county and the city page with `page` and `page_size`; the
registry still takes and answers `per_page`, page_size's old name, as a deprecated alias."""
import json

import pytest
from marshmallow import ValidationError

from services.filing.schemas import NoticeQuery
from services.filing.schemas import FilingQuery
from services.filing.service import build_service as build_filing
from services.registry.oversight.schemas import OverdueQuery
from services.registry.register.schemas import LedgerPageOut, LedgerQuery
from services.registry.service import RegistryService
from shared.http import problem_from_exception
from shared.openapi import spec_dict
from shared.paging import PageSizeConflict

REGISTRY_LISTINGS = ("/api/v1/filings", "/api/v1/terms", "/api/v1/recommendations",
                     "/api/v1/roster", "/api/v1/coverage", "/api/v1/overdue")


@pytest.mark.parametrize("query", [{"page_size": "20"}, {"per_page": "20"},
                                   {"page_size": "20", "per_page": "20"},
                                   {"page_size": "20", "per_page": "020"}])
def test_the_registry_takes_page_size_or_its_old_name(query):
    assert LedgerQuery().load(query) == {"page": 1, "page_size": 20}


def test_each_listing_keeps_its_default_and_ceiling():
    assert LedgerQuery().load({})["page_size"] == 50
    assert OverdueQuery().load({})["page_size"] == 200
    assert OverdueQuery().load({"per_page": "1000"})["page_size"] == 1000
    for schema, field, size in ((LedgerQuery, "page_size", "501"), (LedgerQuery, "per_page", "501"),
                                (OverdueQuery, "per_page", "1001"), (FilingQuery, "page_size", "201")):
        with pytest.raises(ValidationError) as err:
            schema().load({field: size})
        assert list(err.value.messages) == [field]
    assert FilingQuery().load({})["page_size"] == NoticeQuery().load({})["page_size"] == 50


def test_two_different_sizes_are_a_400_problem():
    with pytest.raises(PageSizeConflict) as err:
        LedgerQuery().load({"page_size": "20", "per_page": "30"})
    resp = problem_from_exception(err.value, instance="/api/v1/filings")
    body = json.loads(resp.get_data())
    assert resp.status_code == 400 and body["code"] == "PAGE_SIZE_CONFLICT"
    assert body["title"] == "每页条数参数相互矛盾"
    assert body["detail"].startswith("每页条数给出了两个不同的值：page_size=20，per_page=30")
    assert body["errors"] == {"page_size": [body["detail"]]}
    assert body["details"] == {"page_size": 20, "per_page": 30}


def test_the_county_has_no_old_name():
    for schema in (FilingQuery, NoticeQuery):
        with pytest.raises(ValidationError) as err:
            schema().load({"per_page": "20"})
        assert err.value.messages == {"per_page": ["未知的查询参数"]}


def test_the_registry_answers_both_names():
    body = LedgerPageOut().dump({"items": [], "total": 0, "page": 1, "page_size": 20})
    assert (body["page_size"], body["per_page"]) == (20, 20)


def test_the_documents_show_page_size_and_the_deprecated_alias():
    registry = spec_dict(RegistryService)
    for path in REGISTRY_LISTINGS:
        operation = registry["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["page_size"]["schema"]["default"] == (200 if path == "/api/v1/overdue" else 50)
        assert params["per_page"]["deprecated"] is True and "default" not in params["per_page"]["schema"]
        assert "page_size 的旧名" in params["per_page"]["description"]
        assert "400" in operation["responses"]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        name = answer["$ref"].rsplit("/", 1)[-1]
        properties = registry["components"]["schemas"][name]["properties"]
        if path == "/api/v1/coverage":  # the page of uncovered enterprises
            name = properties["uncovered"]["$ref"].rsplit("/", 1)[-1]
            properties = registry["components"]["schemas"][name]["properties"]
        assert "deprecated" not in properties["page_size"], path
        assert properties["per_page"]["deprecated"] is True, path
        assert "page_size 的旧名" in properties["per_page"]["description"]

    county = spec_dict(build_filing({"COUNTY_CODE": "130921"}))
    for path in ("/api/v1/filings", "/api/v1/notices"):
        operation = county["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"page", "page_size"} <= names and "per_page" not in names
        assert "400" not in operation["responses"]
