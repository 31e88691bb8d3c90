"""The list of fields of expertise, kept as data: GB/T 4754-2017 sections ("A".."T") and
divisions ("01".."97") by default; a deployment may name another CSV (EXPERTISE_CSV,
columns code,name,level,section)."""
from __future__ import annotations

import functools
from pathlib import Path

from services.talent.domain.pool import Expertise

DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "expertise_gbt4754_2017.csv"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Expertise:
    return Expertise.from_csv_text(Path(path).read_text(encoding="utf-8-sig"))


def catalogue(config=None) -> Expertise:
    return _load(str((config or {}).get("EXPERTISE_CSV") or DEFAULT_CSV))
