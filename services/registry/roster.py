"""Use cases: the roster of above-scale enterprises (规上企业名录, art. 4).

A roster file (CSV or XLSX, Chinese or English column names) is imported for one or
more years. Every row is validated on its own: an invalid row is reported with its
line number and the reasons in Chinese and never stops the valid ones. Valid rows are
upserted by (year, USCC): a re-import of the same file changes nothing, a changed
name, county, category or contact updates the row. The whole import is one
transaction (no half-written row, and a failure half-way leaves the roster as it was);
imports of the roster are serialised.

How it is fast on PostgreSQL (bench/roster.py imports 1,000,000 rows):
- CSV is read as UTF-8 bytes in blocks of about 256 kB of whole lines. A block of plain
  lines (no quotes, no control characters, every line with the header's number of
  fields, no spaces around fields) is checked column by column with C-level operations
  only (splits, joins, translations, set operations, one possessive regex per column,
  the USCC check characters of a whole column as big-integer lane sums); a block that
  fails any of these conservative tests is checked row by row, which gives each bad row
  its reasons. Both produce the same canonical CSV line for a row (a hypothesis test
  holds them to it), so which path a row took never shows.
- Lines reach PostgreSQL by COPY. The table is partitioned by year: the rows of a year
  without a roster yet are COPied into a new table, which gets its primary key (one
  sort, much cheaper than maintaining the index row by row) and is then attached as
  the year's partition. Rows of a year that has a roster go to a temporary staging
  table, and at the end one UPDATE of the changed rows and one INSERT of the missing
  ones apply them (a re-import of the same file writes nothing).
- Outside eventlet a writer thread loads chunk N and hashes the file (both release the
  GIL) while Python checks chunk N+1. Under eventlet (a service) psycopg2 refuses COPY
  while its green wait callback is installed, so each COPY runs with the callback
  taken away, blocking the process for that chunk only. SQLite gets the same lines
  through executemany.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import queue
import re
import threading
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from operator import mul
from typing import BinaryIO, Callable, Iterator

from sqlalchemy import func, select

from shared.auth import Principal
from shared.contracts import jurisdiction
from shared.db import Database
from shared.errors import CqoError, ValidationFailed
from shared.validators.uscc import CHARSET, ORG_WEIGHTS, WEIGHTS, make_uscc, validate_uscc
from services.registry.intake import now_utc
from services.registry.models import RosterEntry, RosterImport

log = logging.getLogger(__name__)

INDUSTRIAL, SERVICE = "industrial_above_scale", "service_above_scale"
ROSTER_CATEGORIES = {INDUSTRIAL: "规模以上工业", SERVICE: "规模以上服务业"}
MIN_YEAR, MAX_YEAR = 2000, 2100
REPORTED_REJECTS = 1000      # rejected rows kept in a report (all are counted)
SAMPLE_REJECTS = 200         # rejected rows kept in the audit record
CHUNK_ROWS = 100_000         # rows per COPY round on PostgreSQL
GREEN_CHUNK_ROWS = 20_000    # the same under eventlet, where a COPY blocks the process
SQLITE_CHUNK_ROWS = 5_000
BLOCK_BYTES = 256 * 1024     # CSV checked together (a bad row sends its block row by row)
BLOCK_LINES = 2_000          # spreadsheet rows read together
PIECE_BYTES = 4 << 20        # bytes read from the file at a time
HEADER_SEARCH_ROWS = 10      # a title row or two above the header is common
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

# local@label(.label)+, a label being letters and digits with inner hyphens; possessive
# quantifiers (no backtracking: the same language, several times faster)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*+(?<=[A-Za-z0-9]))?+"
_EMAIL_PATTERN = rf"[A-Za-z0-9._%+\-]++@{_LABEL}(?:\.{_LABEL})++"
_EMAIL = re.compile(_EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PHONE = re.compile(r"[0-9+\-() /,，转]{5,32}")
_MAGIC_XLSX = b"PK\x03\x04"
_MAGIC_OLE = b"\xd0\xcf\x11\xe0"  # .xls (Excel 97-2003) and other OLE files


class RosterFileError(CqoError):
    """The file as a whole cannot be imported (format, encoding, columns)."""

    code = "ROSTER_FILE_INVALID"
    status = 422


# --- the file ---------------------------------------------------------------------------
def _size(stream: BinaryIO) -> int | None:
    try:
        position = stream.tell()
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(position)
        return size
    except (OSError, ValueError, AttributeError):
        return None


def detect_format(head: bytes, filename: str = "", content_type: str = "") -> str:
    """"xlsx" or "csv" from the first bytes; the name and type only explain a mismatch."""
    if head.startswith(_MAGIC_XLSX):
        return "xlsx"
    if head.startswith(_MAGIC_OLE):
        raise RosterFileError("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入",
                              code="ROSTER_FORMAT_UNSUPPORTED", status=415)
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and (b"\x00" in head or head.startswith((b"%PDF", b"\x89PNG", b"\x1f\x8b"))):
        raise RosterFileError("无法识别的文件格式，请上传 CSV 或 XLSX 文件",
                              code="ROSTER_FORMAT_UNSUPPORTED", status=415)
    if filename.lower().endswith(".xlsx") or "spreadsheetml" in content_type:
        raise RosterFileError("文件扩展名或类型为 XLSX，但内容不是有效的 XLSX 文件",
                              code="ROSTER_FILE_UNREADABLE", status=400)
    return "csv"


def _detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode 文本" (tab-separated)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:  # Excel on Chinese Windows saves CSV in the ANSI code page (GBK)
        codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        raise RosterFileError("无法识别文件的字符编码，请另存为 UTF-8 编码的 CSV 或 XLSX 文件",
                              code="ROSTER_ENCODING", status=400) from None


@dataclass
class Batch:
    """Consecutive records of the file: CSV lines (UTF-8 bytes, whole lines) or
    already-parsed spreadsheet rows (line number, cells)."""

    blob: bytes = b""
    rows: list[tuple[int, list]] | None = None


class _Source:
    file_format: str
    encoding: str | None = None
    header_line = 0

    def header_rows(self) -> Iterator[tuple[int, list]]:
        raise NotImplementedError

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def progress(self) -> tuple[int, int | None]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _CsvSource(_Source):
    """UTF-8 bytes of the file (GBK and UTF-16 are converted; undecodable bytes survive
    as surrogate escapes and get their row rejected), cut into blocks of whole records."""

    file_format = "csv"

    def __init__(self, stream: BinaryIO, head: bytes, on_raw: Callable[[bytes], None]):
        self.stream, self.on_raw = stream, on_raw
        self.encoding = _detect_encoding(head)
        self.total = _size(stream)
        self.done = 0
        first = head.decode(self.encoding, errors="ignore").lstrip("\ufeff").split("\n", 1)[0]
        self.delimiter = "\t" if first.count("\t") > first.count(",") else ","
        self._pieces = self._utf8_pieces()
        self._carry = b""

    def _utf8_pieces(self) -> Iterator[bytes]:
        utf8 = self.encoding in ("utf-8", "utf-8-sig")
        decoder = None if utf8 else codecs.getincrementaldecoder(self.encoding)("surrogateescape")
        first = True
        while True:
            raw = self.stream.read(PIECE_BYTES)
            if raw:
                self.done += len(raw)
                self.on_raw(raw)
            if utf8:
                piece = raw[3:] if first and raw.startswith(codecs.BOM_UTF8) else raw
            else:
                piece = decoder.decode(raw, final=not raw).encode("utf-8", "surrogateescape")
            first = False
            if piece:
                yield piece
            if not raw:
                return

    def header_rows(self) -> Iterator[tuple[int, list]]:
        """The first physical lines, parsed one by one (a header is one line)."""
        data = b""
        for piece in self._pieces:
            data += piece
            if data.count(b"\n") >= HEADER_SEARCH_ROWS:
                break
        start = 0
        for line_no in range(1, HEADER_SEARCH_ROWS + 1):
            end = data.find(b"\n", start)
            line = data[start:] if end < 0 else data[start:end]
            start = len(data) if end < 0 else end + 1
            self._carry, self.header_line = data[start:], line_no
            try:
                cells = next(csv.reader([line.decode("utf-8", "surrogateescape").rstrip("\r")],
                                        delimiter=self.delimiter), [])
            except csv.Error:  # e.g. a lone carriage return inside the line
                raise RosterFileError(f"CSV 第{line_no}行格式有误（行内有单独的回车符或引号不成对）",
                                      code="ROSTER_CSV_MALFORMED", status=400) from None
            yield line_no, cells
            if start >= len(data):
                return

    def batches(self) -> Iterator[Batch]:
        """Blocks of whole lines, about BLOCK_BYTES each (a few thousand lines), cut
        without splitting the lines (the checker does that) and never inside a quoted
        field; line ends stay as they are (CRLF or LF)."""
        carry = self._carry
        for piece in itertools.chain(self._pieces, [None]):
            final = piece is None
            data = carry + piece if not final else carry
            cut = len(data) if final else data.rfind(b"\n") + 1
            carry = data[cut:]
            pos = 0
            while pos < cut:
                end = data.rfind(b"\n", pos, pos + BLOCK_BYTES) + 1
                if end <= pos:  # a line longer than a block
                    end = data.find(b"\n", pos + BLOCK_BYTES, cut) + 1 or cut
                if data.count(b'"', pos, end) % 2:  # inside a quoted field: extend
                    while end < cut and data.count(b'"', pos, end) % 2:
                        end = data.find(b"\n", end, cut) + 1 or cut
                    if data.count(b'"', pos, end) % 2 and not final:
                        carry = data[pos:]  # the record continues in the next piece
                        break
                yield Batch(blob=data[pos:end])
                pos = end
            if final:
                return

    def parse(self, blob: bytes) -> Iterator[list]:
        text = blob.decode("utf-8", "surrogateescape")
        try:
            yield from csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        except csv.Error as exc:
            raise RosterFileError(f"CSV 格式有误（{exc}），请检查引号是否成对", code="ROSTER_CSV_MALFORMED",
                                  status=400) from None

    def progress(self) -> tuple[int, int | None]:
        return self.done, self.total


class _XlsxSource(_Source):
    file_format = "xlsx"

    def __init__(self, stream: BinaryIO, on_raw: Callable[[bytes], None]):
        from openpyxl import load_workbook

        stream.seek(0)
        for block in iter(lambda: stream.read(1 << 20), b""):
            on_raw(block)
        stream.seek(0)
        try:
            self.book = load_workbook(stream, read_only=True, data_only=True)
            self.sheet = self.book.worksheets[0]
            self._rows = enumerate(self.sheet.iter_rows(values_only=True), start=1)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError) as exc:
            raise RosterFileError(f"XLSX 文件无法读取（{type(exc).__name__}），请确认文件完整且未加密",
                                  code="ROSTER_FILE_UNREADABLE", status=400) from None
        self.total = self.sheet.max_row
        self.done = 0

    def _next_rows(self, count: int) -> list[tuple[int, list]]:
        out = []
        try:
            for line, row in itertools.islice(self._rows, count):
                self.done = line
                out.append((line, list(row)))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise RosterFileError(f"XLSX 文件第{self.done + 1}行附近无法读取（{type(exc).__name__}）",
                                  code="ROSTER_FILE_UNREADABLE", status=400) from None
        return out

    def header_rows(self) -> Iterator[tuple[int, list]]:
        while self.done < HEADER_SEARCH_ROWS:
            rows = self._next_rows(1)
            if not rows:
                return
            self.header_line = rows[0][0]
            yield rows[0]

    def batches(self) -> Iterator[Batch]:
        while True:
            rows = self._next_rows(BLOCK_LINES)
            if not rows:
                return
            yield Batch(rows=rows)

    def progress(self) -> tuple[int, int | None]:
        return self.done, self.total

    def close(self) -> None:
        self.book.close()


def open_source(stream: BinaryIO, on_raw: Callable[[bytes], None], filename: str = "",
                content_type: str = "") -> _Source:
    head = stream.read(65536)
    if not head:
        raise RosterFileError("文件为空", code="ROSTER_EMPTY")
    file_format = detect_format(head, filename, content_type)
    stream.seek(0)
    if file_format == "xlsx":
        return _XlsxSource(stream, on_raw)
    return _CsvSource(stream, head, on_raw)


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


# --- USCC check characters, fast -----------------------------------------------------------
_USCC_VALUE = {c: i for i, c in enumerate(CHARSET)}
_ORG_VALUE = {c: (int(c) if c.isdigit() else ord(c) - ord("A") + 10) for c in CHARSET}
_ORG_CHECK = {v: {10: "X", 11: "0"}.get(11 - v, str(11 - v)) for v in range(11)}


def uscc_is_valid(code: str) -> bool:
    """True only when validate_uscc accepts `code` unchanged (the checker asks
    validate_uscc for the reason otherwise)."""
    if len(code) != 18:
        return False
    value = _USCC_VALUE
    try:
        total = sum(map(mul, WEIGHTS, map(value.__getitem__, code[:17])))
        check = value[code[17]]
    except KeyError:
        return False
    if (31 - total % 31) % 31 != check or not code[2:8].isdigit():
        return False
    org = sum(map(mul, ORG_WEIGHTS, map(_ORG_VALUE.__getitem__, code[8:16])))
    return _ORG_CHECK[org % 11] == code[16]


# Whole columns of USCCs at once, with C-level operations only: the character at
# position p of every code is one bytes object (joined[p::18]); a translation table per
# position turns it into its weighted value modulo 31 (GB 32100) or 11 (GB 11714), one
# byte per code; int.from_bytes() lays such a column out as one big integer, so adding
# columns adds every code's lanes at once (no lane exceeds 255: at most eight values of
# up to 30 are added before a lane is reduced again). A code is valid when its total,
# check character included, is 0 modulo 31 and its organisation code's is 0 modulo 11.
_B_CHARSET = CHARSET.encode()
_DIGITS = b"0123456789"


def _table(value_of) -> bytes:
    table = bytearray(256)
    for char in CHARSET:
        table[ord(char)] = value_of(char)
    return bytes(table)


_GB32100 = [_table(lambda c, w=w: _USCC_VALUE[c] * w % 31) for w in WEIGHTS] + \
    [_table(_USCC_VALUE.__getitem__)]                      # the check character, weight 1
_ORG_CHECK_VALUE = {**{d: int(d) for d in "0123456789"}, "X": 10}
_GB11714 = [_table(lambda c, w=w: _ORG_VALUE[c] % 11 * w % 11) for w in ORG_WEIGHTS] + \
    [_table(lambda c: _ORG_CHECK_VALUE.get(c, 0))]          # 11 - sum, "0" for 11, "X" for 10
_MOD31 = bytes(b % 31 for b in range(256))
_MOD11 = bytes(b % 11 for b in range(256))


def usccs_are_valid(codes: list[bytes]) -> bool:
    """True only if every code is a valid USCC exactly as written (what validate_uscc
    accepts unchanged)."""
    n = len(codes)
    if not n:
        return True
    if set(map(len, codes)) != {18}:
        return False
    joined = b"".join(codes)
    if joined.translate(None, _B_CHARSET) or joined[16::18].translate(None, b"0123456789X"):
        return False
    columns = [joined[p::18] for p in range(18)]
    if any(columns[p].translate(None, _DIGITS) for p in range(2, 8)):  # division code
        return False
    number, to_bytes, zero = int.from_bytes, int.to_bytes, bytes(n)

    def lanes(positions, tables, modulo) -> int:
        total = sum(number(columns[p].translate(tables[p]), "big") for p in positions)
        return number(to_bytes(total, n, "big").translate(modulo), "big")

    total = (lanes(range(0, 8), _GB32100, _MOD31) + lanes(range(8, 16), _GB32100, _MOD31)
             + lanes(range(16, 18), _GB32100, _MOD31))
    if to_bytes(total, n, "big").translate(_MOD31) != zero:
        return False
    org_tables = [None] * 8 + _GB11714                          # positions 8..16
    return to_bytes(lanes(range(8, 17), org_tables, _MOD11), n, "big").translate(_MOD11) == zero


# --- checking ------------------------------------------------------------------------------
def _cell(value) -> str:
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
        uscc = _cell(raw)
        if not uscc_is_valid(uscc):
            uscc = self._uscc(raw, uscc, reasons)
        name = _cell(row[p_name])
        if len(name) < 2 or len(name) > 200:
            reasons.append("企业名称不能为空" if not name else
                           f"企业名称长度应为2至200个字符，实际为{len(name)}个")
        elif _CONTROL.search(name):
            reasons.append("企业名称含有换行符、制表符或其他不可见的控制字符")
        county, why = self._county(_cell(row[p_county]))
        if why:
            reasons.append(why)
        category = self._category(_cell(row[p_category]), reasons)
        year = self._year(_cell(row[p_year]) if p_year is not None else "", reasons)
        contact = _cell(row[p_contact]) if p_contact is not None else ""
        if len(contact) > 100:
            reasons.append("联系人不能超过100个字符")
        elif contact and _CONTROL.search(contact):
            reasons.append("联系人含有换行符、制表符或其他不可见的控制字符")
        phone = _cell(row[p_phone]) if p_phone is not None else ""
        if phone:
            phone = unicodedata.normalize("NFKC", phone)
            if not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 5:
                reasons.append(f"联系电话“{phone}”格式不正确")
        email = _cell(row[p_email]) if p_email is not None else ""
        if email:
            email = unicodedata.normalize("NFKC", email)
            if len(email) > 200 or not _EMAIL.fullmatch(email):
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


class _Seen:
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


# --- the report ---------------------------------------------------------------------------
@dataclass
class ImportReport:
    source: str
    file_format: str = ""
    encoding: str | None = None
    sha256: str = ""
    import_id: int | None = None
    header_line: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    years: set[int] = field(default_factory=set)
    total_rows: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    rejected_rows: list[dict] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.accepted - self.inserted - self.updated

    def reject(self, line: int, uscc: str, name: str, reasons: list[str]) -> dict:
        self.rejected += 1
        entry = {"line": line, "uscc": uscc, "name": name, "reasons": reasons}
        if len(self.rejected_rows) < REPORTED_REJECTS:
            self.rejected_rows.append(entry)
        return entry

    def summary(self) -> str:
        text = (f"共读取{self.total_rows}行：接受{self.accepted}行（新增{self.inserted}、更新{self.updated}、"
                f"未变化{self.unchanged}），拒绝{self.rejected}行")
        return text + ("，被拒绝的行未写入，其余行已导入" if self.rejected else "")

    def to_dict(self) -> dict:
        return {
            "import_id": self.import_id, "source": self.source, "format": self.file_format,
            "encoding": self.encoding, "sha256": self.sha256, "header_line": self.header_line,
            "ignored_columns": self.ignored_columns, "years": sorted(self.years),
            "total_rows": self.total_rows, "accepted": self.accepted, "inserted": self.inserted,
            "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
            "rejected_rows": self.rejected_rows,
            "rejected_rows_truncated": self.rejected > len(self.rejected_rows),
            "summary": self.summary(),
        }


# --- loading ------------------------------------------------------------------------------
_COPY_COLUMNS = ", ".join(LINE_FIELDS)
_PG_STAGE = """
CREATE TEMPORARY TABLE roster_stage (
    uscc varchar(18), name varchar(200), county varchar(6), category varchar(32), year integer,
    contact_person varchar(100), phone varchar(32), email varchar(200)
) ON COMMIT DROP
"""
# At the end, one year at a time (its partition is pruned): imports are serialised and
# the stage holds no duplicates, so an UPDATE of the changed rows and an INSERT of the
# missing ones are the upsert, and their row counts are the report's (a partitioned
# table cannot return xmax, the usual ON CONFLICT trick). One join over the whole file
# rather than one per chunk: each would read the year's whole partition again.
_PG_UPDATE = f"""
UPDATE roster_entries AS r SET {", ".join(f"{c} = s.{c}" for c in DATA_FIELDS)}
FROM roster_stage AS s
WHERE r.year = %(year)s AND s.year = %(year)s AND r.uscc = s.uscc
  AND ({", ".join(f"r.{c}" for c in DATA_FIELDS)}) IS DISTINCT FROM ({", ".join(f"s.{c}" for c in DATA_FIELDS)})
