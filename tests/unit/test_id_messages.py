"""A refused ID number is never written back (issue 8, defect 6): the message names the
position and the expected form, for every ID type, in the validators and in `cqo check id`.
The same numbers go through the running services in tests/e2e/test_pii_exposure.py.
Failures show the numbers masked only."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cqo.cli import app
from shared.errors import ValidationFailed
from shared.validators import ID_TYPE_NAMES, validate_person_id
from tests.support.pii import IdCase, assert_not_shown, id_cases

# what the messages name as the expected form: not a part of the number
FORM_WORDS = ("810000", "820000", "830000", "1900")
MAX_FRAGMENT = 3  # "第18位", "12位数字": positions and lengths, never a run of the number


def refusal(case: IdCase) -> str | None:
    try:
        validate_person_id(case.id_type, case.number)
    except ValidationFailed as exc:
        return exc.message + json.dumps(exc.details, ensure_ascii=False)
    return None


@pytest.mark.parametrize("seed", range(20))
def test_refusals_never_carry_the_number(seed):
    for case in id_cases("130921", seed):
        text = refusal(case)
        if case.valid:
            assert text is None, case
            continue
        assert text is not None, case
        assert_not_shown(text, [case], f"the refusal of {case}", form_words=FORM_WORDS,
                         max_fragment=MAX_FRAGMENT)


@given(id_type=st.sampled_from(sorted(ID_TYPE_NAMES)),
       number=st.text("0123456789ABCDEHKMUSXYZ", min_size=7, max_size=24))
def test_no_refusal_carries_a_run_of_the_number(id_type, number):
    case = IdCase(id_type, number, "generated")
    text = refusal(case)
    if text is not None:
        assert_not_shown(text, [case], "a refusal", form_words=FORM_WORDS,
                         max_fragment=MAX_FRAGMENT)


def test_cqo_check_id_prints_the_reason_not_the_number():
    runner = CliRunner()
    for case in id_cases("130921", 7):
        result = runner.invoke(app, ["check", "id", "--type", case.id_type, case.number])
        if case.valid:
            assert result.exit_code == 0 and result.stdout == "valid\n", case
            continue
        assert result.exit_code == 1 and result.stderr.strip(), case
        assert_not_shown(result.stdout + result.stderr, [case], f"`cqo check id` on {case}",
                         form_words=FORM_WORDS, max_fragment=MAX_FRAGMENT)
