"""Checking roster rows: one at a time with every reason (RowChecker), or a block of plain CSV lines at once (BlockChecker), both to the same canonical line."""
from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
from dataclasses import dataclass

from shared.contracts import jurisdiction
from shared.errors import ValidationFailed
from shared.validators.uscc import validate_uscc
from services.registry.roster.layout import CATEGORY_VALUES, Columns, LINE_FIELDS, MAX_YEAR, MIN_YEAR, STRIP
from shared.validators.uscc import uscc_is_valid, usccs_are_valid


_DIGITS = b"0123456789"


# local@label(.label)+, a label being letters and digits with inner hyphens; possessive
# quantifiers (no backtracking: the same language, several times faster)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*+(?<=[A-Za-z0-9]))?+"
_EMAIL_PATTERN = rf"[A-Za-z0-9._%+\-]++@{_LABEL}(?:\.{_LABEL})++"
EMAIL = re.compile(_EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PHONE = re.compile(r"[0-9+\-() /,，转]{5,32}")


# --- checking ------------------------------------------------------------------------------
def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip(STRIP)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip(STRIP)


class RowChecker:
    """One row at a time, with the reasons of every failed check. Memoises the few
    distinct counties, categories and years."""

    def __init__(self, columns: Columns, default_year: int | None):
        self.default_year = default_year
        self.jurisdiction = jurisdiction()
        self._counties: dict[str, tuple[str | None, str | None]] = {}
        self._categories: dict[str, str | None] = {}
        self._years: dict[str, tuple[int | None, str | None]] = {}
        self._positions = [columns.index.get(name) for name in LINE_FIELDS]
        self._width = max(columns.index.values()) + 1

    def check(self, row: list) -> tuple[tuple | None, list[str], str]:
        """(values in LINE_FIELDS order, [], uscc) or (None, reasons, uscc as written)."""
        if len(row) < self._width:
            row = list(row) + [None] * (self._width - len(row))
        p_uscc, p_name, p_county, p_category, p_year, p_contact, p_phone, p_email = self._positions
        reasons: list[str] = []
        raw = row[p_uscc]
        uscc = cell(raw)
        if not uscc_is_valid(uscc):
            uscc = self._uscc(raw, uscc, reasons)
        name = cell(row[p_name])
        if len(name) < 2 or len(name) > 200:
            reasons.append("企业名称不能为空" if not name else
                           f"企业名称长度应为2至200个字符，实际为{len(name)}个")
        elif _CONTROL.search(name):
            reasons.append("企业名称含有换行符、制表符或其他不可见的控制字符")
        county, why = self._county(cell(row[p_county]))
        if why:
            reasons.append(why)
        category = self._category(cell(row[p_category]), reasons)
        year = self._year(cell(row[p_year]) if p_year is not None else "", reasons)
        contact = cell(row[p_contact]) if p_contact is not None else ""
        if len(contact) > 100:
            reasons.append("联系人不能超过100个字符")
        elif contact and _CONTROL.search(contact):
            reasons.append("联系人含有换行符、制表符或其他不可见的控制字符")
        phone = cell(row[p_phone]) if p_phone is not None else ""
        if phone:
            phone = unicodedata.normalize("NFKC", phone)
            if not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 5:
                reasons.append(f"联系电话“{phone}”格式不正确")
        email = cell(row[p_email]) if p_email is not None else ""
        if email:
            email = unicodedata.normalize("NFKC", email)
            if len(email) > 200 or not EMAIL.fullmatch(email):
                reasons.append(f"电子邮箱“{email}”格式不正确")
        if any(_SURROGATE.search(v) for v in (name, contact, phone, email, uscc) if v):
            reasons.append("该行含有无法按文件编码识别的字符，请检查文件编码（建议另存为 UTF-8）")
        if reasons:
            return None, reasons, uscc
        return (uscc, name, county, category, year, contact or None, phone or None,
                email or None), reasons, uscc

    @staticmethod
    def _uscc(raw, uscc: str, reasons: list[str]) -> str:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            reasons.append("统一社会信用代码被表格软件保存为数字，可能已丢失精度，"
                           "请将该列设置为文本格式后重新导出")
            return uscc
        if not uscc:
            reasons.append("统一社会信用代码不能为空")
            return uscc
        try:
            return validate_uscc(uscc)
        except ValidationFailed as exc:
            message = exc.message
            reasons.append(message if "统一社会信用代码" in message else f"统一社会信用代码：{message}")
            return uscc

    def _county(self, value: str) -> tuple[str | None, str | None]:
        hit = self._counties.get(value)
        if hit is None:
            if not value:
                hit = (None, "县级区划代码不能为空")
            else:
                try:
                    hit = (self.jurisdiction.validate(value).code, None)
                except ValidationFailed as exc:
                    hit = (None, exc.message)
            self._counties[value] = hit
        return hit

    def _category(self, value: str, reasons: list[str]) -> str | None:
        try:
            category = self._categories[value]
        except KeyError:
            key = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))
            category = CATEGORY_VALUES.get(key) or CATEGORY_VALUES.get(key.lower())
            self._categories[value] = category
        if category is None:
            reasons.append("企业类别不能为空，应为“规模以上工业”或“规模以上服务业”" if not value else
                           f"企业类别“{value}”无效，应为“规模以上工业”或“规模以上服务业”")
        return category

    def _year(self, value: str, reasons: list[str]) -> int | None:
        hit = self._years.get(value)
        if hit is None:
            hit = self._years[value] = self._parse_year(value)
        if hit[1]:
            reasons.append(hit[1])
        return hit[0]

    def _parse_year(self, value: str) -> tuple[int | None, str | None]:
        if not value:
            if self.default_year is not None:
                return self.default_year, None
            return None, "年度不能为空"
        text = unicodedata.normalize("NFKC", value).removesuffix("年").strip()
        if not (text.isascii() and text.isdigit()) or not MIN_YEAR <= int(text) <= MAX_YEAR:
            return None, f"年度“{value}”无效，应为{MIN_YEAR}至{MAX_YEAR}之间的四位年份"
        year = int(text)
        if self.default_year is not None and year != self.default_year:
            return None, f"年度“{year}”与指定的导入年度{self.default_year}不一致"
        return year, None