"""
_PG_INSERT = f"""
INSERT INTO roster_entries ({_COPY_COLUMNS})
SELECT {", ".join(f"s.{c}" for c in LINE_FIELDS)} FROM roster_stage AS s
WHERE s.year = %(year)s
  AND NOT EXISTS (SELECT 1 FROM roster_entries AS r WHERE r.year = %(year)s AND r.uscc = s.uscc)
ORDER BY s.uscc
"""


def _copy(cur, sql: str, data: BinaryIO) -> None:
    """COPY ... FROM STDIN. psycopg2 refuses COPY while a wait callback is installed
    (eventlet's green mode, as in a service): the callback is taken away for the COPY
    only, which then blocks this process without yielding, so no other green thread can
    issue a query meanwhile; those waiting inside the callback resume after it."""
    import psycopg2.extensions

    callback = psycopg2.extensions.get_wait_callback()
    if callback is None:
        cur.copy_expert(sql, data, size=1 << 20)
        return
    psycopg2.extensions.set_wait_callback(None)
    try:
        cur.copy_expert(sql, data, size=1 << 20)
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def _year_of(line: bytes) -> int:
    return int(next(csv.reader([line.decode("utf-8")]))[4])


class _PgLoader:
    """Rows of a year that has no roster yet are COPied into a new table of their own,
    which gets its primary key and is attached as the year's partition at the end
    (nothing can conflict: imports are serialised and the file's duplicates removed).
    Rows of other years go through the staging table and one upsert."""

    def __init__(self, conn):
        self.dbapi = conn.connection.dbapi_connection
        self.built: dict[int, str | None] = {}  # year -> table being built, or None
        self.staged: set[int] = set()            # years with rows in the staging table
        with self.dbapi.cursor() as cur:
            # one import at a time; readers (coverage) are not blocked
            cur.execute("LOCK TABLE roster_entries IN SHARE ROW EXCLUSIVE MODE")
            cur.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'roster_entries'::regclass")
            self.partitioned = cur.fetchone()[0]

    def _new_table(self, cur, year: int) -> str | None:
        """The table a fresh year's rows go to, or None when the year has rows already."""
        if year not in self.built:
            table = f"roster_entries_y{year}"
            cur.execute("SELECT EXISTS (SELECT 1 FROM roster_entries WHERE year = %s) "
                        "OR to_regclass(%s) IS NOT NULL", (year, table))
            if cur.fetchone()[0]:
                self.built[year] = None
            elif self.partitioned:  # the CHECK spares ATTACH its scan of the table
                cur.execute(f"CREATE TABLE {table} (LIKE roster_entries INCLUDING DEFAULTS, "
                            f"CONSTRAINT {table}_year CHECK (year = {int(year)}))")
                self.built[year] = table
            else:  # not partitioned: straight into the table, in key order
                self.built[year] = "roster_entries"
        return self.built[year]

    def load(self, data: bytes, years: set[int]) -> tuple[int, int]:
        """`data`: canonical lines, each ended by a newline (a line never holds one)."""
        if len(years) > 1:
            by_year: dict[int, list[bytes]] = {}
            for line in data.split(b"\n")[:-1]:
                by_year.setdefault(_year_of(line), []).append(line)
            totals = [self.load(b"\n".join(part) + b"\n", {y}) for y, part in by_year.items()]
            return sum(t[0] for t in totals), sum(t[1] for t in totals)
        (year,) = years
        with self.dbapi.cursor() as cur:
            table = self._new_table(cur, year)
            if table == "roster_entries":  # by USCC: the primary key's pages in order
                data = b"\n".join(sorted(data.split(b"\n")[:-1])) + b"\n"
            if table is not None:
                _copy(cur, f"COPY {table} ({_COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                      io.BytesIO(data))
                return data.count(b"\n"), 0
            if not self.staged:
                cur.execute(_PG_STAGE)
            self.staged.add(year)
            _copy(cur, f"COPY roster_stage ({_COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                  io.BytesIO(data))
        return 0, 0  # counted by finish()

    def finish(self) -> tuple[int, int]:
        """Upsert the staged rows; index and attach the new partitions. Returns
        (inserted, updated) of the staged rows."""
        inserted = updated = 0
        with self.dbapi.cursor() as cur:
            if self.staged:
                cur.execute("ANALYZE roster_stage")
            for year in sorted(self.staged):
                cur.execute(_PG_UPDATE, {"year": year})
                updated += cur.rowcount
                cur.execute(_PG_INSERT, {"year": year})
                inserted += cur.rowcount
            for year, table in self.built.items():
                if table in (None, "roster_entries"):
                    continue
                cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (year, uscc)")
                cur.execute(f"ALTER TABLE roster_entries ATTACH PARTITION {table} FOR VALUES IN ({int(year)})")
        return inserted, updated


class _SqliteLoader:
    """Read the chunk's existing rows, then executemany inserts and updates."""

    _KEYS_PER_QUERY = 500

    def __init__(self, conn):
        self.conn = conn

    def load(self, data: bytes, years: set[int]) -> tuple[int, int]:
        rows = [(r[0], r[1], r[2], r[3], int(r[4]), r[5] or None, r[6] or None, r[7] or None)
                for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]
        existing: dict[tuple[int, str], tuple] = {}
        by_year: dict[int, list[str]] = {}
        for row in rows:
            by_year.setdefault(row[4], []).append(row[0])
        for year, usccs in by_year.items():
            for start in range(0, len(usccs), self._KEYS_PER_QUERY):
                part = usccs[start:start + self._KEYS_PER_QUERY]
                marks = ", ".join("?" * len(part))
                for found in self.conn.exec_driver_sql(
                        f"SELECT {_COPY_COLUMNS} FROM roster_entries WHERE year = ? AND uscc IN ({marks})",
                        (year, *part)):
                    existing[(found[4], found[0])] = tuple(found)
        inserts, updates = [], []
        for row in rows:
            old = existing.get((row[4], row[0]))
            if old is None:
                inserts.append(row)
            elif old != row:
                updates.append((row[1], row[2], row[3], row[5], row[6], row[7], row[4], row[0]))
        if inserts:
            self.conn.exec_driver_sql(
                f"INSERT INTO roster_entries ({_COPY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inserts)
        if updates:
            sets = ", ".join(f"{c} = ?" for c in DATA_FIELDS)
            self.conn.exec_driver_sql(
                f"UPDATE roster_entries SET {sets} WHERE year = ? AND uscc = ?", updates)
        return len(inserts), len(updates)

    def finish(self) -> tuple[int, int]:
        return 0, 0


class _Hasher:
    """The file's bytes to the writer's digest, kept until the writer exists."""

    def __init__(self):
        self.sink, self.kept = None, []

    def update(self, raw: bytes) -> None:
        if self.sink is None:
            self.kept.append(raw)
        else:
            self.sink(raw)

    def attach(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        for raw in self.kept:
            sink(raw)
        self.kept = []


class _Writer:
    """Hands chunks to the loader and the file's bytes to the hash: on a thread of its
    own when that gives parallelism (PostgreSQL in a plain process: the server ingests
    chunk N while Python checks N+1, and hashing releases the GIL); inline otherwise
    (SQLite connections stay on their thread; under eventlet a worker yields between
    chunks instead)."""

    def __init__(self, loader, threaded: bool):
        self.loader = loader
        self.digest = hashlib.sha256()
        self.inserted = self.updated = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue | None = None
        self.thread = None
        if threaded:
            self.queue = queue.Queue(maxsize=3)
            self.thread = threading.Thread(target=self._run, name="roster-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is not None:
                continue  # drain: the importing thread raises it
            try:
                if isinstance(job, bytes):
                    self.digest.update(job)
                else:
                    self._load(*job)
            except BaseException as exc:  # re-raised in the importing thread
                self.error = exc

    def _load(self, pieces: list[bytes], years: set[int]) -> None:
        inserted, updated = self.loader.load(b"".join(pieces), years)
        self.inserted += inserted
        self.updated += updated

    def hash(self, raw: bytes) -> None:
        if self.queue is None:
            self.digest.update(raw)
        else:
            self.queue.put(raw)

    def load(self, pieces: list[bytes], years: set[int]) -> None:
        """`pieces`: canonical lines, each ended by a newline, in strings of one or more."""
        if self.error is not None:
            raise self.error
        if self.queue is None:
            self._load(pieces, years)
            time.sleep(0)  # under eventlet: let the service's other workers run
        else:
            self.queue.put((pieces, years))

    def close(self) -> None:
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """The import failed: stop the thread without loading what is queued."""
        if self.queue is not None:
            self.error = self.error or RuntimeError("import aborted")
            self.queue.put(None)
            self.thread.join()


def _threads_are_real() -> bool:
    try:
        from eventlet import patcher
    except ImportError:
        return True
    return not patcher.is_monkey_patched("thread")


# --- the use case -------------------------------------------------------------------------
def import_roster(db: Database, stream: BinaryIO, *, source: str, actor: str,
                  year: int | None = None, content_type: str = "",
                  progress: Callable[[int, int | None], None] | None = None,
                  on_reject: Callable[[dict], None] | None = None,
                  chunk_rows: int | None = None) -> ImportReport:
    """Import a roster file (a seekable binary stream); returns the report.

    Raises RosterFileError when the file as a whole cannot be read; the roster is then
    unchanged. `year` fills rows without a year (and rows with another year are
    rejected). `on_reject` sees every rejected row, the report keeps the first ones.
    `progress(done, total)` is called now and then (bytes of a CSV, rows of an XLSX).
    Rows go to the database `chunk_rows` at a time (environment ROSTER_CHUNK_ROWS, else
    100,000 on PostgreSQL, 20,000 under eventlet, 5,000 on SQLite).
    """
    if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed(f"年度应在{MIN_YEAR}到{MAX_YEAR}之间", field="year", code="ROSTER_YEAR")
    postgres, threaded = db.is_postgres, _threads_are_real()
    chunk_rows = chunk_rows or int(os.environ.get("ROSTER_CHUNK_ROWS") or 0) or (
        SQLITE_CHUNK_ROWS if not postgres else CHUNK_ROWS if threaded else GREEN_CHUNK_ROWS)
    report = ImportReport(source=source[:300])
    hasher = _Hasher()
    file = open_source(stream, hasher.update, source, content_type)
    try:
        report.file_format, report.encoding = file.file_format, file.encoding
        columns = Columns.find(file.header_rows(), year_given=year is not None)
        report.header_line, report.ignored_columns = columns.header_line, columns.ignored
        with db.engine.begin() as conn:
            loader = _PgLoader(conn) if postgres else _SqliteLoader(conn)
            writer = _Writer(loader, threaded=postgres and threaded)
            hasher.attach(writer.hash)
            try:
                _check(file, columns, year, report, writer, chunk_rows, progress, on_reject)
                if report.total_rows == 0:
                    raise RosterFileError("文件中没有数据行（表头之下为空）", code="ROSTER_EMPTY")
            except BaseException:
                writer.abort()
                raise
            writer.close()
            inserted, updated = loader.finish()
            report.inserted, report.updated = writer.inserted + inserted, writer.updated + updated
            report.sha256 = writer.digest.hexdigest()
            report.import_id = conn.execute(RosterImport.__table__.insert().returning(RosterImport.id), {
                "at": now_utc(), "actor": actor[:100], "source": report.source, "sha256": report.sha256,
                "file_format": report.file_format, "encoding": report.encoding,
                "years": ",".join(map(str, sorted(report.years)))[:200],
                "total_rows": report.total_rows, "accepted": report.accepted,
                "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
                "rejected": report.rejected,
                "rejected_sample": json.dumps(report.rejected_rows[:SAMPLE_REJECTS], ensure_ascii=False),
            }).scalar_one()
    finally:
        file.close()
    if progress is not None:
        progress(*file.progress())
    log.info("roster import %s by %s: %s", report.import_id, actor,
             {k: v for k, v in report.to_dict().items() if k != "rejected_rows"})
    return report


class _Csv:
    """One canonical CSV line from checked values (the row-by-row path)."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def line(self, values: tuple) -> bytes:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(values)
        return self.buffer.getvalue().encode("utf-8")


def _check(file: _Source, columns: Columns, year: int | None, report: ImportReport,
           writer: _Writer, chunk_rows: int, progress, on_reject) -> None:
    rows_checker = RowChecker(columns, year)
    block_checker = BlockChecker(columns, year, file.delimiter) if isinstance(file, _CsvSource) else None
    seen, to_line = _Seen(), _Csv()
    name_at = columns.index["name"]
    chunk: list[bytes] = []
    chunk_years: set[int] = set()
    in_chunk = 0
    record = file.header_line  # the record (spreadsheet row) number of the last row read
    total = accepted = 0

    def flush():
        nonlocal chunk, chunk_years, in_chunk
        if chunk:
            writer.load(chunk, chunk_years)
            chunk, chunk_years, in_chunk = [], set(), 0
            if progress is not None:
                progress(*file.progress())

    for batch in file.batches():
        fast = block_checker.check(batch.blob) if block_checker is not None else None
        if fast is not None and seen.add_block(fast.year, fast.usccs, record + 1):
            record += fast.rows
            total += fast.rows
            accepted += fast.rows
            chunk.append(fast.lines)
            in_chunk += fast.rows
            chunk_years.add(fast.year)
            report.years.add(fast.year)
            if in_chunk >= chunk_rows:
                flush()
            continue
        rows = batch.rows if batch.rows is not None else enumerate(file.parse(batch.blob), record + 1)
        for record, row in rows:
            if not any(row):
                continue  # a blank line, or a row of empty cells
            values, reasons, uscc = rows_checker.check(row)
            if values is None and not any(_cell(v) for v in row):
                continue  # cells holding only spaces
            total += 1
            if values is not None:
                first = seen.add_one(values[4], uscc.encode("utf-8", "surrogateescape"), record)
                if first is None:
                    chunk.append(to_line.line(values))
                    in_chunk += 1
                    chunk_years.add(values[4])
                    report.years.add(values[4])
                    accepted += 1
                    if in_chunk >= chunk_rows:
                        flush()
                    continue
                reasons = [f"与第{first}行重复（同一年度同一统一社会信用代码），以第{first}行为准"]
            name = _cell(row[name_at]) if name_at < len(row) else ""
            entry = report.reject(record, uscc, name, reasons)
            if on_reject is not None:
                on_reject(entry)
    flush()
    report.total_rows, report.accepted = total, accepted


# --- reading the roster -------------------------------------------------------------------
def list_entries(db: Database, principal: Principal, filters: dict) -> dict:
    """A page of one year's roster, scoped to what the caller may see."""
    county = filters.get("county")
    if principal.role == "county_officer":
        if county is not None and county != principal.county:
            principal.require_county(county)
        county = principal.county
    query = select(RosterEntry).where(RosterEntry.year == filters["year"])
    if county:
        query = query.where(RosterEntry.county == county)
    if filters.get("category"):
        query = query.where(RosterEntry.category == filters["category"])
    if filters.get("uscc"):
        query = query.where(RosterEntry.uscc == filters["uscc"])
    page, per_page = filters["page"], filters["per_page"]
    with db.unit_of_work() as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        found = uow.session.scalars(query.order_by(RosterEntry.county, RosterEntry.uscc)
                                    .offset((page - 1) * per_page).limit(per_page)).all()
        items = [entry_dict(e) for e in found]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def entry_dict(entry: RosterEntry) -> dict:
    return {"year": entry.year, "uscc": entry.uscc, "name": entry.name, "county": entry.county,
            "county_name": county_name(entry.county), "category": entry.category,
            "category_name": ROSTER_CATEGORIES.get(entry.category, entry.category),
            "contact_person": entry.contact_person, "phone": entry.phone, "email": entry.email}


def county_name(code: str) -> str:
    try:
        return jurisdiction().name(code)
    except CqoError:  # a county since removed from the jurisdiction keeps its code
        return code


def list_imports(db: Database, limit: int = 50) -> list[dict]:
    with db.unit_of_work() as uow:
        found = uow.session.scalars(select(RosterImport).order_by(RosterImport.id.desc())
                                    .limit(limit)).all()
        return [{"import_id": r.id, "at": r.at, "actor": r.actor, "source": r.source,
                 "sha256": r.sha256, "format": r.file_format, "encoding": r.encoding,
                 "years": [int(y) for y in r.years.split(",") if y],
                 "total_rows": r.total_rows, "accepted": r.accepted, "inserted": r.inserted,
                 "updated": r.updated, "unchanged": r.unchanged, "rejected": r.rejected}
                for r in found]


def template_rows() -> list[list[str]]:
    """Header and one example row of a roster file (for `cqo roster template`)."""
    return [[COLUMNS[name][0] for name in LINE_FIELDS],
            [make_uscc(division="130921"), "沧州示例机械制造有限公司", "130921", "规模以上工业", "2026",
             "张三", "0317-1234567", "zhangsan@example.cn"]]
