"""What a roster file holds (art. 4): its columns and their accepted spellings, the categories, the years."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator
from services.registry.roster.file_source import RosterFileError


INDUSTRIAL, SERVICE = "industrial_above_scale", "service_above_scale"
ROSTER_CATEGORIES = {INDUSTRIAL: "规模以上工业", SERVICE: "规模以上服务业"}
MIN_YEAR, MAX_YEAR = 2000, 2100


# what a cell is stripped of: ASCII whitespace, the ideographic space (U+3000) and the
# no-break space, both common in Chinese spreadsheets; the fast path tests exactly these
STRIP = " \t\r\n\f\v\u3000\xa0"

# field -> (Chinese column name, accepted spellings after _header_key())
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "uscc": ("统一社会信用代码", ("统一社会信用代码", "社会信用代码", "信用代码", "uscc")),
    "name": ("企业名称", ("企业名称", "单位名称", "企业(单位)名称", "名称", "name")),
    "county": ("县级区划代码", ("县级区划代码", "所属县区代码", "县区代码", "所属县(市、区)代码",
                                "县(市、区)代码", "区划代码", "行政区划代码", "county", "county_code")),
    "category": ("企业类别", ("企业类别", "类别", "企业类型", "category")),
    "year": ("年度", ("年度", "年份", "year")),
    "contact_person": ("联系人", ("联系人", "联系人姓名", "contact_person", "contact")),
    "phone": ("联系电话", ("联系电话", "电话", "手机", "联系方式", "phone")),
    "email": ("电子邮箱", ("电子邮箱", "邮箱", "电子邮件", "email", "e-mail")),
}
REQUIRED = ("uscc", "name", "county", "category", "year")
# the order of a canonical line (what COPY reads): USCC first, so lines sort by USCC
LINE_FIELDS = ("uscc", "name", "county", "category", "year", "contact_person", "phone", "email")
DATA_FIELDS = ("name", "county", "category", "contact_person", "phone", "email")

CATEGORY_VALUES = {
    INDUSTRIAL: INDUSTRIAL, "规模以上工业": INDUSTRIAL, "规模以上工业企业": INDUSTRIAL,
    "规上工业": INDUSTRIAL, "规上工业企业": INDUSTRIAL,
    SERVICE: SERVICE, "规模以上服务业": SERVICE, "规模以上服务业企业": SERVICE,
    "规上服务业": SERVICE, "规上服务业企业": SERVICE,
}


# --- columns ----------------------------------------------------------------------------
def _header_key(value) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).replace("\ufeff", "")
    text = re.sub(r"\s+", "", text).strip("*").lower()
    return re.sub(r"\((必填|选填|可选|必须)\)$", "", text)


_ALIASES = {_header_key(alias): name for name, (_, aliases) in COLUMNS.items() for alias in aliases}


@dataclass
class Columns:
    index: dict[str, int]
    ignored: list[str]
    header_line: int
    width: int

    @classmethod
    def find(cls, rows: Iterator[tuple[int, list]], year_given: bool) -> "Columns":
        """The header: the first row (of the first ten) naming at least three known columns."""
        for line, row in rows:
            keys = [_header_key(v) for v in row]
            if sum(1 for k in keys if k in _ALIASES) >= 3:
                return cls._from_header(line, row, keys, year_given)
        raise RosterFileError(
            "未找到表头：前10行中没有包含“统一社会信用代码”“企业名称”“县级区划代码”“企业类别”等列名的行",
            code="ROSTER_HEADER_NOT_FOUND")

    @classmethod
    def _from_header(cls, line: int, row: list, keys: list[str], year_given: bool) -> "Columns":
        index, ignored = {}, []
        for position, key in enumerate(keys):
            name = _ALIASES.get(key)
            if name is None:
                if key:
                    ignored.append(str(row[position]).strip())
                continue
            if name in index:
                raise RosterFileError(f"表头中“{COLUMNS[name][0]}”列出现了不止一次（第{line}行）",
                                      code="ROSTER_COLUMN_DUPLICATE")
            index[name] = position
        missing = [n for n in REQUIRED if n not in index and not (n == "year" and year_given)]
        if missing:
            names = "、".join(f"“{COLUMNS[n][0]}”" for n in missing)
            hint = "（或在导入时指定年度）" if "year" in missing else ""
            raise RosterFileError(f"缺少必需的列：{names}{hint}", code="ROSTER_COLUMNS_MISSING",
                                  details={"missing": missing})
        return cls(index, ignored, line, len(row))
