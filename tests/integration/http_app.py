"""A small HTTP-only nameko service exercising shared.http / shared.auth / shared.openapi.

Also runnable on its own: `nameko run tests.integration.http_app --config cfg.yaml`
with WEB_SERVER_ADDRESS and AUTH_SECRET set (no broker needed).
"""
from marshmallow import Schema, fields, validate
from nameko.dependency_providers import Config

from shared.auth import requires
from shared.errors import NotFound, ValidationFailed
from shared.http import HttpBase, http, json_response, load_json, load_query
from shared.openapi import api_doc


class ItemIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=20))
    count = fields.Integer(required=True, validate=validate.Range(min=1))
    kind = fields.String(validate=validate.OneOf(["a", "b"]))


class ItemOut(Schema):
    id = fields.String()
    name = fields.String()
    count = fields.Integer()
    county = fields.String(allow_none=True)


class YearQuery(Schema):
    year = fields.Integer(required=True)


class DemoService(HttpBase):
    name = "http_demo"
    api_title = "演示服务接口"
    config = Config()

    @http("POST", "/api/v1/counties/<string:county>/items")
    @requires("county_officer", "city_officer")
    @api_doc("新增条目", request=ItemIn, response=ItemOut, status=201, tags=["条目"])
    def create_item(self, request, county):
        request.principal.require_county(county)
        data = load_json(request, ItemIn)
        return json_response({"id": "1", "county": county, **data}, status=201)

    @http("POST", "/api/v1/small")
    @requires()
    def small_body(self, request):
        """Echo a small body (max 1000 bytes)."""
        from shared.http import read_json
        return {"echo": read_json(request, max_bytes=1000)}

    @http("GET", "/api/v1/items/<int:item_id>")
    @api_doc("查询条目", response=ItemOut, tags=["条目"])
    @requires("enterprise", "county_officer", "city_officer", "admin")
    def get_item(self, request, item_id):
        if item_id == 404:
            raise NotFound("条目不存在")
        if item_id == 422:
            raise ValidationFailed("数量必须为正数", field="count")
        return {"id": str(item_id), "name": "示例", "count": 1, "county": None}

    @http("GET", "/api/v1/coverage")
    @requires("admin")
    @api_doc("覆盖率", query=YearQuery)
    def coverage(self, request):
        return {"year": load_query(request, YearQuery)["year"]}

    @http("GET", "/api/v1/boom")
    def boom(self, request):
        raise RuntimeError("secret internal detail 130921198001011234")
