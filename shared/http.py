"""HTTP plumbing for nameko services: problem+json errors (RFC 9457), JSON in/out.

Use `http` from here, never `nameko.web.handlers.http`: ours answers every error, the
router's 404/405 included, as application/problem+json with a stable `code` and a Chinese
`title`. Do not mix both in one service: each brings its own WebServer, and eventlet's
SO_REUSEPORT lets the two bind the same port silently.

    from nameko.dependency_providers import Config
    from shared.auth import requires
    from shared.http import HttpBase, http, json_response, load_json
    from shared.openapi import api_doc

    class FilingService(HttpBase):
        name = "filing_130921"
        config = Config()              # @requires reads AUTH_SECRET from it

        @http("POST", "/api/v1/filings")
        @requires("enterprise")
        @api_doc("提交备案", request=FilingIn, response=FilingOut, status=201, tags=["备案"])
        def create_filing(self, request):
            data = load_json(request, FilingIn)   # 400/413/422 problems on bad input
            return json_response(use_cases.create(request.principal, data), status=201)
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from functools import partial
from urllib.parse import quote

from eventlet.event import Event
from marshmallow import Schema, ValidationError
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect
from werkzeug.routing.converters import IntegerConverter
from werkzeug.wrappers import Request, Response

from shared.auth import requires
from shared.errors import CqoError, ValidationFailed
from shared.health import HealthProbe, health_body
from shared.logs import LogContext
from shared.jsontext import json_default
from shared.metrics import ServiceMetrics, observe_request
from shared.openapi import PATH_INT_MAX, api_doc, spec_dict

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
PROBLEM_TYPE = "application/problem+json; charset=utf-8"
DEFAULT_MAX_BYTES = 1_000_000

# Titles are per kind of problem (RFC 9457 3.1.3); `detail` carries the specific message.
TITLES = {
    "AUTH_MISSING": "未提供身份认证令牌",
    "AUTH_INVALID": "身份认证令牌无效",
    "AUTH_EXPIRED": "身份认证令牌已过期",
    "AUTH_FORBIDDEN": "无权执行此操作",
    "VALIDATION_FAILED": "提交的数据未通过校验",
    "NOT_FOUND": "未找到请求的资源",
    "METHOD_NOT_ALLOWED": "不支持该请求方法",
    "CONFLICT": "与现有数据冲突",
    "PAGE_SIZE_CONFLICT": "每页条数参数相互矛盾",
    "BAD_JSON": "请求体不是有效的 JSON",
    "PAYLOAD_TOO_LARGE": "请求体过大",
    "UNSUPPORTED_MEDIA_TYPE": "不支持的请求内容类型",
    "INTERNAL_ERROR": "服务器内部错误",
}
STATUS_CODES = {  # code for a bare status (werkzeug exceptions, CqoError subclasses)
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 408: "REQUEST_TIMEOUT",
    409: "CONFLICT", 411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_FAILED",
    429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
}
STATUS_TITLES = {
    400: "请求有误", 401: "身份认证失败", 403: "无权执行此操作", 404: "未找到请求的资源",
    405: "不支持该请求方法", 406: "无法提供请求的响应格式", 408: "请求超时",
    409: "与现有数据冲突", 411: "缺少 Content-Length 请求头", 413: "请求体过大",
    414: "请求地址过长", 415: "不支持的请求内容类型", 422: "提交的数据未通过校验",
    429: "请求过于频繁", 500: "服务器内部错误", 501: "功能尚未实现", 503: "服务暂不可用",
}
INTERNAL_DETAIL = "服务器处理请求时发生错误，请稍后重试；如持续出现，请联系管理员并提供 error_id。"


def _title(code: str, status: int) -> str:
    return TITLES.get(code) or STATUS_TITLES.get(status) or "请求处理失败"


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, default=json_default)


def json_response(data, status: int = 200, headers=None) -> Response:
    return Response(_dumps(data), status=status, headers=headers, content_type=JSON_TYPE)


def problem_response(status: int, code: str, *, detail: str | None = None,
                     title: str | None = None, instance: str | None = None,
                     errors: dict | None = None, headers=None, **extra) -> Response:
    body = {
        "type": "urn:cqo:problem:" + code.lower().replace("_", "-"),
        "title": title or _title(code, status),
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(_dumps(body), status=status, headers=headers, content_type=PROBLEM_TYPE)


# --- marshmallow messages -> Chinese -------------------------------------------------
# A safety net for schemas that keep marshmallow's English defaults; schemas with their
# own Chinese messages pass through untouched.
_MESSAGES = {
    "Missing data for required field.": "必填字段缺失",
    "Field may not be null.": "字段不能为空",
    "Invalid value.": "取值无效",
    "Invalid input.": "输入无效",
    "Invalid input type.": "输入类型无效，应为 JSON 对象",
    "Invalid type.": "类型无效",
    "Unknown field.": "未知字段",
    "Not a valid string.": "不是有效的字符串",
    "Not a valid utf-8 string.": "不是有效的 UTF-8 字符串",
    "Not a valid integer.": "不是有效的整数",
    "Not a valid number.": "不是有效的数字",
    "Number too large.": "数字过大",
    "Special numeric values (nan or infinity) are not permitted.": "不允许 NaN 或无穷大",
    "Not a valid boolean.": "不是有效的布尔值",
    "Not a valid date.": "不是有效的日期（应为 YYYY-MM-DD）",
    "Not a valid datetime.": "不是有效的日期时间（应为 ISO 8601 格式）",
    "Not a valid time.": "不是有效的时间",
    "Not a valid email address.": "不是有效的电子邮箱地址",
    "Not a valid UUID.": "不是有效的 UUID",
    "Not a valid list.": "不是有效的列表",
    "Not a valid mapping type.": "不是有效的对象",
    "Not a valid tuple.": "不是有效的元组",
    "Not a valid URL.": "不是有效的网址",
    "String does not match expected pattern.": "格式不正确",
}
_PATTERNS = [
    (re.compile(r"^Must be one of: (.*)\.$"), "取值必须为以下之一：{0}"),
    (re.compile(r"^Length must be between (\S+) and (\S+)\.$"), "长度必须在 {0} 到 {1} 之间"),
    (re.compile(r"^Length must be (\S+)\.$"), "长度必须为 {0}"),
    (re.compile(r"^Longer than maximum length (\S+)\.$"), "长度不能超过 {0}"),
    (re.compile(r"^Shorter than minimum length (\S+)\.$"), "长度不能少于 {0}"),
    (re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
     "必须在 {0} 到 {1} 之间"),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), "必须大于或等于 {0}"),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), "必须小于或等于 {0}"),
    (re.compile(r"^Must be greater than (\S+)\.$"), "必须大于 {0}"),
    (re.compile(r"^Must be less than (\S+)\.$"), "必须小于 {0}"),
    (re.compile(r"^Must be equal to (.*)\.$"), "必须等于 {0}"),
]


def translate(message: str) -> str:
    if message in _MESSAGES:
        return _MESSAGES[message]
    for pattern, template in _PATTERNS:
        match = pattern.match(message)
        if match:
            return template.format(*match.groups())
    return message


def field_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages to {"a.b.0.c": ["中文消息", ...]}."""
    out: dict[str, list[str]] = {}
    key = prefix or "_schema"
    if isinstance(messages, str):
        out.setdefault(key, []).append(translate(messages))
    elif isinstance(messages, dict):
        for name, value in messages.items():
            if name == "_schema":  # errors of the object itself
                path = prefix or "_schema"
            else:
                path = f"{prefix}.{name}" if prefix else str(name)
            for k, v in field_errors(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            for k, v in field_errors(item, prefix).items():
                out.setdefault(k, []).extend(v)
    return out


def problem_from_exception(exc: BaseException, instance: str | None = None) -> Response:
    if isinstance(exc, ValidationError):
        errors = field_errors(exc.messages)
        return problem_response(422, "VALIDATION_FAILED", instance=instance, errors=errors,
                                detail="请检查以下字段：" + "、".join(errors))
    if isinstance(exc, CqoError):
        status = int(exc.status or 400)
        details = dict(exc.details or {})
        errors = details.pop("errors", None)
        if errors is not None:
            errors = field_errors(errors)
        elif exc.field:
            errors = {exc.field: [exc.message]}
        if status >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        return problem_response(status, exc.code, detail=exc.message, instance=instance,
                                errors=errors, details=details or None)
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        headers = {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return problem_response(exc.code, STATUS_CODES.get(exc.code, f"HTTP_{exc.code}"),
                                instance=instance, headers=headers)
    # Anything else is our fault: log it fully, tell the client nothing about it.
    error_id = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s", error_id, instance, exc_info=exc)
    return problem_response(500, "INTERNAL_ERROR", detail=INTERNAL_DETAIL,
                            instance=instance, error_id=error_id)


# --- request bodies -------------------------------------------------------------------
def _too_large(max_bytes: int) -> CqoError:
    return CqoError(f"请求体不能超过 {max_bytes} 字节", code="PAYLOAD_TOO_LARGE", status=413)


def _bad_json(message: str) -> CqoError:
    return CqoError(message, code="BAD_JSON", status=400)


def read_body(request: Request, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    length = request.content_length
    if length is not None:
        if length > max_bytes:  # refuse before reading; eventlet drains the rest
            raise _too_large(max_bytes)
        return request.get_data(cache=True)
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # eventlet does not set wsgi.input_terminated, so Werkzeug 3 would hand us an
        # empty stream for a chunked body: read eventlet's de-chunking input, bounded.
        data = request.environ["wsgi.input"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return data
    return b""


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


def attachment(filename: str) -> str:
    """Content-Disposition of a download: an ASCII fallback for old clients and the UTF-8
    name (RFC 6266); a name without ASCII letters falls back to "attachment"."""
    fallback = filename.encode("ascii", "ignore").decode().strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


# the declared types of a raw body taken as an uploaded CSV or XLSX file
UPLOAD_TYPES = frozenset({"", "text/csv", "application/csv", "text/plain", "text/tab-separated-values",
                          "application/vnd.ms-excel", XLSX_TYPE, "application/octet-stream"})


def read_upload(request: Request, max_bytes: int, *, what: str, missing_code: str) -> tuple[bytes, str, str]:
    """(content, file name, declared content type) of an uploaded CSV or XLSX file: the
    form field `file` of a multipart body, or the raw body (its name in ?filename=).
    `what` names the file in the Chinese message when the form has none."""
    mimetype = (request.mimetype or "").lower()
    body = read_body(request, max_bytes)
    if mimetype == "multipart/form-data":
        files = request.files
        upload = files.get("file") or next(iter(files.values()), None)
        if upload is None:
            raise CqoError(f"请以表单字段 file 上传{what}（CSV 或 XLSX）", code=missing_code, status=400)
        return upload.read(), upload.filename or "upload", (upload.mimetype or "").lower()
    if mimetype not in UPLOAD_TYPES:
        raise CqoError("请上传 CSV 或 XLSX 文件（multipart/form-data，或请求体直接为文件内容，"
                       "Content-Type 为 text/csv 或 XLSX 的类型）", code="UNSUPPORTED_MEDIA_TYPE", status=415)
    return body, request.args.get("filename") or "upload", mimetype


def _reject_constant(name):
    raise ValueError(name)


def read_json(request: Request, max_bytes: int = DEFAULT_MAX_BYTES, *,
              allow_empty: bool = False):
    """The parsed JSON body; 413 PAYLOAD_TOO_LARGE, 400 BAD_JSON, 415 on a form post,
    422 for text no database can store (NUL characters, lone surrogates)."""
    mimetype = request.mimetype or ""
    raw = read_body(request, max_bytes)
    if not raw.strip() and allow_empty:
        return None  # eventlet gives a body-less POST the type text/plain
    if mimetype and not (mimetype == "application/json" or mimetype.endswith("+json")):
        raise CqoError("请求内容类型应为 application/json", code="UNSUPPORTED_MEDIA_TYPE",
                       status=415)
    if not raw.strip():
        raise _bad_json("请求体为空，应为 JSON 对象")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad_json("请求体不是有效的 UTF-8 编码") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _bad_json(f"请求体不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）") from None
    except ValueError:
        raise _bad_json("请求体不是有效的 JSON（不允许 NaN 或 Infinity）") from None
    _refuse_unstorable(data)
    return data


def _refuse_unstorable(data) -> None:
    """422 for text no database can store (PostgreSQL refuses NUL, UTF-8 lone surrogates),
    before it reaches a query as a filter or a row."""
    bad = [path for path, value in _strings(data, "") if _UNSTORABLE.search(value)]
    if bad:
        raise ValidationFailed("提交的内容含有无法保存的字符（空字符或无效的 Unicode 代理项）",
                               code="VALIDATION_FAILED",
                               details={"errors": {p or "_schema": ["含有无法保存的字符"] for p in bad}})


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _strings(value, path: str):
    """(path, text) of every string in a parsed JSON document, keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, key
            yield from _strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}" if path else str(index))


def load(schema, data, **kwargs):
    """schema.load(data); a marshmallow ValidationError becomes a 422 problem upstream."""
    if isinstance(schema, type) and issubclass(schema, Schema):
        schema = schema()
    return schema.load(data, **kwargs)


def load_json(request: Request, schema, max_bytes: int = DEFAULT_MAX_BYTES, **kwargs):
    return load(schema, read_json(request, max_bytes), **kwargs)


def load_query(request: Request, schema, **kwargs):
    """Query-string parameters through a schema (single values; lists stay lists)."""
    args = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
    _refuse_unstorable(args)
    return load(schema, args, **kwargs)


# --- the web server and the entrypoint --------------------------------------------------
def _match(adapter):
    """adapter.match(), but a 405 only when the path matches a route of another method.
    Werkzeug compares methods before it converts the path: with GET and POST as two
    routes of one path, an id the converter refuses (beyond 64 bits) came back as 405
    from the route of the other method instead of 404."""
    try:
        return adapter.match()
    except MethodNotAllowed as refused:
        for method in refused.valid_methods or ():
            try:
                adapter.match(method=method)
            except HTTPException:
                continue
            raise
        raise NotFound() from None


class ProblemWsgiApp(WsgiApp):
    """nameko's WsgiApp, but routing errors (404/405/...) come back as problem+json."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        route = None  # the route's template for the latency histogram, never the path
        try:
            provider, values = _match(adapter)
            route = provider.url
            request.path_values = values
            response = provider.handle_request(request)
        except RequestRedirect as redirect:  # a real redirect (e.g. merged slashes)
            response = redirect
        except Exception as exc:
            response = problem_from_exception(exc, instance=request.path)
        observe_request(self.server.container.service_name, request.method, route,
                        response.status_code if isinstance(response, Response) else response.code,
                        time.perf_counter() - started)
        return response(environ, start_response)


class _ClientErrorTracebacks(logging.Filter):
    """nameko logs every "expected" worker exception with its traceback; for 4xx client
    errors (a bad token, a failed schema) the one-line message is enough."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno == logging.WARNING and _is_client_error(exc):
            record.exc_info, record.exc_text = None, None
        return True


def _is_client_error(exc) -> bool:
    if isinstance(exc, ValidationError):
        return True
    if isinstance(exc, CqoError):
        return int(exc.status or 400) < 500
    return isinstance(exc, HTTPException) and (exc.code or 500) < 500


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` with a ceiling: an id beyond what the databases store (64-bit) matches
    no route (404) instead of reaching a query (500). `<int(max=...):...>` narrows it."""

    def __init__(self, map, fixed_digits=0, min=None, max=PATH_INT_MAX, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min,
                         max=PATH_INT_MAX if max is None else max, signed=signed)


class ProblemWebServer(WebServer):
    def make_url_map(self):
        # nameko's, with the bounded `int` converter (converters bind when a rule is added)
        url_map = Map(converters={"int": BoundedIntegerConverter})
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def setup(self):
        super().setup()
        containers_log = logging.getLogger("nameko.containers")
        if not any(isinstance(f, _ClientErrorTracebacks) for f in containers_log.filters):
            containers_log.addFilter(_ClientErrorTracebacks())

    def get_wsgi_app(self):
        return ProblemWsgiApp(self)


EXPECTED_EXCEPTIONS = (CqoError, ValidationError, HTTPException)


class HttpEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint with problem+json errors and JSON results.

    A method may return a werkzeug Response, a dict/list (JSON 200), (status, dict),
    or nameko's (status[, headers], str) forms.
    """

    server = ProblemWebServer()

    def __init__(self, method, url, *, expected_exceptions=EXPECTED_EXCEPTIONS, **kwargs):
        # client errors are "expected": nameko logs them as warnings, not as crashes
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)
        self._accepted_shapes: set[tuple[int, frozenset]] = set()

    def check_signature(self, args, kwargs):
        # whether the method accepts the call depends only on how many positional
        # arguments and which keywords (the route's variables) it gets: nameko checks
        # with inspect on every request; once per shape is enough
        shape = (len(args), frozenset(kwargs))
        if shape not in self._accepted_shapes:
            super().check_signature(args, kwargs)
            self._accepted_shapes.add(shape)

    def handle_request(self, request):
        # nameko's handle_request, but the request reaches response_from_exception
        # so problems carry `instance`.
        request.shallow = False
        try:
            context_data = self.server.context_data_from_headers(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data=context_data,
                handle_result=partial(self.handle_result, event))
            return self.response_from_result(event.wait())
        except Exception as exc:
            return self.response_from_exception(exc, request)

    def response_from_result(self, result):
        if isinstance(result, (dict, list)):
            return json_response(result)
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (dict, list)):
            return json_response(result[1], status=result[0])
        return super().response_from_result(result)

    def response_from_exception(self, exc, request=None):
        return problem_from_exception(exc, instance=request.path if request else None)


http = HttpEntrypoint.decorator


METRICS_ROLES = ("admin",)  # who may scrape /metrics (docs/observability.md)


class HttpBase:
    """Mix-in: `GET /api/v1/health` and `GET /api/v1/openapi.json`, both without a token,
    and `GET /metrics` (Prometheus text format) with an admin token.

    The entrypoints are attached to each concrete subclass (one with a `name`), not to
    HttpBase itself: `nameko run some.module` treats every class in the module that has
    entrypoints as a service, so an imported HttpBase carrying them would be refused
    ("Service class must define a `name` attribute"). A service may define either
    method itself, with its own @http, to replace it.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "name", None) is None:
            return  # an abstract intermediate base: same reason as above

        def health_check(self, request):
            """服务健康检查（无需令牌）：数据库与消息队列均可用时返回 200，否则 503"""
            body, status = health_body(self.health.checks(), service=self.name)
            return json_response(body, status=status)

        def openapi_document(self, request):
            """本服务的 OpenAPI 3 接口文档（无需令牌）"""
            return json_response(spec_dict(type(self)))

        def prometheus_metrics(self, request):
            """Prometheus 指标（文本格式，需系统管理员令牌）"""
            body, content_type = self.service_metrics.exposition()
            return Response(body, status=200, content_type=content_type)

        prometheus_metrics = api_doc(
            "Prometheus 指标", tags=["运维"],
            description="Prometheus 文本格式的指标：请求耗时、消息处理、发件箱积压、队列积压、死信、"
                        "Shovel 状态等，详见 docs/observability.md。",
            response={"text/plain": {"schema": {"type": "string"}}})(
            requires(*METRICS_ROLES)(prometheus_metrics))
        if not isinstance(getattr(cls, "health", None), HealthProbe):
            cls.health = HealthProbe()  # the dependency health_check reads
        if not isinstance(getattr(cls, "service_metrics", None), ServiceMetrics):
            cls.service_metrics = ServiceMetrics()  # the dependency prometheus_metrics reads
        if not isinstance(getattr(cls, "log_context", None), LogContext):
            cls.log_context = LogContext()  # correlation ids on every log line of a worker
        for fn, url in ((health_check, "/api/v1/health"),
                        (openapi_document, "/api/v1/openapi.json"),
                        (prometheus_metrics, "/metrics")):
            if not getattr(getattr(cls, fn.__name__, None), ENTRYPOINT_EXTENSIONS_ATTR, None):
                fn.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
                setattr(cls, fn.__name__, http("GET", url)(fn))
