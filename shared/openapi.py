"""OpenAPI 3.0.3 document of a nameko service, built from its HTTP entrypoints.

An entrypoint is documented by `@api_doc(...)` (summary, marshmallow schemas, tags);
`@requires(...)` (shared.auth) marks it as needing a bearer token. Undecorated
entrypoints still appear, with their docstring's first line as summary. A query schema
may name in `api_errors` the statuses other than 422 its loading answers.
"""
from __future__ import annotations

import inspect
import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from shared.auth import ROLE_NAMES

OPENAPI_VERSION = "3.0.3"
PROBLEM = "application/problem+json"

# components/responses: name -> (status, Chinese description)
ERROR_RESPONSES = {
    "BadRequest": ("400", "请求有误（如请求体不是有效的 JSON）"),
    "Unauthorized": ("401", "缺少、无效或过期的访问令牌"),
    "Forbidden": ("403", "角色或数据范围无权访问"),
    "NotFound": ("404", "未找到请求的资源"),
    "Conflict": ("409", "与现有数据冲突"),
    "PayloadTooLarge": ("413", "请求体过大"),
    "UnsupportedMediaType": ("415", "不支持的请求内容类型"),
    "ValidationFailed": ("422", "提交的数据未通过校验（errors 按字段列出原因）"),
    "InternalError": ("500", "服务器内部错误"),
}
_BY_STATUS = {status: name for name, (status, _) in ERROR_RESPONSES.items()}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 问题详情",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "example": "urn:cqo:problem:validation-failed"},
        "title": {"type": "string", "example": "提交的数据未通过校验"},
        "status": {"type": "integer", "example": 422},
        "code": {"type": "string", "example": "VALIDATION_FAILED"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "example": "/api/v1/filings"},
        "errors": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "string"}}},
        "error_id": {"type": "string", "description": "500 错误的日志编号"},
        "details": {"type": "object", "description": "与错误代码相关的补充信息（如出错的位置）"},
    },
}

# the ceiling of `<int:...>` path values (shared.http.BoundedIntegerConverter): the
# largest id a 64-bit column (PostgreSQL bigint, SQLite INTEGER) holds
PATH_INT_MAX = 2**63 - 1

_RULE_PARAM = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
_CONVERTER_SCHEMAS = {
    "int": {"type": "integer", "minimum": 0, "maximum": PATH_INT_MAX}, "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"}, "path": {"type": "string"},
}


def api_doc(summary: str, *, request=None, response=None, query=None, path=None, tags=(),
            description: str | None = None, status: int = 200, also: tuple[int, ...] = (), errors=()):
    """Describe an HTTP entrypoint. `request`/`response`: a marshmallow Schema (class or
    instance, e.g. `Out(many=True)`) sent as JSON, or a raw OpenAPI content dict (for CSV,
    XLSX...). `query`: a Schema of query parameters. `path`: a Schema of the path
    parameters the entrypoint validates (their pattern, length...; 422 when they fail).
    `also`: other success statuses with the same response (an upsert's 200 beside its
    201). `errors`: extra statuses (404, 409)."""
    doc = dict(summary=summary, request=request, response=response, query=query, path=path,
               tags=list(tags), description=description, status=status, also=tuple(also),
               errors=tuple(errors))

    def decorate(fn):
        fn.__api_doc__ = doc  # copied onto @requires' wrapper by functools.wraps
        return fn

    return decorate


