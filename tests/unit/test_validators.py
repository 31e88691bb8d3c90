"""Validators for USCC, person IDs and county codes, and the `cqo check` CLI."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cqo.cli import app
from shared.errors import Conflict, ValidationFailed
from shared.validators import (
    ID_TYPE_NAMES,
    Jurisdiction,
    complete_uscc,
    make_resident_id,
    make_uscc,
    org_check_char,
    uscc_check_char,
    validate_person_id,
    validate_resident_id,
    validate_uscc,
)
from shared.validators import person_id as pid
from shared.validators import uscc as uscc_mod

CHARSET = uscc_mod.CHARSET
DIGITS = "0123456789"
TODAY = date(2024, 6, 1)  # fixed "today" so generated birth dates stay valid


def fails(func, *args, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        func(*args, **kwargs)
    return info.value


# --- strategies -------------------------------------------------------------

usccs = st.builds(
    make_uscc,
    prefix_registration=st.sampled_from(CHARSET),
    type_=st.sampled_from(CHARSET),
    division=st.text(DIGITS, min_size=6, max_size=6),
    org_body=st.text(CHARSET, min_size=8, max_size=8),
)
resident_ids = st.builds(
    make_resident_id,
    division=st.text(DIGITS, min_size=6, max_size=6),
    birthdate=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    seq=st.integers(0, 999),
)


def substitute(code: str, pos: int, char: str) -> str:
    return code[:pos] + char + code[pos + 1:]


def transpose(code: str, pos: int) -> str:
    return code[:pos] + code[pos + 1] + code[pos] + code[pos + 2:]


# --- USCC: algorithm and known examples ---------------------------------------

def test_uscc_weights_are_powers_of_three_mod_31():
    assert uscc_mod.WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(CHARSET) == 31 and not set("IOZSV") & set(CHARSET)


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",  # the widely cited example
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "914403001922038216",  # 华为技术有限公司
    "92141127MA0KD1Y64A",  # an individual business (92) with an MA-range org code
])
def test_known_good_uscc(code):
    assert validate_uscc(code) == code


def test_uscc_is_normalised():
    assert validate_uscc("  91350100m000100y43\n") == "91350100M000100Y43"
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"  # full-width


def test_org_code_check_of_known_example():
    assert org_check_char("M000100Y") == "4"
    assert org_check_char("70846113") == "6"


@pytest.mark.parametrize("code, error, fragments", [
    ("91350100M000100Y4", "USCC_LENGTH", ["应为18位", "实际为17位"]),
    ("", "USCC_LENGTH", ["应为18位", "为空"]),
    ("9135I100M000100Y43", "USCC_CHARACTER", ["第5位", "“I”", "不使用I、O、Z、S、V"]),
    ("91350100M000100Y4-", "USCC_CHARACTER", ["第18位", "“-”"]),
    ("91A50100M000100Y43", "USCC_DIVISION", ["第3至8位", "第3位", "“A”"]),
    ("91350100M000100Y53", "USCC_ORG_CODE_CHECK", ["组织机构代码", "应为“4”", "实际为“5”"]),
    ("91350100M000100Y44", "USCC_CHECK", ["校验码", "应为“3”", "实际为“4”"]),
])
def test_known_bad_uscc(code, error, fragments):
    exc = fails(validate_uscc, code, field="uscc")
    assert exc.code == error and exc.field == "uscc"
    for fragment in fragments:
        assert fragment in exc.message


def test_uscc_check_reports_expected_and_found_in_details():
    exc = fails(validate_uscc, "91350100M000100Y44")
    assert exc.details == {"position": 18, "expected": "3", "found": "4"}


def test_uscc_not_a_string():
    assert fails(validate_uscc, 91350100).code == "USCC_LENGTH"
    assert fails(validate_uscc, None).code == "USCC_LENGTH"


def test_real_pre_standard_uscc_needs_a_documented_exception():
    # A real Xiamen company code issued before the standard settled; its check
    # character does not satisfy GB 32100 (should be J).
    real = "91350203M0001FUE2P"
    exc = fails(validate_uscc, real)
    assert exc.code == "USCC_CHECK" and "应为“J”" in exc.message
    assert validate_uscc(real.lower(), exceptions={real}) == real
    # An exception waives only the check characters, not the structure.
    assert fails(validate_uscc, "9135020IM0001FUE2P", exceptions={real}).code == "USCC_CHARACTER"


def test_make_and_complete_uscc():
    code = make_uscc()
    assert code.startswith("91130921MA0XXXXX") and validate_uscc(code) == code
    assert complete_uscc(code[:16]) == code == complete_uscc(code[:17])
    assert uscc_check_char(code[:17]) == code[17]
    with pytest.raises(ValueError):
        make_uscc(org_body="MA0XXXXI")  # I is not in the USCC alphabet
    with pytest.raises(ValueError):
        make_uscc(division="13092A")


# --- USCC: error detection --------------------------------------------------

def test_mod31_detects_all_substitutions_and_adjacent_transpositions_by_construction():
    # The final check makes sum(w_i * v_i) ≡ 0 (mod 31) with weight 1 on the check
    # character. 31 is prime, so a change is missed only if its weighted delta is 0:
    weights = (*uscc_mod.WEIGHTS, 1)
    values = range(31)
    for w in weights:  # substitution a -> b at one position: w * (b - a)
        assert all(w * (b - a) % 31 for a in values for b in values if a != b)
    for w1, w2 in zip(weights, weights[1:]):  # swap a, b: (w1 - w2) * (a - b)
        assert all((w1 - w2) * (a - b) % 31 for a in values for b in values if a != b)


def test_org_code_check_alone_misses_some_substitutions_but_mod31_catches_them():
    # GB 11714 works mod 11 but its characters take values up to 35, so e.g. 0 -> B
    # (value 11) leaves the organisation-code check intact; the mod-31 check still
    # rejects the code, as the property tests below require.
    code = make_uscc(org_body="M0001000")
    mutated = substitute(code, 9, "B")
    assert org_check_char(mutated[8:16]) == mutated[16]
    assert fails(validate_uscc, mutated).code == "USCC_CHECK"


@given(usccs)
def test_generated_uscc_is_valid(code):
    assert validate_uscc(code) == code


@given(st.data())
def test_uscc_single_substitution_is_rejected(data):
    code = data.draw(usccs)
    pos = data.draw(st.integers(0, 17))
    char = data.draw(st.sampled_from([c for c in CHARSET if c != code[pos]]))
    exc = fails(validate_uscc, substitute(code, pos, char))
    assert exc.code in {"USCC_DIVISION", "USCC_ORG_CODE_CHECK", "USCC_CHECK"}


@given(st.data())
def test_uscc_adjacent_transposition_is_rejected(data):
    code = data.draw(usccs)
    candidates = [i for i in range(17) if code[i] != code[i + 1]]
    assume(candidates)  # nothing to swap when all characters are equal (000000000000000000)
    pos = data.draw(st.sampled_from(candidates))
    exc = fails(validate_uscc, transpose(code, pos))
    assert exc.code in {"USCC_DIVISION", "USCC_ORG_CODE_CHECK", "USCC_CHECK"}


@pytest.mark.parametrize("code", ["91350100M000100Y43", "914403001922038216"])
def test_every_mutation_of_a_real_uscc_is_rejected(code):
    for pos in range(18):
        for char in CHARSET.replace(code[pos], ""):
            fails(validate_uscc, substitute(code, pos, char))
    for pos in range(17):
        if code[pos] != code[pos + 1]:
            fails(validate_uscc, transpose(code, pos))


# --- resident ID --------------------------------------------------------------

def test_gb11643_mod11_detects_all_substitutions_and_adjacent_transpositions():
    # The check value v (X = 10) satisfies sum(w_i * d_i) + v ≡ 1 (mod 11).
    weights = (*pid.WEIGHTS, 1)
    for i, w in enumerate(weights):
        values = range(11) if i == 17 else range(10)  # only the check may be X
        assert all(w * (b - a) % 11 for a in values for b in values if a != b)
    for w1, w2 in zip(weights, weights[1:]):  # a digit swapped with an X is a character error
        assert all((w1 - w2) * (a - b) % 11 for a in range(10) for b in range(10) if a != b)


@pytest.mark.parametrize("number", [
    "11010519491231002X",  # the example in GB 11643-1999
    "11010519491231002x",
    " 11010519491231002X\n",
])
def test_known_good_resident_id(number):
    assert validate_resident_id(number) == "11010519491231002X"


@pytest.mark.parametrize("number, error, fragments", [
    ("11010519491231002", "ID_LENGTH", ["应为18位", "实际为17位"]),
    ("110105491231002", "ID_LENGTH", ["实际为15位", "15位旧号码已停止使用"]),
    ("1101051949A231002X", "ID_CHARACTER", ["第11位", "应为数字"]),
    ("11010519491231002Y", "ID_CHARACTER", ["第18位", "数字或X"]),
    ("110105194902301234", "ID_BIRTH_DATE", ["第7至14位", "有效的出生日期"]),
    ("440524188001010014", "ID_BIRTH_DATE", ["第7至14位", "早于1900年"]),  # GB 11643 example
    ("110105194912310021", "ID_CHECK", ["第18位校验码", "不符"]),
])
def test_known_bad_resident_id(number, error, fragments):
    exc = fails(validate_resident_id, number, TODAY)
    assert exc.code == error
    for fragment in fragments:
        assert fragment in exc.message


def test_resident_id_check_details():
    exc = fails(validate_resident_id, "110105194912310021")
    assert exc.details == {"position": 18}  # neither the right nor the typed character


def test_birth_date_in_the_future_is_rejected():
    number = make_resident_id("130921", date(2024, 6, 2), 1)
    exc = fails(validate_resident_id, number, TODAY)
    assert exc.code == "ID_BIRTH_DATE" and "晚于今天" in exc.message
    assert validate_resident_id(make_resident_id("130921", TODAY, 1), TODAY)
    assert validate_resident_id(make_resident_id("130921", date(1900, 1, 1), 1))


def test_make_resident_id_accepts_string_dates():
    assert make_resident_id("110105", "19491231", 2) == "11010519491231002X"


@given(resident_ids)
def test_generated_resident_id_is_valid(number):
    assert validate_resident_id(number, TODAY) == number


@given(st.data())
def test_resident_id_single_substitution_is_rejected(data):
    number = data.draw(resident_ids)
    pos = data.draw(st.integers(0, 17))
    char = data.draw(st.sampled_from([c for c in DIGITS + "X" if c != number[pos]]))
    exc = fails(validate_resident_id, substitute(number, pos, char), TODAY)
    assert exc.code in {"ID_CHARACTER", "ID_BIRTH_DATE", "ID_CHECK"}


@given(st.data())
def test_resident_id_adjacent_transposition_is_rejected(data):
    number = data.draw(resident_ids)
    candidates = [i for i in range(17) if number[i] != number[i + 1]]
    assume(candidates)  # nothing to swap when all characters are equal (000000000000000000)
    pos = data.draw(st.sampled_from(candidates))
    exc = fails(validate_resident_id, transpose(number, pos), TODAY)
    assert exc.code in {"ID_CHARACTER", "ID_BIRTH_DATE", "ID_CHECK"}


def test_every_mutation_of_the_standard_example_is_rejected():
    number = "11010519491231002X"
    for pos in range(18):
        for char in (DIGITS + "X").replace(number[pos], ""):
            fails(validate_resident_id, substitute(number, pos, char), TODAY)
    for pos in range(17):
        if number[pos] != number[pos + 1]:
            fails(validate_resident_id, transpose(number, pos), TODAY)


# --- other person IDs ---------------------------------------------------------

HK_RESIDENCE = make_resident_id("810000", date(1990, 1, 1), 12)
FOREIGN_2023 = make_resident_id("911840", date(1985, 5, 5), 7)  # 9 + province + nationality


def wrong_check(number: str) -> str:
    return number[:17] + ("1" if number[17] != "1" else "2")


@pytest.mark.parametrize("id_type, number", [
    ("resident_id", "11010519491231002X"),
    ("passport", "E12345678"),
    ("passport", "EA1234567"),
    ("passport", "c01x00t47"),
    ("hmt_permit", "H12345678"),
    ("hmt_permit", "M1234567801"),
    ("hmt_permit", "12345678"),  # 台湾居民来往大陆通行证
    ("hmt_permit", HK_RESIDENCE),
    ("hmt_permit", make_resident_id("830000", date(1970, 12, 31), 3)),
    ("foreign_permanent", "USA330000000001"),
    ("foreign_permanent", FOREIGN_2023),
])
def test_known_good_person_ids(id_type, number):
    assert validate_person_id(id_type, number) == number.upper()


@pytest.mark.parametrize("id_type, number, error", [
    ("passport", "E12", "ID_LENGTH"),
    ("passport", "E1234-567", "ID_CHARACTER"),
    ("passport", "ABCDEFG", "ID_FORMAT"),
    ("hmt_permit", "H1234567", "ID_FORMAT"),
    ("hmt_permit", "X12345678", "ID_FORMAT"),
    ("hmt_permit", "11010519491231002X", "ID_FORMAT"),  # a mainland ID is not a residence permit
    ("hmt_permit", wrong_check(HK_RESIDENCE), "ID_CHECK"),
    ("foreign_permanent", "US1330000000001", "ID_FORMAT"),
    ("foreign_permanent", "11010519491231002X", "ID_FORMAT"),
    ("foreign_permanent", wrong_check(FOREIGN_2023), "ID_CHECK"),
    ("foreign_permanent", "USA3300", "ID_LENGTH"),
    ("driving_licence", "whatever", "ID_TYPE_UNKNOWN"),
])
def test_known_bad_person_ids(id_type, number, error):
    assert fails(validate_person_id, id_type, number).code == error


def test_id_type_names_are_the_dispatcher_types():
    assert set(ID_TYPE_NAMES) == {"resident_id", "passport", "hmt_permit", "foreign_permanent"}
    exc = fails(validate_person_id, "driving_licence", "x")
    assert all(name in exc.message for name in ID_TYPE_NAMES)


# --- divisions ----------------------------------------------------------------

def test_default_jurisdiction_is_cangzhou():
    cangzhou = Jurisdiction.default()
    assert len(cangzhou) == 19
    kinds = [d.kind for d in cangzhou]
    assert kinds.count("official") == 16 and kinds.count("functional") == 3
    assert cangzhou.validate("130921").name == "沧县"
    assert cangzhou.name("130973") == "沧州渤海新区"
    assert cangzhou.validate(" 130984 ").kind == "official"
    assert [d.code for d in cangzhou] == sorted(d.code for d in cangzhou)
    assert "130930" in cangzhou and "130999" not in cangzhou


def test_unknown_county():
    exc = fails(Jurisdiction.default().validate, "130999", field="county")
    assert exc.code == "COUNTY_UNKNOWN" and exc.field == "county"
    assert exc.message == "县级区划代码“130999”不属于本辖区"


@pytest.mark.parametrize("code", ["13092", "1309210", "13092A", "", 130921, None])
def test_county_format(code):
    assert fails(Jurisdiction.default().validate, code).code == "COUNTY_FORMAT"


def test_county_exception_registration():
    cangzhou = Jurisdiction.default()
    division = cangzhou.add_exception("130901", "沧州市市辖区", "2023年备案材料使用的旧代码，经市局核实")
    assert division.kind == "exception" and division.reason
    assert cangzhou.validate("130901") == division and len(cangzhou) == 20
    assert "130901" not in Jurisdiction.default()  # each default() is a fresh instance
    with pytest.raises(Conflict) as info:
        cangzhou.add_exception("130921", "沧县", "重复")
    assert info.value.code == "COUNTY_EXCEPTION_EXISTS"
    assert fails(cangzhou.add_exception, "130905", "某区", " ").code == "COUNTY_EXCEPTION_INCOMPLETE"
    assert fails(cangzhou.add_exception, "13090", "某区", "理由").code == "COUNTY_FORMAT"


def test_custom_csv_keeps_codes_as_strings(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("code,name,kind,reason\n"
                    "010100,测试区,official,\n"
                    "130200,唐山市旧代码,exception,历史数据\n", encoding="utf-8-sig")
    custom = Jurisdiction.from_csv(path)
    assert len(custom) == 2
    assert custom.validate("010100").code == "010100"
    assert custom.validate("130200").reason == "历史数据"
    assert fails(custom.validate, "130921").code == "COUNTY_UNKNOWN"


@pytest.mark.parametrize("content", [
    "code,name\n130921,沧县\n",
    "code,name,kind\n130921,沧县,official\n130921,沧县,official\n",
    "code,name,kind\n130921,沧县,city\n",
    "code,name,kind\n13092,沧县,official\n",
])
def test_bad_csv_is_a_configuration_error(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="bad.csv"):
        Jurisdiction.from_csv(path)


# --- CLI ----------------------------------------------------------------------

runner = CliRunner()


def test_cli_check_uscc():
    result = runner.invoke(app, ["check", "uscc", "91350100M000100Y43"])
    assert result.exit_code == 0 and result.stdout == "valid\n"
    result = runner.invoke(app, ["check", "uscc", "91350100M000100Y44"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "应为“3”，实际为“4”" in result.stderr


def test_cli_check_id():
    result = runner.invoke(app, ["check", "id", "11010519491231002X"])
    assert result.exit_code == 0 and result.stdout == "valid\n"
    result = runner.invoke(app, ["check", "id", "110105194912310021"])
    assert result.exit_code == 1 and "第18位校验码与前17位不符" in result.stderr
    result = runner.invoke(app, ["check", "id", "E12345678", "--type", "passport"])
    assert result.exit_code == 0 and result.stdout == "valid\n"
    result = runner.invoke(app, ["check", "id", "E12345678", "--type", "visa"])
    assert result.exit_code == 1 and "未知的证件类型" in result.stderr


def test_cli_check_county(tmp_path):
    assert runner.invoke(app, ["check", "county", "130921"]).exit_code == 0
    result = runner.invoke(app, ["check", "county", "130999"])
    assert result.exit_code == 1 and "不属于本辖区" in result.stderr
    path = tmp_path / "j.csv"
    path.write_text("code,name,kind\n130999,测试县,official\n", encoding="utf-8")
    assert runner.invoke(app, ["check", "county", "130999", "--csv", str(path)]).exit_code == 0


def test_cli_without_arguments_shows_help():
    result = runner.invoke(app, ["check"])
    assert "uscc" in result.output and "id" in result.output
