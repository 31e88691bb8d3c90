"""One configuration loader for every service: YAML + environment.

Placeholders follow nameko's style, `${VAR}` or `${VAR:default}`. A placeholder in a
plain scalar is typed after substitution (`${PORT:8001}` -> 8001); one in a quoted
scalar stays a string. Digit strings with a leading zero, and every key listed in
STRING_KEYS, always stay strings: county codes such as 130921 are identifiers, and
YAML 1.1 would read `010101` as an octal number.

Structured settings (a rule set, a user -> county map) come from one environment
variable: `structured()` reads JSON text, `@/path/to/file` (JSON or YAML), or a mapping
written in the YAML file itself. A value that cannot be used raises `SettingError`,
which names the setting, so a service refuses to start with a message that says which
setting to fix.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import yaml

ENV_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")
STRING_KEYS = frozenset({"COUNTY_CODE", "COUNTY", "SERVICE_NAME", "DATABASE_SCHEMA"})
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


log = logging.getLogger(__name__)
T = TypeVar("T")


class ConfigError(Exception):
    pass


class SettingError(ConfigError):
    """One setting has a value the service cannot use; the message (Chinese, then
    English) names it. Raised at start: the service does not start."""

    def __init__(self, key: str, problem_zh: str, problem_en: str):
        super().__init__(f"配置项 {key} 无效：{problem_zh}（invalid setting {key}: {problem_en}）")
        self.key = key


def invalid_setting(key: str, problem_zh: str, problem_en: str) -> SettingError:
    """The error to raise for a bad setting, logged once in English where it is found."""
    log.error("invalid setting %s: %s; the service will not start", key, problem_en)
    return SettingError(key, problem_zh, problem_en)


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


class _DataLoader(yaml.SafeLoader):
    """YAML of a settings file: plain data, leading-zero digits (county codes) as strings."""


_DataLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse_text(key: str, text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        json_error = exc
    if source == "text":
        raise invalid_setting(key, f"不是有效的 JSON（第{json_error.lineno}行第{json_error.colno}列）",
                              f"not valid JSON ({json_error.msg} at line {json_error.lineno} "
                              f"column {json_error.colno})")
    try:
        return yaml.load(text, Loader=_DataLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_zh = f"（第{mark.line + 1}行第{mark.column + 1}列）" if mark else ""
        where_en = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise invalid_setting(key, f"文件 {source} 不是有效的 JSON 或 YAML{where_zh}",
                              f"file {source} is neither valid JSON nor YAML{where_en}") from None


def structured(config: Mapping[str, Any], key: str, build: Callable[[Any], T] | None = None,
               *, default: Any = None) -> T | Any:
    """The structured setting `key` of `config`: JSON text, `@/path` to a JSON or YAML
    file, or a mapping/list written in the config file; empty -> `default`. `build`
    turns the data into its object and may raise ValueError/TypeError/KeyError, which
    become a SettingError naming `key` (args `(chinese, english)`, or one text for both)."""
    raw = config.get(key)
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raw = None
        elif text.startswith("@"):
            path = Path(text[1:])
            try:
                content = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise invalid_setting(key, f"无法读取文件 {path}（{reason}）",
                                      f"cannot read file {path} ({reason})") from None
            raw = _parse_text(key, content, str(path))
        else:
            raw = _parse_text(key, text, "text")
    elif raw is not None and not isinstance(raw, (dict, list)):
        raise invalid_setting(key, f"应为 JSON 对象、@文件路径或映射，而不是 {raw!r}",
                              f"expected JSON text, @/path/to/file or a mapping, not {raw!r}")
    if raw is None:
        raw = default
    if build is None:
        return raw
    try:
        return build(raw)
    except (ValueError, TypeError, KeyError) as exc:
        texts = [a for a in exc.args if isinstance(a, str)] or [str(exc)]
        raise invalid_setting(key, texts[0], texts[-1]) from None
