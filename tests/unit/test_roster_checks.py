"""Roster import checks (services/registry/roster/importing.py) without a database: the fast
column-wise path must accept only what the row-by-row checker accepts, with the same
canonical line; USCC check characters; headers, encodings, formats; coverage counts."""
import codecs
import csv
import io
import itertools
import re

import pytest
from hypothesis import given, settings, strategies as st

from services.registry import active_cqo
from services.registry.roster import coverage, checks, file_source
from services.registry.roster.checks import BlockChecker, RowChecker
from services.registry.roster.layout import Columns
from services.registry.roster.file_source import RosterFileError, detect_format
from shared.validators.uscc import uscc_is_valid, usccs_are_valid
from shared.errors import ValidationFailed
from tests.support.factories import uscc_for
from shared.validators.uscc import CHARSET, complete_uscc, validate_uscc

HEADER = ["统一社会信用代码", "企业名称", "县级区划代码", "企业类别", "年度", "联系人", "联系电话", "电子邮箱"]


def columns(header=HEADER, year_given=False) -> Columns:
    return Columns.find(iter([(1, header)]), year_given=year_given)


def accepted_by_validate_uscc(code: str) -> bool:
    try:
        return validate_uscc(code) == code
    except ValidationFailed:
        return False


# --- USCC ----------------------------------------------------------------------------------
valid_bodies = st.tuples(st.text(CHARSET, min_size=2, max_size=2), st.text("0123456789", min_size=6, max_size=6),
                         st.text(CHARSET, min_size=8, max_size=8)).map(lambda t: complete_uscc("".join(t)))
mutated = st.tuples(valid_bodies, st.integers(0, 17), st.sampled_from(CHARSET + "IOZSVa -")).map(
    lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:])
any_codes = st.one_of(valid_bodies, mutated, st.text(CHARSET + "IOZSV", min_size=16, max_size=19))


@given(any_codes)
@settings(max_examples=600)
def test_fast_uscc_checks_agree_with_the_validator(code):
    expected = accepted_by_validate_uscc(code)
    assert uscc_is_valid(code) == expected
    assert usccs_are_valid([code.encode()]) == expected


@given(st.lists(valid_bodies, min_size=1, max_size=40), any_codes, st.integers(0, 40))
@settings(max_examples=300)
def test_a_column_of_uscc_is_valid_only_if_every_code_is(good, other, at):
    codes = [c.encode() for c in good]
    assert usccs_are_valid(codes)
    codes.insert(min(at, len(codes)), other.encode())
    assert usccs_are_valid(codes) == accepted_by_validate_uscc(other)


# --- the fast path is the row-by-row path, only faster -------------------------------------------
CLEAN = {
    "name": ["沧州测试机械有限公司", "河北某某化工股份有限公司", "ABC 科技（沧州）有限公司"],
    "county": ["130921", "130922", "130981", "130971"],
    "category": ["规模以上工业", "规模以上服务业", "industrial_above_scale", "规上服务业企业"],
    "year": ["2026"],
    "contact": ["张三", "", "李四"],
    "phone": ["13800000000", "0317-1234567", ""],
    "email": ["a@example.cn", "", "zhang.san+1@mail.example.com.cn"],
}
DIRTY = {
    "name": [" 前导空格有限公司", "尾随全角空格有限公司\u3000", "厂", "含\t制表符有限公司", "含\"引号\"有限公司",
             "含,逗号有限公司", "\xa0不间断空格有限公司", ""],
    "county": ["999999", "13092", "１３０９２１", " 130921", ""],
    "category": ["其他", "规模以上工业 ", "规模以上 工业", ""],
    "year": ["1999", "2026年", "２０２６", "20x6", "2025", ""],
    "contact": ["x" * 101, " 王五", "赵\n六"],
    "phone": ["12", "1-2-3", "（0317）1234567", "+86 13800000000", "１３８００００００００", "abcde"],
    "email": ["bad@", "a@b", "A@EXAMPLE.CN ", "ａ@example.cn", "x@-bad.cn", "a@b..cn"],
    "uscc": ["91130921m00000019x", " 91130921M00000019X", "91130921M00000019Y", "911309210000000000"],
}
FIELDS = ("uscc", "name", "county", "category", "year", "contact", "phone", "email")


@st.composite
def rows(draw, dirty_chance: float):
    row = {}
    n = draw(st.integers(0, 10_000))
    row["uscc"] = uscc_for("130921", n)
    for field in FIELDS:
        pool = DIRTY.get(field) if draw(st.floats(0, 1)) < dirty_chance else None
        if pool:
            row[field] = draw(st.sampled_from(pool))
        elif field != "uscc":
            row[field] = draw(st.sampled_from(CLEAN[field]))
    return [row[f] for f in FIELDS]


