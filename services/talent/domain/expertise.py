"""Fields of expertise of city-level experts: the national industry classification
GB/T 4754-2017, sections (A–T) and their divisions (01–97), kept as data
(services/talent/data/expertise_gbt4754_2017.csv)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from shared.errors import ValidationFailed

DEFAULT_LIST = Path(__file__).resolve().parents[1] / "data" / "expertise_gbt4754_2017.csv"


@dataclass(frozen=True)
class Field:
    code: str
    name: str
    level: str             # section | division
    section: str | None    # a division's section


class Catalogue:
    """The fields an expert may be designated in and a draw may ask for."""

    def __init__(self, fields: Iterable[Field]):
        self.fields = {f.code: f for f in fields}  # in the list's order
        self.divisions: dict[str, frozenset[str]] = {}
        for f in self.fields.values():
            if f.level == "division" and f.section:
                self.divisions[f.section] = self.divisions.get(f.section, frozenset()) | {f.code}

    @classmethod
    def from_csv(cls, path: Path) -> "Catalogue":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return cls(Field(row["code"].strip(), row["name"].strip(), row["level"].strip(),
                             row["section"].strip() or None) for row in csv.DictReader(handle))

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self.fields)

    def __contains__(self, code: str) -> bool:
        return code in self.fields

    def __iter__(self):
        return iter(self.fields.values())

    def check(self, codes: Iterable[str]) -> list[str]:
        """An expert's codes, deduplicated and in the list's order; an unknown one is
        refused with its own code (EXPERTISE_UNKNOWN)."""
        wanted = [str(c).strip().upper() for c in codes]
        unknown = sorted({c for c in wanted if c not in self.fields})
        if unknown:
            raise ValidationFailed(f"专业领域代码不在领域目录（GB/T 4754）中：{'、'.join(unknown)}",
                                   code="EXPERTISE_UNKNOWN", field="expertise",
                                   details={"unknown": unknown})
        if not wanted:
            raise ValidationFailed("至少指定一个专业领域", code="EXPERTISE_MISSING", field="expertise")
        chosen = set(wanted)
        return [code for code in self.fields if code in chosen]

    def name(self, code: str) -> str | None:
        field = self.fields.get(code)
        return field.name if field else None

    def expand(self, codes: Iterable[str]) -> frozenset[str]:
        """A section stands for itself and all its divisions ("C" matches an expert in
        "13"…"43"); a division for itself. Unknown codes are kept, for the draw's check
        to name them."""
        out: set[str] = set()
        for code in codes:
            out.add(code)
            out |= self.divisions.get(code, frozenset())
        return frozenset(out)


@lru_cache(maxsize=4)
def catalogue(path: Path = DEFAULT_LIST) -> Catalogue:
    return Catalogue.from_csv(path)
