"""The registry's quick filing loader gives exactly what FilingMessageSchema.load gives:
the same data (keys in the same order) or the same ValidationError messages, on valid
filings and on random corruptions of them (hypothesis)."""
from __future__ import annotations

import copy
import functools
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from marshmallow import Schema, ValidationError, fields

from shared.contracts import FilingMessageSchema
from shared.contracts.fastload import FastLoader
from shared.personal_data import generate_city_keypair
from tests.support.factories import filing_message, uscc_for

COUNTY = "130921"
_schema = FilingMessageSchema()
_fast = FastLoader(_schema, (_schema._effective_date,))
_keys = generate_city_keypair()


@functools.lru_cache(maxsize=None)  # the same drawn case gives the same filing (ids and seals are random)
def _base(kind: str, person: int) -> dict:
    return filing_message(county=COUNTY, uscc=uscc_for(COUNTY, person), person=person,
                          hmac_key="test-hmac-key-0123456789abcdef", city_public_key=_keys.public_pem,
                          kind=kind)


def _outcome(load, raw):
    try:
        return "ok", _ordered(load(raw))
    except ValidationError as exc:
        return "error", exc.messages


def _ordered(value):
    """Values with their key order made visible (== on dicts ignores it)."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return (type(value).__name__, value)


_ANY = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10, max_value=10**20),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70),
                 st.sampled_from(["2026-02-30", "2026-01-05", "20260105", "proactive", "change", "end",
                                  "warning", "a" * 64, "A" * 64, "0" * 64, "130922", "130921", "1", "1.5"]),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
                 st.just([{"code": "X", "article": "6", "message": "m", "severity": "warning"}]))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def _corrupted(draw):
    raw = copy.deepcopy(_base(draw(st.sampled_from(["establishment", "change", "renewal", "update", "end"])),
                              draw(st.integers(min_value=1, max_value=40))))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = [p for p in _paths(raw) if p]
        path = draw(st.sampled_from(paths))
        parent = raw
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(_ANY))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "findings", "effective_on", "phone", "campaign_year"]))] = copy.deepcopy(draw(_ANY))
    return raw


@pytest.mark.parametrize("kind", ["establishment", "change", "renewal", "update", "end"])
def test_valid_filings_are_loaded_alike_and_quickly(kind, monkeypatch):
    raw = copy.deepcopy(_base(kind, 7))
    expected = _outcome(_schema.load, raw)
    assert expected[0] == "ok"
    # the plain case never reaches marshmallow
    monkeypatch.setattr(_fast, "schema", None)
    assert _outcome(_fast.load, raw) == expected


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_corrupted())
def test_random_filings_give_the_same_data_or_the_same_errors(raw):
    assert _outcome(_fast.load, copy.deepcopy(raw)) == _outcome(_schema.load, copy.deepcopy(raw))


def test_a_schema_it_cannot_reproduce_is_refused_when_the_loader_is_made():
    class WithPluck(Schema):
        when = fields.DateTime()

    with pytest.raises(TypeError):
        FastLoader(WithPluck())
    with pytest.raises(TypeError):  # a validates_schema hook not handed over
        FastLoader(_schema)


_TRICKY = [None, True, False, 0, 1, -1, 2**70, 1.0, 1.5, 80.5, float("nan"), float("inf"), "", "1", "1.5", "true",
           "2026-01-05", "2026-02-30", "20260105", "2026-01-05T00:00:00", "a" * 64, "0" * 64, "130921", "130922",
           "proactive", "change", "end", "warning", "d6a4d2ea-0000-4000-8000-000000000000", b"bytes", [], {},
           [{"code": "X", "article": "6", "message": "m", "severity": "warning"}],
           [{"code": "X", "article": "6", "message": "m", "severity": "fatal"}]]


@pytest.mark.parametrize("kind", ["establishment", "change"])
def test_every_field_given_every_tricky_value_or_left_out(kind):
    """Each place of a valid filing in turn: replaced by each tricky value, or deleted."""
    base = _base(kind, 3)
    for path in [p for p in _paths(base) if p]:
        for value in [*_TRICKY, "missing"]:
            raw = copy.deepcopy(base)
            parent = raw
            for step in path[:-1]:
                parent = parent[step]
            if value == "missing":
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
            assert _outcome(_fast.load, copy.deepcopy(raw)) == _outcome(_schema.load, copy.deepcopy(raw)), (path, value)
