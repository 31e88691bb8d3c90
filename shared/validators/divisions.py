"""County-level divisions (GB/T 2260 codes) of the deployment's jurisdiction.

The jurisdiction is data, not code: by default Cangzhou's 16 county-level
divisions plus the statistical codes of its 3 functional zones; a larger
deployment loads its own CSV (columns code,name,kind[,reason]).
"""
from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.errors import Conflict, ValidationFailed

DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "divisions" / "cangzhou.csv"
KINDS = {"official": "行政区划", "functional": "功能区", "exception": "登记例外"}
_CODE = re.compile(r"[0-9]{6}")  # not \d: that also matches non-ASCII digits


@dataclass(frozen=True)
class Division:
    code: str  # always a string: keeps the digits exactly as written
    name: str
    kind: str  # a key of KINDS
    reason: str = ""  # why an exception was registered


def _normalise_code(code: object, field: str | None) -> str:
    text = unicodedata.normalize("NFKC", code).strip() if isinstance(code, str) else None
    if text is None or not _CODE.fullmatch(text):
        shown = text if text is not None else repr(code)
        raise ValidationFailed(f"县级区划代码应为6位数字，实际为“{shown}”", code="COUNTY_FORMAT",
                               field=field, details={"found": shown})
    return text


class Jurisdiction:
    """The set of county-level codes a deployment accepts."""

    def __init__(self, divisions: Iterable[Division]):
        self._by_code: dict[str, Division] = {}
        for division in divisions:
            if not _CODE.fullmatch(division.code):
                raise ValueError(f"division code must be 6 digits: {division.code!r}")
            if division.kind not in KINDS:
                raise ValueError(f"unknown division kind {division.kind!r} for {division.code}")
            if division.code in self._by_code:
                raise ValueError(f"duplicate division code {division.code}")
            self._by_code[division.code] = division

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> Jurisdiction:
        # utf-8-sig: CSVs saved from Excel on Chinese Windows often start with a BOM.
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"code", "name", "kind"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            rows = [Division(r["code"].strip(), r["name"].strip(), r["kind"].strip(),
                             (r.get("reason") or "").strip()) for r in reader]
        try:
            return cls(rows)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def default(cls) -> Jurisdiction:
        """Cangzhou. A fresh instance each call, so exceptions never leak between users."""
        return cls.from_csv(DEFAULT_CSV)

    def validate(self, code: str, *, field: str | None = None) -> Division:
        code = _normalise_code(code, field)
        try:
            return self._by_code[code]
        except KeyError:
            raise ValidationFailed(f"县级区划代码“{code}”不属于本辖区", code="COUNTY_UNKNOWN",
                                   field=field, details={"found": code}) from None

    def name(self, code: str) -> str:
        return self.validate(code).name

    def add_exception(self, code: str, name: str, reason: str) -> Division:
        """Accept a real code outside the list (e.g. one that predates the current
        GB/T 2260 edition); the reason is mandatory so the exception is documented."""
        code = _normalise_code(code, "code")
        name, reason = (name or "").strip(), (reason or "").strip()
        if not name or not reason:
            raise ValidationFailed("登记区划代码例外须填写名称和理由", code="COUNTY_EXCEPTION_INCOMPLETE",
                                   field="reason" if name else "name")
        if code in self._by_code:
            known = self._by_code[code]
            raise Conflict(f"县级区划代码“{code}”已在本辖区列表中（{known.name}），无需登记例外",
                           code="COUNTY_EXCEPTION_EXISTS", field="code")
        division = Division(code, name, "exception", reason)
        self._by_code[code] = division
        return division

    def filing_counties(self) -> list[str]:
        """The codes that run a county filing service (and get a broker site of their own
        in a multi-site deployment): the official and functional divisions, not the
        registration exceptions."""
        return [d.code for d in self if d.kind in ("official", "functional")]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip() in self._by_code

    def __iter__(self) -> Iterator[Division]:
        return iter(sorted(self._by_code.values(), key=lambda d: d.code))

    def __len__(self) -> int:
        return len(self._by_code)
