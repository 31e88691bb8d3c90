"""One configuration loader for every service: YAML + environment.

Placeholders follow nameko's style, `${VAR}` or `${VAR:default}`. A placeholder in a
plain scalar is typed after substitution (`${PORT:8001}` -> 8001); one in a quoted
scalar stays a string. Digit strings with a leading zero, and every key listed in
STRING_KEYS, always stay strings: county codes such as 130921 are identifiers, and
YAML 1.1 would read `010101` as an octal number.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

ENV_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")
STRING_KEYS = frozenset({"COUNTY_CODE", "COUNTY", "SERVICE_NAME", "DATABASE_SCHEMA"})
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


class ConfigError(Exception):
    pass


def substitute(text: str, environ: Mapping[str, str]) -> str:
    def repl(match: re.Match) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is required by the configuration")
        return default

    return ENV_VAR.sub(repl, text)


def coerce_scalar(value: str) -> Any:
    """Type a substituted plain scalar conservatively (no octal, no sexagesimal)."""
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None if lowered != "" else ""
    if _INT.match(value.strip()):
        return int(value)
    if _FLOAT.match(value.strip()):
        return float(value)
    return value


class _Loader(yaml.SafeLoader):
    """SafeLoader that expands ${VAR:default} and never turns leading-zero digits into octal."""


def _make_constructor(environ: Mapping[str, str]):
    def construct_plain(loader: _Loader, node: yaml.ScalarNode):
        return coerce_scalar(substitute(node.value, environ))

    return construct_plain


def _construct_quoted_or_str(environ):
    def construct(loader: _Loader, node: yaml.ScalarNode):
        return substitute(node.value, environ)

    return construct


def loads(text: str, environ: Mapping[str, str] | None = None) -> dict:
    environ = os.environ if environ is None else environ

    class Loader(_Loader):
        pass

    # plain scalars holding a placeholder are matched by an implicit resolver; quoted
    # scalars never are, so they reach the str constructor and stay strings.
    Loader.add_implicit_resolver("!env_var", ENV_VAR, None)
    Loader.add_constructor("!env_var", _make_constructor(environ))
    Loader.add_constructor("tag:yaml.org,2002:str", _construct_quoted_or_str(environ))
    # YAML 1.1 ints: keep leading-zero digit strings as strings
    Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    data = yaml.load(text, Loader=Loader) or {}
    if not isinstance(data, dict):
        raise ConfigError("configuration must be a mapping at the top level")
    return normalise(data)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    raw = node.value
    if re.fullmatch(r"0[0-9]+", raw):
        return raw
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def normalise(data: dict) -> dict:
    for key in list(data):
        if key in STRING_KEYS and data[key] is not None:
            data[key] = str(data[key])
        elif isinstance(data[key], dict):
            normalise(data[key])
    return data


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> dict:
    """Load a YAML file (or nothing) and apply overrides last."""
    text = Path(path).read_text(encoding="utf-8") if path else ""
    config = loads(text, environ)
    if overrides:
        config.update(overrides)
    return normalise(config)
