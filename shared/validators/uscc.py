"""Unified social credit code (统一社会信用代码), GB 32100-2015.

Layout (1-based positions): 1 registration authority, 2 institution type,
3-8 division code of the registering authority, 9-17 organisation code
(GB 11714: 8 body characters + 1 check character), 18 check character (mod 31).
"""
from __future__ import annotations

import unicodedata
from operator import mul
from collections.abc import Container

from shared.errors import ValidationFailed

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_CLASS = "[0-9A-HJ-NPQRTUWXY]"  # CHARSET as a regular-expression class
# the shape of a normalised code, for documents (OpenAPI) and shape-only filters; the
# check characters are validate_uscc's
PATTERN = f"^{_CLASS}{{2}}[0-9]{{6}}{_CLASS}{{10}}$"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, ... 28
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_LABEL = "统一社会信用代码"


def _normalise(value: object, label: str, code: str, field: str | None) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{label}应为文本", code=code, field=field)
    # NFKC folds full-width characters typed with a Chinese IME (“９１３５…”) to ASCII.
    return unicodedata.normalize("NFKC", value).strip().upper()


def _org_value(char: str) -> int:
    # GB 11714 values letters A=10 .. Z=35 (unlike GB 32100's 31-character alphabet).
    return int(char) if "0" <= char <= "9" else ord(char) - ord("A") + 10


def org_check_char(body: str) -> str:
    """Check character of a GB 11714 organisation code from its 8 body characters."""
    if len(body) != 8 or not all("0" <= c <= "9" or "A" <= c <= "Z" for c in body):
        raise ValueError(f"organisation code body must be 8 digits/uppercase letters: {body!r}")
    check = 11 - sum(w * _org_value(c) for w, c in zip(ORG_WEIGHTS, body)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def uscc_check_char(first17: str) -> str:
    """Check character (position 18) of a USCC from its first 17 characters."""
    if len(first17) != 17 or any(c not in _VALUE for c in first17):
        raise ValueError(f"need 17 characters from {CHARSET}: {first17!r}")
    total = sum(w * _VALUE[c] for w, c in zip(WEIGHTS, first17))
    return CHARSET[(31 - total % 31) % 31]


def complete_uscc(body: str) -> str:
    """Append the missing check character(s) to a 16-char (both checks missing)
    or 17-char (only the final check missing) body."""
    body = body.upper()
    if len(body) == 16:
        body += org_check_char(body[8:16])
    if len(body) != 17:
        raise ValueError(f"body must have 16 or 17 characters: {body!r}")
    return body + uscc_check_char(body)


def make_uscc(prefix_registration: str = "9", type_: str = "1", division: str = "130921",
              org_body: str = "MA0XXXXX") -> str:
    """Build a valid USCC from its parts (test data and benchmark generators)."""
    if len(prefix_registration) != 1 or len(type_) != 1:
        raise ValueError("registration authority and institution type are one character each")
    if len(division) != 6 or not (division.isascii() and division.isdigit()):
        raise ValueError(f"division must be 6 digits: {division!r}")
    code = complete_uscc(prefix_registration + type_ + division + org_body)
    validate_uscc(code)  # e.g. an org body with I/O/S/V/Z is not a USCC
    return code


def validate_uscc(code: str, *, field: str | None = None,
                  exceptions: Container[str] = ()) -> str:
    """Return the normalised code (stripped, upper-case) or raise ValidationFailed.

    `exceptions` holds documented real codes that predate the standard and fail
    its check characters (e.g. some Xiamen codes issued before 2016); they still
    need the right length, alphabet and division digits.
    """
    code = _normalise(code, _LABEL, "USCC_LENGTH", field)
    if len(code) != 18:
        actual = f"实际为{len(code)}位" if code else "实际为空"
        raise ValidationFailed(f"{_LABEL}应为18位，{actual}", code="USCC_LENGTH", field=field,
                               details={"expected": 18, "found": len(code)})
    for pos, char in enumerate(code, start=1):
        if char not in _VALUE:
            raise ValidationFailed(
                f"第{pos}位字符“{char}”不是{_LABEL}允许的字符"
                "（只使用数字和大写英文字母，不使用I、O、Z、S、V）",
                code="USCC_CHARACTER", field=field, details={"position": pos, "found": char})
    for pos, char in enumerate(code[2:8], start=3):
        if not char.isdigit():
            raise ValidationFailed(
                f"第3至8位是登记管理机关行政区划码，应为数字，第{pos}位却是“{char}”",
                code="USCC_DIVISION", field=field, details={"position": pos, "found": char})
    if code in exceptions:
        return code
    org = code[8:17]
    expected = org_check_char(org[:8])
    if org[8] != expected:
        raise ValidationFailed(
            f"第9至17位组织机构代码“{org}”的校验位应为“{expected}”，实际为“{org[8]}”",
            code="USCC_ORG_CODE_CHECK", field=field,
            details={"position": 17, "expected": expected, "found": org[8]})
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise ValidationFailed(
            f"{_LABEL}校验码（第18位）应为“{expected}”，实际为“{code[17]}”",
            code="USCC_CHECK", field=field,
            details={"position": 18, "expected": expected, "found": code[17]})
    return code

_DIGITS = b"0123456789"


# --- USCC check characters, fast -----------------------------------------------------------
_ORG_VALUE = {c: _org_value(c) for c in CHARSET}
_ORG_CHECK = {v: {10: "X", 11: "0"}.get(11 - v, str(11 - v)) for v in range(11)}


def uscc_is_valid(code: str) -> bool:
    """True only when validate_uscc accepts `code` unchanged (the checker asks
    validate_uscc for the reason otherwise)."""
    if len(code) != 18:
        return False
    value = _VALUE
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


def _table(value_of) -> bytes:
    table = bytearray(256)
    for char in CHARSET:
        table[ord(char)] = value_of(char)
    return bytes(table)


_GB32100 = [_table(lambda c, w=w: _VALUE[c] * w % 31) for w in WEIGHTS] + \
    [_table(_VALUE.__getitem__)]                      # the check character, weight 1
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