class BlockChecker:
    """A block of plain CSV lines, column by column, with C-level operations only where
    possible. Conservative: it accepts a block only when RowChecker would accept every
    row with exactly the same values; otherwise it answers None and the block is checked
    row by row (which also finds the reasons)."""

    _BAD = bytes(range(0, 10)) + bytes(range(11, 32)) + b'\x7f"'   # control bytes, quote
    _SPACES = (b" ", "\u3000".encode(), "\xa0".encode())              # = STRIP minus controls
    _PHONES = re.compile(rb"(?:(?:[0-9]{5,20}|[0-9]{3,5}-[0-9]{5,9})?\n)*")
    _EMAILS = re.compile(rb"(?:(?:%s)?\n)*" % _EMAIL_PATTERN.encode())

    def __init__(self, columns: Columns, default_year: int | None, delimiter: str):
        self.width = columns.width
        self.delimiter = delimiter.encode()
        self.positions = [columns.index.get(name) for name in LINE_FIELDS]
        self.counties = {d.code.encode() for d in jurisdiction()}
        self.categories = {k.encode(): v.encode() for k, v in CATEGORY_VALUES.items()}
        if default_year is not None:
            self.years = {str(default_year).encode()}
        else:
            self.years = {str(y).encode() for y in range(MIN_YEAR, MAX_YEAR + 1)}
        self.default_year = str(default_year).encode() if default_year is not None else None
        # a line end is a delimiter too once the lines are joined
        self.edges = [(s, (self.delimiter + s, s + self.delimiter)) for s in self._SPACES]

    def check(self, blob: bytes) -> "FastBlock | None":
        """A block of whole lines; the FastBlock if every row is valid, else None."""
        crlf = b"\r" in blob
        terminator = b"\r\n" if crlf else b"\n"
        if blob.endswith(terminator):
            blob = blob[:-len(terminator)]
        lines = blob.split(terminator)  # a stray CR or LF stays in a line: BAD below
        n, width, delimiter = len(lines), self.width, self.delimiter
        joined = delimiter.join(lines)
        if not blob or len(joined.translate(None, self._BAD)) != len(joined):
            return None  # control characters (a stray line end too) or a quote
        for space, edges in self.edges:
            if space[:1] in joined and space in joined:
                if joined.startswith(space) or joined.endswith(space) or any(e in joined for e in edges):
                    return None
        try:
            joined.decode("utf-8")
        except UnicodeDecodeError:
            return None
        fields = joined.split(delimiter)
        if len(fields) != n * width:
            return None
        p_uscc, p_name, p_county, p_category, p_year, p_contact, p_phone, p_email = self.positions
        uscc = fields[p_uscc::width]
        if not usccs_are_valid(uscc):
            return None
        county = fields[p_county::width]
        if not self.counties.issuperset(county):
            return None
        category = fields[p_category::width]
        categories = self.categories
        if not categories.keys() >= set(category):
            return None
        if p_year is None:
            year = self.default_year
        else:
            years = set(fields[p_year::width])
            if len(years) != 1 or not years <= self.years:
                return None
            (year,) = years
        name = fields[p_name::width]
        lengths = set(map(len, name))
        if min(lengths) < 5 or max(lengths) > 200:  # 5 bytes hold at least 2 characters
            return None
        # each absent column gets blanks of its own: zip() takes one item of every argument
        # per row, so absent columns sharing one iterator would cut the rows short
        contact = fields[p_contact::width] if p_contact is not None else itertools.repeat(b"", n)
        phone = fields[p_phone::width] if p_phone is not None else itertools.repeat(b"", n)
        email = fields[p_email::width] if p_email is not None else itertools.repeat(b"", n)
        if p_contact is not None and max(map(len, contact)) > 100:
            return None
        if p_phone is not None:
            lengths = set(map(len, phone))
            lengths.discard(0)
            if lengths and (min(lengths) < 5 or max(lengths) > 20):
                return None
            if b"".join(phone).translate(None, _DIGITS) and \
                    self._PHONES.fullmatch(b"\n".join(phone) + b"\n") is None:
                return None
        if p_email is not None and (max(map(len, email)) > 200 or
                                    self._EMAILS.fullmatch(b"\n".join(email) + b"\n") is None):
            return None
        mapped = map(self.categories.__getitem__, category)
        # strict: a column short of rows is a bug here, never rows silently dropped
        out = b"\n".join(map(b",".join, zip(uscc, name, county, mapped, itertools.repeat(year, n),
                                              contact, phone, email, strict=True)))
        return FastBlock(out + b"\n", uscc, int(year), n)


