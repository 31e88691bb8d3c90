"""Plain rules of expert panel draws (art. 15 人才建设, art. 10 回避).

A draw is random but reproducible (docs/architecture.md, "Panel draws"): the experts
eligible for it are snapshotted, the snapshot is hashed, a seed comes from `secrets`,
and the eligible experts are ordered by HMAC-SHA256(seed, expert id). The first `size`
experts of that order form the panel, the next `alternates` replace declines in order.
HMAC, not a language's pseudo-random generator, because its output never changes
between versions: anyone holding the snapshot and the seed re-runs the draw and gets
the same panel.

Nothing here touches a database or a broker: the draw use case loads the pool as of
the draw, asks these functions, and stores what they answer.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Sequence

from shared.errors import ValidationFailed

SEED_BYTES = 32


@dataclass(frozen=True)
class PoolExpert:
    """What a draw needs to know of one city-level expert, as of the draw."""

    expert_id: str
    county: str
    employer_uscc: str
    expertise: frozenset[str]
    suspended: bool = False
    conflicts: frozenset[str] = frozenset()  # USCCs the expert declared a conflict with
    # the expert's term (inclusive dates) and recorded consent to be contacted; unknown
    # (None, False) excludes: a panel member must be in office and reachable
    term_start: date | None = None
    term_end: date | None = None
    consent: bool = False


@dataclass(frozen=True)
class DrawParameters:
    purpose: str
    size: int
    alternates: int = 0
    expertise: frozenset[str] = frozenset()      # empty: any field
    enterprises: frozenset[str] = frozenset()    # involved enterprises (USCC)
    counties: frozenset[str] = frozenset()       # involved counties
    exclude_involved_counties: bool = False
    # the draw's calendar date (Asia/Shanghai) when term and consent are required; None
    # only for draws made before that rule, so that their verification re-runs them as
    # they were made (draws.parameters)
    on: date | None = None


# the exclusion codes, each with its name for officers (the first that applies counts)
EXCLUSION_NAMES = {
    "suspended": "暂停",
    "out_of_term": "不在聘期内",
    "no_consent": "未同意联系",
    "employed_by_involved": "受聘于涉及企业",
    "declared_conflict": "申明与涉及企业有利害关系",
    "involved_county": "属涉及县（市、区）",
    "expertise_mismatch": "专业领域不符",
}


@dataclass(frozen=True)
class Exclusion:
    expert_id: str
    reason: str  # stable code, a key of EXCLUSION_NAMES


@dataclass(frozen=True)
class DrawOutcome:
    eligible: tuple[str, ...]          # the snapshot: eligible ids, sorted
    snapshot_hash: str
    order: tuple[str, ...]             # eligible ids in draw order
    panel: tuple[str, ...]
    alternates: tuple[str, ...]
    excluded: tuple[Exclusion, ...] = field(default=())


def check_parameters(params: DrawParameters, known_expertise: Iterable[str]) -> None:
    """Bad draw input gets its own code; checked before anything is drawn."""
    if params.size < 1:
        raise ValidationFailed("专家人数须至少为 1。", code="DRAW_SIZE_INVALID", field="size")
    if params.alternates < 0:
        raise ValidationFailed("备选专家人数不能为负数。", code="DRAW_ALTERNATES_INVALID",
                               field="alternates")
    unknown = sorted(set(params.expertise) - set(known_expertise))
    if unknown:
        raise ValidationFailed(f"专业领域代码不在领域目录中：{'、'.join(unknown)}。",
                               code="DRAW_EXPERTISE_UNKNOWN", field="expertise",
                               details={"unknown": unknown})


def exclusion_reason(expert: PoolExpert, params: DrawParameters) -> str | None:
    """Why an expert may not sit on this panel (art. 10 回避), or None."""
    if expert.suspended:
        return "suspended"
    if params.on is not None:
        if not in_term(expert, params.on):
            return "out_of_term"
        if not expert.consent:
            return "no_consent"
    if expert.employer_uscc in params.enterprises:
        return "employed_by_involved"
    if not expert.conflicts.isdisjoint(params.enterprises):  # no set built per expert
        return "declared_conflict"
    if params.exclude_involved_counties and expert.county in params.counties:
        return "involved_county"
    if params.expertise and expert.expertise.isdisjoint(params.expertise):
        return "expertise_mismatch"
    return None


def in_term(expert: PoolExpert, on: date) -> bool:
    """Whether the expert's term covers the calendar date `on` (both ends included)."""
    return (expert.term_start is not None and expert.term_end is not None
            and expert.term_start <= on <= expert.term_end)


