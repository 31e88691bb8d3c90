"""shared/tabular.py: a small CSV or XLSX table found by its Chinese header; a file
that cannot be read is a TableError with a stable code, never another exception."""
import io
import os

import pytest
from openpyxl import Workbook

from shared.tabular import TableError, read_table

COLUMNS = {"name": ("名称", ("名称", "name")), "phone": ("手机", ("手机", "phone")),
           "email": ("邮箱", ("邮箱", "email"))}


def test_a_gbk_csv_under_a_title_row():
    content = "联系人名单\n名称 ,手机（必填）,备注\n沧县局,13900000001,x\n,,\n青县局,,\n".encode("gb18030")
    content = content.replace("（必填）".encode("gb18030"), "(必填)".encode("gb18030"))
    table = read_table(content, COLUMNS, ("name",), prefix="T")
    assert (table.file_format, table.encoding, table.header_line, table.ignored) == ("csv", "gb18030", 2, ["备注"])
    assert list(table.rows()) == [(3, {"name": "沧县局", "phone": "13900000001"}), (5, {"name": "青县局", "phone": ""})]


def test_an_xlsx_with_a_phone_stored_as_a_number():
    book = Workbook()
    book.active.append(["名称", "手机"])
    book.active.append(["沧县局", 13900000001.0])
    out = io.BytesIO()
    book.save(out)
    assert list(read_table(out.getvalue(), COLUMNS, ("name",), prefix="T").rows()) == [
        (2, {"name": "沧县局", "phone": "13900000001"})]


@pytest.mark.parametrize("content, code", [
    (b"", "T_EMPTY"), (b"\xd0\xcf\x11\xe0rest", "T_FORMAT_UNSUPPORTED"), (b"a\x00b", "T_FORMAT_UNSUPPORTED"),
    (b"PK\x03\x04junk", "T_FILE_UNREADABLE"), (b"x,y\n1,2\n", "T_HEADER_NOT_FOUND"),
    ("名称,名称,手机\n".encode(), "T_COLUMN_DUPLICATE"), ("手机,邮箱\n".encode(), "T_COLUMNS_MISSING"),
    (b'"\xe5\x90\x8d\xe7\xa7\xb0,"x\n', "T_HEADER_NOT_FOUND"),
])
def test_unreadable_files_say_why(content, code):
    with pytest.raises(TableError) as err:
        read_table(content, COLUMNS, ("name",), prefix="T")
    assert err.value.code == code


def test_random_bytes_are_a_table_error_or_a_table():
    for seed in range(200):
        content = os.urandom(64 + seed) if seed % 2 else b"PK\x03\x04" + os.urandom(64 + seed)
        try:
            read_table(content, COLUMNS, ("name",), prefix="T")
        except TableError:
            pass
