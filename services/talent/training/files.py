"""An attendance file (CSV or XLSX): its format, its encoding, its header and its rows.

The columns may be named in Chinese or by their field codes, in any order, under a
title row or two; a CSV may be UTF-8 (with or without BOM), GBK (Excel on Chinese
Windows) or tab-separated. Line numbers are those a spreadsheet shows.
"""
from __future__ import annotations

import csv
import io
import operator
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from typing import Iterator

from shared.errors import CqoError

HEADER_SEARCH_ROWS = 10

# field -> (the column's Chinese name, accepted spellings)
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "person_name": ("姓名", ("姓名", "学员姓名", "人员姓名", "name", "person_name")),
    "id_type": ("证件类型", ("证件类型", "证件种类", "id_type")),
    "id_number": ("证件号码", ("证件号码", "身份证号码", "身份证号", "公民身份号码", "证件号", "id_number")),
    "uscc": ("统一社会信用代码", ("统一社会信用代码", "社会信用代码", "信用代码", "uscc")),
    "enterprise_name": ("企业名称", ("企业名称", "单位名称", "工作单位", "所在企业", "enterprise_name",
                                     "enterprise")),
    "kind": ("培训类别", ("培训类别", "培训类型", "课程类别", "kind", "course_kind")),
    "passed": ("考核结果", ("考核结果", "是否合格", "考核是否合格", "结业考核", "passed", "result")),
    "certificate_no": ("证书编号", ("证书编号", "证书号", "培训证书编号", "结业证书编号", "certificate_no",
                                    "certificate")),
    "issued_on": ("发证日期", ("发证日期", "发证时间", "证书日期", "issued_on")),
}
REQUIRED = ("person_name", "id_number", "passed")

_XLSX_MAGIC, _OLE_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0"


class TrainingFileError(CqoError):
    """The file as a whole cannot be imported (format, encoding, columns); nothing changed."""

    code = "TRAINING_FILE_INVALID"
    status = 422


def _header_key(value) -> str:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value or "")).replace("\ufeff", ""))
    return re.sub(r"\((必填|选填|可选)\)$", "", text.strip("*").lower())


_ALIASES = {_header_key(alias): name for name, (_, aliases) in COLUMNS.items() for alias in aliases}


@dataclass
class Table:
    """The file's rows below its header, as (line number, cells by field)."""

    file_format: str
    encoding: str | None
    records: Iterator[tuple[int, list]]
    header_line: int = 0
    index: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    book: object = None

    def rows(self) -> Iterator[tuple[int, dict]]:
        index = list(self.index.items())
        names, positions = [name for name, _ in index], [i for _, i in index]
        last, pick = max(positions), operator.itemgetter(*positions, positions[0])  # a tuple, even of one
        for line, cells in self.records:
            if len(cells) > last:  # every column there: picked in C
                yield line, dict(zip(names, pick(cells)))
            else:
                width = len(cells)
                yield line, {name: cells[i] if i < width else None for name, i in index}

    def close(self) -> None:
        if self.book is not None:
            self.book.close()


def _csv_records(content: bytes) -> tuple[str, Iterator[tuple[int, list]]]:
    if content.startswith(b"\xef\xbb\xbf"):
        encoding, text = "utf-8-sig", content[3:].decode("utf-8", "replace")
    else:
        try:
            encoding, text = "utf-8", content.decode("utf-8")
        except UnicodeDecodeError:
            try:
                encoding, text = "gb18030", content.decode("gb18030")
            except UnicodeDecodeError:
                raise TrainingFileError("无法识别文件的字符编码，请另存为 UTF-8 编码的 CSV 或 XLSX 文件",
                                        code="TRAINING_ENCODING", status=400) from None
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if first.count("\t") > first.count(",") else ",")

    def records():
        try:
            for cells in reader:
                yield reader.line_num, cells
        except csv.Error:
            raise TrainingFileError(f"CSV 第{reader.line_num}行格式有误（引号不成对或行内有单独的回车符）",
                                    code="TRAINING_CSV_MALFORMED", status=400) from None
    return encoding, records()


def _xlsx_records(content: bytes):
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError) as exc:
        raise TrainingFileError(f"XLSX 文件无法读取（{type(exc).__name__}），请确认文件完整且未加密",
                                code="TRAINING_FILE_UNREADABLE", status=400) from None

    def records():
        try:
            for line, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield line, list(cells)
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise TrainingFileError(f"XLSX 文件无法读取（{type(exc).__name__}）",
                                    code="TRAINING_FILE_UNREADABLE", status=400) from None
    return book, records()


def open_table(content: bytes) -> Table:
    """The file's format from its first bytes, then its header."""
    if not content.strip():
        raise TrainingFileError("文件为空", code="TRAINING_EMPTY")
    if content.startswith(_XLSX_MAGIC):
        book, records = _xlsx_records(content)
        table = Table("xlsx", None, records, book=book)
    elif content.startswith(_OLE_MAGIC):
        raise TrainingFileError("不支持旧版 Excel（.xls）文件，请另存为 .xlsx 或 CSV 后再导入",
                                code="TRAINING_FORMAT_UNSUPPORTED", status=415)
    elif b"\x00" in content[:65536]:
        raise TrainingFileError("无法识别的文件格式，请上传 CSV 或 XLSX 文件",
                                code="TRAINING_FORMAT_UNSUPPORTED", status=415)
    else:
        encoding, records = _csv_records(content)
        table = Table("csv", encoding, records)
    try:
        _find_header(table)
    except BaseException:
        table.close()
        raise
    return table


def _find_header(table: Table) -> None:
    """The first row (of the first ten) naming at least two known columns."""
    found = None
    for line, cells in table.records:
        keys = [_header_key(v) for v in cells]
        if sum(1 for k in keys if k in _ALIASES) >= 2:
            found = line, cells, keys
            break
        if line >= HEADER_SEARCH_ROWS:
            break
    if found is None:
        raise TrainingFileError("未找到表头：前10行中没有包含“姓名”“证件号码”“考核结果”等列名的行",
                                code="TRAINING_HEADER_NOT_FOUND")
    line, cells, keys = found
    for position, key in enumerate(keys):
        name = _ALIASES.get(key)
        if name is None:
            if key:
                table.ignored.append(str(cells[position]).strip())
        elif name in table.index:
            raise TrainingFileError(f"表头中“{COLUMNS[name][0]}”列出现了不止一次（第{line}行）",
                                    code="TRAINING_COLUMN_DUPLICATE")
        else:
            table.index[name] = position
    missing = [n for n in REQUIRED if n not in table.index]
    if missing:
        raise TrainingFileError("缺少必需的列：" + "、".join(f"“{COLUMNS[n][0]}”" for n in missing),
                                code="TRAINING_COLUMNS_MISSING", details={"missing": missing})
    table.header_line = line
