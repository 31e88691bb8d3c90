"""Panel draw rules (services/talent/domain/draw.py) and the audit chain, as properties."""
from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from services.talent.domain import audit_chain
from services.talent.domain.draw import (EXCLUSION_NAMES, DrawParameters, PoolExpert, cut,
                                         draw_order, eligible_experts, exclusion_counts,
                                         exclusion_reason, replace_declined, run_draw,
                                         snapshot_hash)
from shared.errors import ValidationFailed

FIELDS = ["C13", "C26", "C27", "C38", "M74"]
USCCS = [f"9113092{i:02d}MA0000000" for i in range(8)]
COUNTIES = ["130921", "130922", "130981"]

experts = st.builds(
    PoolExpert,
    expert_id=st.uuids().map(str),
    county=st.sampled_from(COUNTIES),
    employer_uscc=st.sampled_from(USCCS),
    expertise=st.frozensets(st.sampled_from(FIELDS), min_size=1, max_size=3),
    suspended=st.booleans(),
    conflicts=st.frozensets(st.sampled_from(USCCS), max_size=2),
    # terms around the draw dates below, some unknown; some without consent
    term_start=st.one_of(st.none(), st.dates(date(2025, 1, 1), date(2027, 6, 30))),
    term_end=st.one_of(st.none(), st.dates(date(2025, 6, 1), date(2028, 12, 31))),
    consent=st.booleans(),
)
pools = st.lists(experts, min_size=0, max_size=60, unique_by=lambda e: e.expert_id)
parameters = st.builds(
    DrawParameters,
    purpose=st.just("质量诊断"),
    size=st.integers(1, 7),
    alternates=st.integers(0, 3),
    expertise=st.frozensets(st.sampled_from(FIELDS), max_size=2),
    enterprises=st.frozensets(st.sampled_from(USCCS), max_size=3),
    counties=st.frozensets(st.sampled_from(COUNTIES), max_size=2),
    exclude_involved_counties=st.booleans(),
    on=st.dates(date(2025, 1, 1), date(2028, 12, 31)),
)
seeds = st.binary(min_size=32, max_size=32)


def _excluded(expert: PoolExpert, params: DrawParameters) -> bool:
    """The rule restated independently of the module under test."""
    out_of_term = (expert.term_start is None or expert.term_end is None
                   or not expert.term_start <= params.on <= expert.term_end)
    return (expert.suspended or out_of_term or not expert.consent
            or expert.employer_uscc in params.enterprises
            or bool(expert.conflicts & params.enterprises)
            or (params.exclude_involved_counties and expert.county in params.counties)
            or bool(params.expertise and not expert.expertise & params.expertise))


@settings(max_examples=300)
@given(pools, parameters, seeds)
def test_a_draw_never_contains_an_excluded_or_suspended_expert(pool, params, seed):
    by_id = {e.expert_id: e for e in pool}
    try:
        outcome = run_draw(pool, params, seed, FIELDS)
    except ValidationFailed as exc:
        # too few eligible: a clear error, never a short panel
        assert exc.code == "DRAW_NOT_ENOUGH_ELIGIBLE"
        assert sum(not _excluded(e, params) for e in pool) < params.size + params.alternates
        return
    assert len(outcome.panel) == params.size and len(outcome.alternates) == params.alternates
    chosen = outcome.panel + outcome.alternates
    assert len(set(chosen)) == len(chosen)
    for expert_id in chosen:
        assert not _excluded(by_id[expert_id], params)
    assert set(outcome.eligible) == {e.expert_id for e in pool if not _excluded(e, params)}


@given(pools, parameters, seeds)
def test_the_same_snapshot_and_seed_give_the_same_panel(pool, params, seed):
    eligible, _ = eligible_experts(pool, params)
    shuffled = list(reversed(pool))  # the order rows come back from a database
    again, _ = eligible_experts(shuffled, params)
    assert again == eligible and snapshot_hash(again) == snapshot_hash(eligible)
    assert draw_order(seed, eligible) == draw_order(seed, list(reversed(eligible)))


@settings(max_examples=300)
@given(pools, parameters, seeds)
def test_a_draw_never_contains_an_out_of_term_or_non_consenting_expert(pool, params, seed):
    by_id = {e.expert_id: e for e in pool}
    eligible, excluded = eligible_experts(pool, params)
    for expert_id in eligible:
        expert = by_id[expert_id]
        assert expert.consent and expert.term_start <= params.on <= expert.term_end
    reasons = {e.expert_id: e.reason for e in excluded}
    for expert in pool:  # each gets its own code, unless suspended (that code comes first)
        if expert.suspended:
            continue
        if None in (expert.term_start, expert.term_end) or not (
                expert.term_start <= params.on <= expert.term_end):
            assert reasons[expert.expert_id] == "out_of_term"
        elif not expert.consent:
            assert reasons[expert.expert_id] == "no_consent"
    try:
        outcome = run_draw(pool, params, seed, FIELDS)
    except ValidationFailed as exc:
        assert exc.code == "DRAW_NOT_ENOUGH_ELIGIBLE"
        return
    for expert_id in outcome.panel + outcome.alternates:
        expert = by_id[expert_id]
        assert expert.consent and expert.term_start <= params.on <= expert.term_end
    assert sum(exclusion_counts(outcome.excluded).values()) == len(pool) - len(eligible)


