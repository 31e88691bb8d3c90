"""The list of fields of expertise, kept as data: GB/T 4754-2017 sections ("A".."T") and
divisions ("01".."97") by default; a deployment may name another CSV (EXPERTISE_CSV,
columns code,name,level,section)."""
from __future__ import annotations

from pathlib import Path

from services.talent.domain.expertise import DEFAULT_LIST, Catalogue
from services.talent.domain.expertise import catalogue as load


def catalogue(config=None) -> Catalogue:
    return load(Path((config or {}).get("EXPERTISE_CSV") or DEFAULT_LIST))
