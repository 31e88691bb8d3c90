"""What every service module offers `cqo serve`: its default config and a class builder."""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from shared import config as config_loader

SERVICE_MODULES = {
    "registry": "services.registry.service",
    "filing": "services.filing.service",
    "talent": "services.talent.service",
    "notify": "services.notify.service",
}


def service_module(kind: str) -> ModuleType:
    try:
        return importlib.import_module(SERVICE_MODULES[kind])
    except KeyError:
        raise ValueError(f"未知服务“{kind}”，可选：{'、'.join(SERVICE_MODULES)}") from None


def default_config_path(kind: str) -> Path:
    return Path(importlib.import_module(f"services.{kind}").__file__).parent / "config.yaml"


def load_service_config(kind: str, path: str | Path | None = None, *,
                        environ=None, overrides: dict | None = None) -> dict:
    return config_loader.load(path or default_config_path(kind), environ,
                              overrides={k: v for k, v in (overrides or {}).items() if v is not None})
