"""Every number a client sends is bounded, and the OpenAPI document says so (issue 8,
defects 9 and 11): path, query and request-body integers of every service."""
import pytest

from services.filing.service import build_service as build_filing
from services.notify.service import build_service as build_notify
from services.registry.service import RegistryService
from services.talent.service import build_service as build_talent
from shared.openapi import spec_dict

SERVICES = {"registry": lambda: RegistryService,
            "filing": lambda: build_filing({"COUNTY_CODE": "130921"}),
            "talent": lambda: build_talent({}), "notify": lambda: build_notify({})}


def _inputs(document: dict):
    """(where, schema) of every parameter and request body of the document."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                yield f"{method.upper()} {path} {param['in']} {param['name']}", param["schema"]
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{method.upper()} {path} body {media}", content["schema"]


def _numbers(document: dict, where: str, schema: dict, seen=()):
    """(where, schema) of every number in `schema`, $refs followed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        yield from _numbers(document, where, document["components"]["schemas"][name], (*seen, name))
        return
    if schema.get("type") in ("integer", "number"):
        yield where, schema
    for name, prop in schema.get("properties", {}).items():
        yield from _numbers(document, f"{where}.{name}", prop, seen)
    if isinstance(schema.get("items"), dict):
        yield from _numbers(document, f"{where}[]", schema["items"], seen)


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_number_a_client_sends_is_bounded_in_the_document(service):
    document = spec_dict(SERVICES[service]())
    numbers = [(where, schema) for place, schema in _inputs(document)
               for where, schema in _numbers(document, place, schema)]
    unbounded = [where for where, schema in numbers
                 if "minimum" not in schema or "maximum" not in schema]
    assert not unbounded
    too_large = [where for where, schema in numbers if schema["maximum"] > 2**63 - 1]
    assert not too_large
    if service in ("registry", "filing"):
        assert numbers  # pages, years, ids: the walk found them


@pytest.mark.parametrize("path, method, expected", [
    ("/c/9223372036854775808/a", "GET", "NotFound"), ("/c/9223372036854775808/a", "POST", "NotFound"),
    ("/c/9223372036854775808/a/import", "POST", "NotFound"), ("/c/5/a/import", "GET", "MethodNotAllowed"),
    ("/c/5/a", "PUT", "MethodNotAllowed"), ("/c/5/a", "POST", "p")])
def test_an_id_beyond_64_bits_is_404_whichever_routes_share_its_path(path, method, expected):
    """GET and POST as two routes of one path: werkzeug compares the method before it
    converts the id, so an unconvertible id came back 405 from the other route."""
    from werkzeug.routing import Map, Rule

    from shared.http import BoundedIntegerConverter, _match

    url_map = Map([Rule("/c/<int:i>/a", methods=["GET"], endpoint="g"),
                   Rule("/c/<int:i>/a", methods=["POST"], endpoint="p"),
                   Rule("/c/<int:i>/a/import", methods=["POST"], endpoint="i")],
                  converters={"int": BoundedIntegerConverter})
    try:
        found = _match(url_map.bind("cqo", path_info=path, default_method=method))[0]
    except Exception as exc:  # noqa: BLE001 - the routing error is the answer
        found = type(exc).__name__
    assert found == expected
