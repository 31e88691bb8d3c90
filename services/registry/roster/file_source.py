"""The roster file (art. 4): its format and encoding, read as CSV blocks of whole lines or spreadsheet rows."""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from shared.errors import CqoError


BLOCK_BYTES = 256 * 1024     # CSV checked together (a bad row sends its block row by row)
BLOCK_LINES = 2_000          # spreadsheet rows read together
PIECE_BYTES = 4 << 20        # bytes read from the file at a time
HEADER_SEARCH_ROWS = 10      # a title row or two above the header is common


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


def detect_encoding(head: bytes) -> str:
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


class Source:
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


class CsvSource(Source):
    """UTF-8 bytes of the file (GBK and UTF-16 are converted; undecodable bytes survive
    as surrogate escapes and get their row rejected), cut into blocks of whole records."""

    file_format = "csv"

    def __init__(self, stream: BinaryIO, head: bytes, on_raw: Callable[[bytes], None]):
        self.stream, self.on_raw = stream, on_raw
        self.encoding = detect_encoding(head)
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


class XlsxSource(Source):
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
                content_type: str = "") -> Source:
    head = stream.read(65536)
    if not head:
        raise RosterFileError("文件为空", code="ROSTER_EMPTY")
    file_format = detect_format(head, filename, content_type)
    stream.seek(0)
    if file_format == "xlsx":
        return XlsxSource(stream, on_raw)
    return CsvSource(stream, head, on_raw)