def upload_body(description: str) -> dict:
    """The request content of an endpoint that takes a CSV or XLSX file (shared.http.read_upload)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary", "description": description}}}},
            "text/csv": binary,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": binary}


def werkzeug_path(rule: str) -> tuple[str, list[dict]]:
    """`/x/<string:id>/<int:n>` -> (`/x/{id}/{n}`, OpenAPI path parameters)."""
    params = []

    def repl(match):
        conv, args, name = match.group("conv"), match.group("args"), match.group("name")
        schema = dict(_CONVERTER_SCHEMAS.get(conv or "string", {"type": "string"}))
        if conv == "any" and args:
            schema["enum"] = [a.strip().strip("'\"") for a in args.split(",")]
        elif conv == "int" and args:  # <int(min=2000, max=2100):year>
            bounds = dict(a.replace(" ", "").split("=", 1) for a in args.split(",") if "=" in a)
            schema.update({key: int(bounds[arg]) for arg, key in (("min", "minimum"), ("max", "maximum"))
                           if arg in bounds})
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
        return "{" + name + "}"

    return _RULE_PARAM.sub(repl, rule), params


def _is_schema(value) -> bool:
    return isinstance(value, Schema) or (isinstance(value, type) and issubclass(value, Schema))


def _schema_instance(value) -> Schema:
    return value() if isinstance(value, type) else value


def _content(value, media_type="application/json") -> dict:
    return {media_type: {"schema": value}} if _is_schema(value) else value


def _operation(method_name: str, fn, http_method: str, path_params: list[dict]) -> dict:
    doc = getattr(fn, "__api_doc__", None) or {}
    roles = getattr(fn, "__requires_roles__", None)
    summary = doc.get("summary") or (inspect.getdoc(fn) or method_name).splitlines()[0]
    op = {"operationId": f"{method_name}_{http_method.lower()}", "summary": summary}
    description = doc.get("description")
    if roles:
        allowed = "允许的角色：" + "、".join(ROLE_NAMES.get(r, r) for r in roles)
        description = f"{description}\n\n{allowed}" if description else allowed
        op["x-cqo-roles"] = list(roles)
    if description:
        op["description"] = description
    if doc.get("tags"):
        op["tags"] = doc["tags"]
    params = list(path_params)
    if doc.get("path") is not None:  # the schema's fields replace the converters' bare types
        documented = set(_schema_instance(doc["path"]).fields)
        params = [p for p in params if p["name"] not in documented]
        params.append({"in": "path", "schema": doc["path"]})
    if doc.get("query") is not None:
        params.append({"in": "query", "schema": doc["query"]})
    if params:
        op["parameters"] = params
    if doc.get("request") is not None:
        op["requestBody"] = {"required": True, "content": _content(doc["request"])}

    status = str(doc.get("status", 200))
    ok = {"description": "成功"}
    if doc.get("response") is not None:
        ok["content"] = _content(doc["response"])
    statuses = {"500"} | {str(s) for s in doc.get("errors", ())}
    if roles:
        statuses |= {"401", "403"}
    if doc.get("request") is not None:
        statuses |= {"400", "413", "415", "422"}
    if doc.get("query") is not None or doc.get("path") is not None:
        statuses.add("422")
    if doc.get("query") is not None:  # what else loading it may answer (shared.paging: 400)
        statuses |= {str(s) for s in getattr(doc["query"], "api_errors", ())}
    if path_params:
        statuses.add("404")
    responses = {status: ok, **{str(other): ok for other in doc.get("also", ())}}
    for code in sorted(statuses):
        name = _BY_STATUS.get(code)
        responses[code] = ({"$ref": f"#/components/responses/{name}"} if name else
                           {"description": "错误",
                            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    op["responses"] = responses
    op["security"] = [{"bearerAuth": []}] if roles else []  # [] = public endpoint
    return op


def iter_http_entrypoints(service_cls):
    """(method name, function, HttpRequestHandler) for every HTTP entrypoint, bases too."""
    for name, fn in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                yield name, fn, entrypoint


def build_spec(service_cls, *, title: str | None = None, version: str | None = None) -> APISpec:
    name = getattr(service_cls, "name", service_cls.__name__)
    spec = APISpec(
        title=title or getattr(service_cls, "api_title", None) or f"{name} 服务接口",
        version=version or getattr(service_cls, "api_version", None) or "1.0.0",
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": getattr(service_cls, "api_description", None)
              or "沧州市企业首席质量官备案管理系统"},
    )
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    for resp_name, (_, text) in ERROR_RESPONSES.items():
        spec.components.response(resp_name, {"description": text, "content": {
            PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}})

    paths: dict[str, dict] = {}
    for method_name, fn, entrypoint in sorted(iter_http_entrypoints(service_cls),
                                              key=lambda item: item[2].url):
        path, path_params = werkzeug_path(entrypoint.url)
        for http_method in entrypoint.method.split(","):
            http_method = http_method.strip().lower()
            paths.setdefault(path, {})[http_method] = _operation(
                method_name, fn, http_method, path_params)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec


@lru_cache(maxsize=None)
def spec_dict(service_cls) -> dict:
    """The document as a dict, built once per service class."""
    return build_spec(service_cls).to_dict()