def block(rows_: list[list[str]], ending="\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=ending).writerows(rows_)
    return buffer.getvalue().encode("utf-8")


def canonical(values: tuple) -> bytes:
    return checks.CsvLine().line(values)


@given(st.lists(rows(0.15), min_size=1, max_size=30), st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=400)
def test_block_checker_accepts_only_what_the_row_checker_accepts_identically(sample, ending):
    cols = columns()
    fast = BlockChecker(cols, None, ",").check(block(sample, ending))
    if fast is None:
        return
    checker = RowChecker(cols, None)
    assert fast.rows == len(sample)
    lines = fast.lines.split(b"\n")
    assert lines.pop() == b""
    for line, row in zip(lines, sample, strict=True):
        values, reasons, _ = checker.check(row)
        assert values is not None, (row, reasons)
        assert canonical(values) == line + b"\n"
        assert values[4] == fast.year


@given(st.lists(rows(0.0), min_size=1, max_size=30, unique_by=lambda r: r[0]), st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=200)
def test_block_checker_takes_clean_blocks(sample, ending):
    fast = BlockChecker(columns(), None, ",").check(block(sample, ending))
    assert fast is not None
    assert [u.decode() for u in fast.usccs] == [r[0] for r in sample]


@pytest.mark.parametrize("present", list(itertools.product((True, False), repeat=3)))
@given(sample=st.lists(rows(0.0), min_size=1, max_size=30, unique_by=lambda r: r[0]),
       ending=st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=60)
def test_block_checker_gives_a_line_per_row_whichever_optional_columns_are_absent(present, sample, ending):
    keep = [True] * 5 + list(present)  # 联系人, 联系电话, 电子邮箱 present or not
    cols = columns(list(itertools.compress(HEADER, keep)))
    cells = [list(itertools.compress(r, keep)) for r in sample]
    fast = BlockChecker(cols, None, ",").check(block(cells, ending))
    assert fast is not None and fast.rows == len(sample)
    checker = RowChecker(cols, None)
    assert fast.lines == b"".join(canonical(checker.check(r)[0]) for r in cells)


def test_block_checker_fills_the_given_year_and_maps_categories():
    header = [h for h in HEADER if h != "年度"]
    cols = columns(header, year_given=True)
    fast = BlockChecker(cols, 2027, ",").check(
        block([[uscc_for("130921", 1), "沧州测试机械有限公司", "130921", "规上工业", "", "", ""]]))
    assert fast.year == 2027
    assert fast.lines.decode() == f"{uscc_for('130921', 1)},沧州测试机械有限公司,130921,industrial_above_scale,2027,,,\n"


def test_a_stray_carriage_return_or_a_blank_line_sends_the_block_row_by_row():
    good = [uscc_for("130921", 1), "沧州测试机械有限公司", "130921", "规上工业", "2026", "", "", ""]
    checker = BlockChecker(columns(), None, ",")
    assert checker.check(block([good])) is not None
    assert checker.check(block([good]).replace("公司".encode(), "公\r司".encode())) is None
    assert checker.check(block([good]) + b"\n" + block([good])) is None


# the e-mail pattern uses possessive quantifiers for speed; it is the plain pattern's language
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
                          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+")


@given(st.text("ab1.-@_%+", max_size=14))
@settings(max_examples=2000)
def test_the_fast_email_pattern_is_the_plain_one(text):
    assert bool(checks.EMAIL.fullmatch(text)) == bool(_PLAIN_EMAIL.fullmatch(text))
    assert bool(BlockChecker._EMAILS.fullmatch(text.encode() + b"\n")) == bool(_PLAIN_EMAIL.fullmatch(text)) \
        or text == ""


# --- rows -------------------------------------------------------------------------------------
def check(row, year=None):
    return RowChecker(columns(), year).check(row)


def test_row_checker_normalises_and_explains():
    values, reasons, _ = check([" 91130921m00000019x ", "沧州测试机械有限公司\u3000", "１３０９２１", "规模以上服务业企业",
                                "2026年", "", "（0317）1234567", "ａ@example.cn"])
    assert reasons == []
    assert values == ("91130921M00000019X", "沧州测试机械有限公司", "130921", "service_above_scale", 2026,
                      None, "(0317)1234567", "a@example.cn")
    _, reasons, _ = check(["91130921M00000019Y", "", "999999", "其他", "1999", "x" * 101, "12", "bad@"])
    assert len(reasons) == 8
    assert any("校验码" in r for r in reasons) and "企业名称不能为空" in reasons
    assert any("不属于本辖区" in r for r in reasons)


def test_a_given_year_fills_blanks_and_rejects_other_years():
    row = [uscc_for("130921", 5), "沧州测试机械有限公司", "130921", "规模以上工业", "", "", "", ""]
    assert check(row, 2026)[0][4] == 2026
    _, reasons, _ = check(row[:4] + ["2025"] + row[5:], 2026)
    assert reasons == ["年度“2025”与指定的导入年度2026不一致"]


def test_a_uscc_stored_as_a_number_is_explained():
    _, reasons, _ = check([9.11309210000001e17, "沧州测试机械有限公司", 130921, "规模以上工业", 2026.0, None, None, None])
    assert reasons and "保存为数字" in reasons[0]


# --- headers, encodings, formats ---------------------------------------------------------------
def test_headers_in_chinese_or_english_below_a_title_row():
    found = Columns.find(iter([(1, ["2026年规上企业名录"]), (2, ["*统一社会信用代码", "企业名称（必填）", "所属县区代码",
                                                             "企业类别", "年度", "序号"])]), year_given=False)
    assert found.header_line == 2 and found.ignored == ["序号"]
    assert found.index == {"uscc": 0, "name": 1, "county": 2, "category": 3, "year": 4}
    english = Columns.find(iter([(1, ["uscc", "name", "county", "category", "year", "email"])]), False)
    assert english.index["email"] == 5


@pytest.mark.parametrize("header,code", [
    (["统一社会信用代码", "企业名称", "县级区划代码", "企业类别"], "ROSTER_COLUMNS_MISSING"),
    (["统一社会信用代码", "企业名称", "县级区划代码", "企业类别", "年度", "名称"], "ROSTER_COLUMN_DUPLICATE"),
    (["a", "b", "c"], "ROSTER_HEADER_NOT_FOUND"),
])
def test_header_problems_stop_the_whole_file(header, code):
    with pytest.raises(RosterFileError) as err:
        Columns.find(iter([(1, header)]), year_given=False)
    assert err.value.code == code


def test_the_year_column_may_be_missing_when_a_year_is_given():
    header = ["统一社会信用代码", "企业名称", "县级区划代码", "企业类别"]
    assert "year" not in Columns.find(iter([(1, header)]), year_given=True).index


@pytest.mark.parametrize("head,expected", [
    (codecs.BOM_UTF8 + "统一".encode(), "utf-8-sig"), ("统一".encode(), "utf-8"),
    ("统一社会信用代码".encode("gbk"), "gb18030"), ("统一".encode("utf-16"), "utf-16"),
])
def test_encodings(head, expected):
    assert file_source.detect_encoding(head) == expected


def test_formats_by_content_not_by_name():
    assert detect_format(b"PK\x03\x04rest", "x.csv") == "xlsx"
    assert detect_format("统一".encode(), "roster.txt") == "csv"
    for head, code, status in [(b"\xd0\xcf\x11\xe0\xa1\xb1", "ROSTER_FORMAT_UNSUPPORTED", 415),
                               (b"%PDF-1.4", "ROSTER_FORMAT_UNSUPPORTED", 415),
                               (b"a,b\n", "ROSTER_FILE_UNREADABLE", 400)]:
        with pytest.raises(RosterFileError) as err:
            detect_format(head, "roster.xlsx" if status == 400 else "x")
        assert (err.value.code, err.value.status) == (code, status)


# --- coverage arithmetic -------------------------------------------------------------------------
def test_counts_follow_the_lapsed_policy():
    strict = coverage.coverage_counts(10, never_filed=3, lapsed=2, ended=1, lapsed_counts=False)
    assert (strict["covered"], strict["uncovered"], strict["rate"]) == (4, 6, 0.4)
    lenient = coverage.coverage_counts(10, never_filed=3, lapsed=2, ended=1, lapsed_counts=True)
    assert (lenient["covered"], lenient["uncovered"], lenient["rate"]) == (6, 4, 0.6)
    assert coverage.coverage_counts(0, lapsed_counts=False)["rate"] is None


@pytest.mark.parametrize("value,expected", [(None, False), ("true", True), ("0", False), (True, True),
                                            ("no", False)])
def test_policy_from_config(value, expected):
    assert active_cqo.policy_from_config({"LAPSED_COUNTS_AS_COVERAGE": value}) is expected