def exclusion_counts(excluded: Iterable[Exclusion]) -> dict[str, int]:
    """How many experts each code excluded, in EXCLUSION_NAMES' order."""
    counts = dict.fromkeys(EXCLUSION_NAMES, 0)
    for exclusion in excluded:
        counts[exclusion.reason] = counts.get(exclusion.reason, 0) + 1
    return {code: n for code, n in counts.items() if n}


def describe_exclusions(counts: dict[str, int]) -> list[dict]:
    """{code: n} as [{code, name, count}], for officers."""
    return [{"code": code, "name": EXCLUSION_NAMES.get(code, code), "count": n}
            for code, n in counts.items()]


def eligible_experts(pool: Iterable[PoolExpert], params: DrawParameters
                     ) -> tuple[list[str], list[Exclusion]]:
    """The eligible ids (sorted: the snapshot's canonical order) and the exclusions."""
    eligible, excluded = [], []
    for expert in pool:
        reason = exclusion_reason(expert, params)
        if reason is None:
            eligible.append(expert.expert_id)
        else:
            excluded.append(Exclusion(expert.expert_id, reason))
    eligible.sort()
    excluded.sort(key=lambda e: e.expert_id)
    return eligible, excluded


def snapshot_hash(eligible: Sequence[str]) -> str:
    """SHA-256 of the snapshot's canonical JSON (sorted ids, no spaces)."""
    blob = json.dumps(sorted(eligible), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def draw_order(seed: bytes, eligible: Iterable[str]) -> list[str]:
    """Eligible ids ordered by HMAC-SHA256(seed, id); the key is set up once and copied
    per id (setting up an HMAC key costs more than hashing a short id). Two ids tie only
    on a SHA-256 collision, so the digest alone is the key (bytes compare faster than
    tuples)."""
    keyed = hmac.new(seed, digestmod=hashlib.sha256)

    def rank(expert_id: str) -> bytes:
        mac = keyed.copy()
        mac.update(expert_id.encode())
        return mac.digest()

    return sorted(eligible, key=rank)


def run_draw(pool: Iterable[PoolExpert], params: DrawParameters, seed: bytes,
             known_expertise: Iterable[str]) -> DrawOutcome:
    """The whole draw: check, exclude, snapshot, order, cut. Too few eligible experts is
    an error, never a short panel."""
    check_parameters(params, known_expertise)
    eligible, excluded = eligible_experts(pool, params)
    return cut(eligible, params.size, params.alternates, seed, excluded)


def cut(eligible: Sequence[str], size: int, alternates: int, seed: bytes,
        excluded: Sequence[Exclusion] = ()) -> DrawOutcome:
    needed = size + alternates
    if len(eligible) < needed:
        raise ValidationFailed(
            f"符合条件的专家只有 {len(eligible)} 名，少于所需的 {needed} 名"
            f"（专家 {size} 名、备选 {alternates} 名）；请减少人数或放宽条件。",
            code="DRAW_NOT_ENOUGH_ELIGIBLE", field="size",
            details={"eligible": len(eligible), "needed": needed})
    order = draw_order(seed, eligible)
    return DrawOutcome(eligible=tuple(sorted(eligible)), snapshot_hash=snapshot_hash(eligible),
                       order=tuple(order), panel=tuple(order[:size]),
                       alternates=tuple(order[size:needed]), excluded=tuple(excluded))


def replace_declined(panel: Sequence[str], alternates: Sequence[str], declined: str,
                     used: Iterable[str] = ()) -> tuple[list[str], str | None]:
    """Replace a declining panel member by the first alternate not yet used.

    Returns the new panel and the alternate who stepped in, or None when the
    alternates have run out (the caller then runs a supplementary draw)."""
    if declined not in panel:
        raise ValidationFailed("该专家不在本次抽取的专家组中。", code="DRAW_NOT_A_MEMBER",
                               field="expert_id")
    taken = set(used) | set(panel)
    successor = next((a for a in alternates if a not in taken), None)
    members = [m for m in panel if m != declined]
    if successor is not None:
        members.append(successor)
    return members, successor
