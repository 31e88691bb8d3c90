"""A quicker `Schema.load` for the common case, never a different answer.

The registry loads every forwarded filing with `FilingMessageSchema`; marshmallow's
per-field machinery cost about half of the intake's CPU. `FastLoader(schema)` walks the
schema's own fields with plain type tests and runs the fields' own validators: when the
input is of the plain shape a county sends (exact JSON types, no unknown keys, nothing
that would need coercion) it returns what `schema.load` returns, keys in the same order.
Anything else (an error, a value marshmallow would coerce, a type it does not know) makes
it hand the input to `schema.load`, so every refusal and its messages still come from
marshmallow (tests/unit/test_fastload.py compares both on random inputs).
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any, Callable

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.utils import missing


class _Defer(Exception):
    """Not the plain case: `schema.load` decides."""


def _string(value):
    if type(value) is not str:
        raise _Defer
    return value


def _integer(value):
    if type(value) is not int:  # bool is not int here; "1" and 1.0 are marshmallow's to coerce
        raise _Defer
    return value


def _float(value):
    if type(value) is float:
        if not math.isfinite(value):
            raise _Defer
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # marshmallow's "Number too large."
            raise _Defer from None
    raise _Defer


def _boolean(value):
    if type(value) is not bool:
        raise _Defer
    return value


def _date(value):
    if type(value) is not str:
        raise _Defer
    try:
        return dt.date.fromisoformat(value)  # what fields.Date does with format "iso"
    except ValueError:
        raise _Defer from None


def _uuid(value):
    if type(value) is not str:
        raise _Defer
    try:
        return uuid.UUID(value)  # what fields.UUID does with a string
    except ValueError:
        raise _Defer from None


_PLAIN = {fields.String: _string, fields.Integer: _integer, fields.Float: _float, fields.Boolean: _boolean,
          fields.Date: _date, fields.UUID: _uuid}


def _field_plan(field: fields.Field) -> Callable[[Any], Any]:
    """The converter of one field, its validators included; TypeError for a field this
    module does not reproduce (found when the loader is made, not per message)."""
    if field.pre_load or field.post_load or field.data_key is not None or field.attribute is not None:
        raise TypeError(f"field {field.name!r}: processors or renaming not reproduced")
    kind = type(field)
    if kind in _PLAIN:
        if kind is fields.Integer and field.strict:
            raise TypeError("strict Integer not reproduced")
        if kind is fields.Date and field.format not in (None, "iso", "iso8601"):
            raise TypeError("Date with a format not reproduced")
        convert = _PLAIN[kind]
    elif kind is fields.Nested and not field.many and not field.only and not field.exclude:
        convert = _schema_plan(field.schema)
    elif kind is fields.List and type(field.inner) is fields.Nested and not field.inner.many:
        item = _field_plan(field.inner)

        def convert(value, item=item):
            if type(value) is not list:
                raise _Defer
            return [item(v) for v in value]
    else:
        raise TypeError(f"field {field.name!r} ({kind.__name__}) not reproduced")
    validators = tuple(field.validators)
    if not validators:
        return convert

    def checked(value, convert=convert, validators=validators):
        value = convert(value)
        try:
            for validator in validators:
                validator(value)
        except ValidationError:
            raise _Defer from None
        return value
    return checked


def _schema_plan(schema: Schema) -> Callable[[Any], dict]:
    """A nested schema without hooks: its fields in order, unknown keys refused."""
    if any(schema._hooks.values()):
        raise TypeError(f"{type(schema).__name__}: hooks not reproduced")
    return _Fields(schema)


class _Fields:
    def __init__(self, schema: Schema):
        if schema.unknown != RAISE or schema.partial or schema.many:
            raise TypeError(f"{type(schema).__name__}: only unknown=RAISE, not partial, not many")
        # (name, converter, required, allow_none, load_default)
        self.plan = [(name, _field_plan(f), f.required, f.allow_none, f.load_default)
                     for name, f in schema.load_fields.items()]
        self.names = frozenset(name for name, *_ in self.plan)

    def __call__(self, value) -> dict:
        if type(value) is not dict or not self.names.issuperset(value):
            raise _Defer
        out = {}
        for name, convert, required, allow_none, default in self.plan:
            raw = value.get(name, missing)
            if raw is missing:
                if required:
                    raise _Defer
                if default is not missing:
                    out[name] = default() if callable(default) else default
            elif raw is None:
                if not allow_none:
                    raise _Defer
                out[name] = None
            else:
                out[name] = convert(raw)
        return out


class FastLoader:
    """`load(raw)`: the same result as `schema.load(raw)`, or its ValidationError.
    `schema_checks` are the schema's own `validates_schema` methods (called with the
    loaded data, as marshmallow does when no field failed); no other hook is allowed."""

    def __init__(self, schema: Schema, schema_checks: tuple[Callable[..., None], ...] = ()):
        hooks = {key: value for key, value in schema._hooks.items() if value}
        named = {getattr(check, "__name__", "") for check in schema_checks}
        if set(hooks) - {"validates_schema"} or \
                {attr for attr, *_ in hooks.get("validates_schema", [])} != named:
            raise TypeError(f"{type(schema).__name__}: its hooks are not all given as schema_checks")
        self.schema, self.checks = schema, schema_checks
        self.fields = _Fields(schema)

    def load(self, raw) -> dict:
        try:
            data = self.fields(raw)
            for check in self.checks:
                check(data, partial=None, many=False, unknown=RAISE)
        except (_Defer, ValidationError):
            return self.schema.load(raw)
        return data
