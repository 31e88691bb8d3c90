"""A small uploaded table (CSV or XLSX) read row by row for an import: its format from
its first bytes, its encoding (UTF-8 with or without BOM, else GB 18030 as Excel on
Chinese Windows writes it), comma or tab separated, a header found among the first rows
by column names in Chinese or by field code, in any order. Line numbers are those a
spreadsheet shows. A file that cannot be read as a whole raises `TableError` (nothing
imported) with a stable code under the caller's prefix."""
from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from shared.errors import CqoError

HEADER_SEARCH_ROWS = 10
XLSX_MAGIC, OLE_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0"


class TableError(CqoError):
    code = "FILE_INVALID"
    status = 422


def header_key(value) -> str:
    """A column name as compared: width-normalised, no spaces, lower case, without a
    required-marker (`*`, "（必填）")."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value or "")).replace("\ufeff", ""))
    return re.sub(r"\((必填|选填|可选)\)$", "", text.strip("*").lower())


def cell_text(value) -> str:
    """A cell as text: a number Excel stored for a phone (13900000001.0) loses its ".0"."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


@dataclass
class Table:
    file_format: str
    encoding: str | None
    header_line: int
    index: dict[str, int]
    ignored: list[str] = field(default_factory=list)
    records: Iterator[tuple[int, list]] = iter(())

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, {field: text}) of each non-empty row below the header."""
        for line, cells in self.records:
            row = {name: cell_text(cells[i]) if i < len(cells) else "" for name, i in self.index.items()}
            if any(row.values()):
                yield line, row


def _csv(content: bytes, prefix: str) -> tuple[str, Iterator[tuple[int, list]]]:
    if content.startswith(b"\xef\xbb\xbf"):
        encoding, text = "utf-8-sig", content[3:].decode("utf-8", "replace")
    else:
        for encoding in ("utf-8", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise TableError("无法识别文件的字符编码，请另存为 UTF-8 编码的 CSV 或 XLSX 文件",
                             code=f"{prefix}_ENCODING", status=400)
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if first.count("\t") > first.count(",") else ",")
    try:
        return encoding, iter([(reader.line_num, cells) for cells in reader])
    except csv.Error:
        raise TableError(f"CSV 第{reader.line_num}行格式有误（引号不成对或行内有单独的回车符）",
                         code=f"{prefix}_CSV_MALFORMED", status=400) from None


def _xlsx(content: bytes, prefix: str) -> Iterator[tuple[int, list]]:
    from openpyxl import load_workbook

    try:  # small files (contact lists): read at once, the workbook closed here
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            rows = [(n, list(cells)) for n, cells in enumerate(book.worksheets[0].iter_rows(values_only=True), 1)]
        finally:
            book.close()
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError) as exc:
        raise TableError(f"XLSX 文件无法读取（{type(exc).__name__}），请确认文件完整且未加密",
                         code=f"{prefix}_FILE_UNREADABLE", status=400) from None
    return iter(rows)


def read_table(content: bytes, columns: Mapping[str, tuple[str, tuple[str, ...]]], required: tuple[str, ...],
               *, prefix: str) -> Table:
    """`columns`: field -> (its Chinese name, accepted spellings). The header is the
    first of the first ten rows naming at least two known columns."""
    if not content.strip():
        raise TableError("文件为空", code=f"{prefix}_EMPTY")
    if content.startswith(OLE_MAGIC):
        raise TableError("不支持旧版 Excel（.xls）文件，请另存为 .xlsx 或 CSV 后再导入",
                         code=f"{prefix}_FORMAT_UNSUPPORTED", status=415)
    if content.startswith(XLSX_MAGIC):
        file_format, encoding, records = "xlsx", None, _xlsx(content, prefix)
    elif b"\x00" in content[:65536]:
        raise TableError("无法识别的文件格式，请上传 CSV 或 XLSX 文件", code=f"{prefix}_FORMAT_UNSUPPORTED",
                         status=415)
    else:
        file_format, (encoding, records) = "csv", _csv(content, prefix)
    aliases = {header_key(a): name for name, (_, spellings) in columns.items() for a in spellings}
    for line, cells in records:
        keys = [header_key(v) for v in cells]
        if sum(1 for k in keys if k in aliases) >= 2:
            break
        if line >= HEADER_SEARCH_ROWS:
            cells = None
            break
    else:
        cells = None
    if cells is None:
        names = "“" + "”“".join(columns[n][0] for n in required) + "”"
        raise TableError(f"未找到表头：前{HEADER_SEARCH_ROWS}行中没有包含{names}等列名的行",
                         code=f"{prefix}_HEADER_NOT_FOUND")
    table = Table(file_format, encoding, line, {}, records=records)
    for position, key in enumerate(keys):
        name = aliases.get(key)
        if name is None:
            if key:
                table.ignored.append(str(cells[position]).strip())
        elif name in table.index:
            raise TableError(f"表头中“{columns[name][0]}”列出现了不止一次（第{line}行）",
                             code=f"{prefix}_COLUMN_DUPLICATE")
        else:
            table.index[name] = position
    missing = [n for n in required if n not in table.index]
    if missing:
        raise TableError("缺少必需的列：" + "、".join(f"“{columns[n][0]}”" for n in missing),
                         code=f"{prefix}_COLUMNS_MISSING", details={"missing": missing})
    return table