TODAY = date(2026, 12, 3)
TERM = (date(2026, 1, 1), date(2028, 12, 31))


@pytest.mark.parametrize("term, consent, reason", [
    (TERM, True, None),
    ((TODAY, TODAY), True, None),                                   # both ends count
    ((TODAY + timedelta(days=1), TERM[1]), True, "out_of_term"),    # not yet begun
    ((TERM[0], TODAY - timedelta(days=1)), True, "out_of_term"),    # ended yesterday
    ((None, None), True, "out_of_term"),                            # unknown: not eligible
    (TERM, False, "no_consent"),
])
def test_term_and_consent_exclude_with_their_own_codes(term, consent, reason):
    expert = PoolExpert("e1", "130921", USCCS[0], frozenset({"C13"}), term_start=term[0],
                        term_end=term[1], consent=consent)
    params = DrawParameters(purpose="评审", size=1, on=TODAY)
    assert exclusion_reason(expert, params) == reason
    assert reason is None or reason in EXCLUSION_NAMES
    # a draw made before the rule (no date) is re-run as it was made
    assert exclusion_reason(expert, replace(params, on=None)) is None


def test_the_order_is_hmac_sha256_of_the_seed_and_the_id():
    seed = bytes(range(32))
    ids = [f"expert-{i}" for i in range(50)]
    expected = sorted(ids, key=lambda i: hmac.new(seed, i.encode(), hashlib.sha256).digest())
    assert draw_order(seed, ids) == expected


def test_another_seed_gives_another_order():
    ids = [f"expert-{i}" for i in range(50)]
    assert draw_order(b"a" * 32, ids) != draw_order(b"b" * 32, ids)


@pytest.mark.parametrize("change, code", [
    ({"size": 0}, "DRAW_SIZE_INVALID"),
    ({"alternates": -1}, "DRAW_ALTERNATES_INVALID"),
    ({"expertise": frozenset({"Z99"})}, "DRAW_EXPERTISE_UNKNOWN"),
    ({"size": 40}, "DRAW_NOT_ENOUGH_ELIGIBLE"),
])
def test_bad_draw_input_has_its_own_code(change, code):
    pool = [PoolExpert(f"e{i}", "130921", USCCS[0], frozenset({"C13"}), term_start=TERM[0],
                       term_end=TERM[1], consent=True) for i in range(10)]
    params = replace(DrawParameters(purpose="评审", size=3, alternates=1, on=TODAY), **change)
    with pytest.raises(ValidationFailed) as caught:
        run_draw(pool, params, b"s" * 32, FIELDS)
    assert caught.value.code == code


def test_each_eligible_expert_is_chosen_about_equally_often():
    """Chi-square goodness of fit over 4,000 draws of 3 from 20, fixed seeds: each expert
    is expected 600 times. With 19 degrees of freedom p > 0.01 ⇔ statistic < 36.191
    (the chi-square table's 0.99 quantile)."""
    ids = [f"expert-{i:02d}" for i in range(20)]
    rng = random.Random(20261202)  # fixed: the test is repeatable
    counts = Counter()
    for _ in range(4000):
        counts.update(cut(ids, 3, 0, rng.randbytes(32)).panel)
    expected = 4000 * 3 / len(ids)
    statistic = sum((counts[i] - expected) ** 2 / expected for i in ids)
    assert statistic < 36.191, statistic


def test_declines_are_replaced_from_the_alternates_in_order():
    panel, successor = replace_declined(["a", "b", "c"], ["x", "y"], "b")
    assert (panel, successor) == (["a", "c", "x"], "x")
    panel, successor = replace_declined(panel, ["x", "y"], "a")
    assert (panel, successor) == (["c", "x", "y"], "y")
    panel, successor = replace_declined(panel, ["x", "y"], "c", used=["b", "a"])
    assert successor is None and panel == ["x", "y"]  # run out: a supplementary draw follows
    with pytest.raises(ValidationFailed) as caught:
        replace_declined(panel, [], "nobody")
    assert caught.value.code == "DRAW_NOT_A_MEMBER"


def _chain(n: int) -> list[audit_chain.ChainEntry]:
    entries, prev = [], None
    for i in range(n):
        prev = audit_chain.append(prev, {"draw_id": f"d{i}", "purpose": "评审", "seed": f"{i:064x}"})
        entries.append(prev)
    return entries


def test_an_intact_chain_holds():
    assert audit_chain.first_break(_chain(5)) is None
    assert audit_chain.first_break([]) is None


@pytest.mark.parametrize("tamper", ["record", "record_and_hash", "prev_hash", "drop"])
def test_each_tampering_of_the_chain_is_found(tamper):
    entries = _chain(5)
    victim = entries[2]
    record = dict(victim.record, seed="f" * 64)
    if tamper == "record":
        entries[2] = replace(victim, record=record)
    elif tamper == "record_and_hash":  # edited together with its own hash
        entries[2] = replace(victim, record=record, hash=audit_chain.entry_hash(victim.prev_hash, record))
    elif tamper == "prev_hash":
        entries[2] = replace(victim, prev_hash="0" * 64)
    else:
        del entries[2]
    assert audit_chain.first_break(entries) in (3, 4)
