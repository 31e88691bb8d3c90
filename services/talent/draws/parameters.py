"""A draw's parameters as stored (JSON) and the draw they determine.

The stored form is what the audit chain records and what verification re-runs: the
requested fields of expertise and the codes they matched when drawn (a section stands
for its divisions, services/talent/domain/expertise.py), so that a later edit of the
expertise list does not change a past draw.

A draw made since experts must be in term and have consented to be contacted stores
`"term_and_consent": true`; its date (`on`, the Asia/Shanghai date of `drawn_at`) is
not stored, verification derives it from the stored `drawn_at` as the draw did. A draw
stored without the flag was made before the rule and is re-run without it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from shared import clock
from services.talent.domain.draw import (DrawOutcome, DrawParameters, Exclusion, PoolExpert,
                                         draw_order, eligible_experts, run_draw)
from services.talent.domain.expertise import Catalogue


def from_request(data: dict, catalogue: Catalogue) -> dict:
    requested = sorted(set(data.get("expertise") or ()))
    return {
        "purpose": data["purpose"],
        "size": data["size"],
        "alternates": data.get("alternates", 0),
        "expertise": requested,
        "expertise_matched": sorted(catalogue.expand(requested)),
        "enterprises": sorted(set(data.get("enterprises") or ())),
        "counties": sorted(set(data.get("counties") or ())),
        "exclude_involved_counties": bool(data.get("exclude_involved_counties", False)),
        "exclude_experts": sorted(set(data.get("exclude_experts") or ())),
        "term_and_consent": True,
    }


def domain(stored: dict, drawn_at: datetime | None = None) -> DrawParameters:
    """The domain's parameters of a stored draw made (or being made) at `drawn_at`."""
    on = (clock.local_date(drawn_at)
          if stored.get("term_and_consent") is True and drawn_at is not None else None)
    return DrawParameters(
        purpose=stored["purpose"], size=stored["size"], alternates=stored["alternates"],
        expertise=frozenset(stored["expertise_matched"]),
        enterprises=frozenset(stored["enterprises"]), counties=frozenset(stored["counties"]),
        exclude_involved_counties=stored["exclude_involved_counties"], on=on)


def candidates(pool: Iterable[PoolExpert], stored: dict) -> list[PoolExpert]:
    """The pool less the experts already on the draw a supplementary draw completes."""
    already = set(stored.get("exclude_experts") or ())
    return [e for e in pool if e.expert_id not in already] if already else list(pool)


def draw(pool: Iterable[PoolExpert], stored: dict, drawn_at: datetime, seed: bytes,
         known_expertise: Iterable[str]) -> DrawOutcome:
    """The draw itself: bad input and too few eligible experts raise (never a short panel)."""
    return run_draw(candidates(pool, stored), domain(stored, drawn_at), seed, known_expertise)


def eligible(pool: Iterable[PoolExpert], stored: dict, drawn_at: datetime
             ) -> tuple[list[str], list[Exclusion]]:
    """The eligible ids (sorted) and the exclusions for stored parameters, without the
    draw's checks."""
    return eligible_experts(candidates(pool, stored), domain(stored, drawn_at))


def rerun(eligible_ids: Sequence[str], stored: dict, seed: bytes
          ) -> tuple[list[str], list[str], list[str]]:
    """(order, panel, alternates) as verification re-runs them; never raises."""
    order = draw_order(seed, eligible_ids)
    size, alternates = stored["size"], stored["alternates"]
    return order, order[:size], order[size:size + alternates]