@dataclass
class FastBlock:
    """A block every row of which is valid: its canonical lines (one string, each line
    ended by a newline), its USCCs, its year, its number of rows."""

    lines: bytes
    usccs: list[bytes]
    year: int
    rows: int


class Seen:
    """(year, USCC) pairs accepted so far, and where each came from (for duplicates)."""

    def __init__(self):
        self.keys: dict[int, set[bytes]] = {}
        self.origins: dict[int, list[tuple[int, list[bytes]]]] = {}
        self.index: dict[int, dict[bytes, int]] | None = None

    def add_block(self, year: int, usccs: list[bytes], first: int) -> bool:
        """Add a block of new keys, or nothing (False) if any is a duplicate."""
        seen = self.keys.setdefault(year, set())
        before = len(seen)
        seen.update(usccs)
        if len(seen) - before != len(usccs):
            # undo: drop what this block added (the index knows what was there before)
            known = self._index()[year] if year in self._index() else {}
            seen.difference_update([u for u in usccs if u not in known])
            return False
        self.origins.setdefault(year, []).append((first, usccs))
        if self.index is not None:
            self.index.setdefault(year, {}).update(zip(usccs, itertools.count(first)))
        return True

    def add_one(self, year: int, uscc: bytes, line: int) -> int | None:
        """None when new; else the line of the first occurrence."""
        seen = self.keys.setdefault(year, set())
        if uscc in seen:
            return self._first(year, uscc)
        seen.add(uscc)
        self.origins.setdefault(year, []).append((line, [uscc]))
        if self.index is not None:
            self.index.setdefault(year, {})[uscc] = line
        return None

    def _index(self) -> dict[int, dict[bytes, int]]:
        if self.index is None:  # built at the first duplicate, kept up to date after
            self.index = {}
            for y, origins in self.origins.items():
                found = self.index.setdefault(y, {})
                for first, usccs in origins:
                    found.update(zip(usccs, itertools.count(first)))
        return self.index

    def _first(self, year: int, uscc: bytes) -> int:
        return self._index()[year][uscc]


class CsvLine:
    """One canonical CSV line from checked values (the row-by-row path)."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def line(self, values: tuple) -> bytes:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(values)
        return self.buffer.getvalue().encode("utf-8")
