"""What officers and the public read of a draw. Never contact details, never ID data:
a panel is names, counties and fields of expertise."""
from __future__ import annotations

import json

from sqlalchemy import select

from shared.auth import Principal
from shared.errors import Forbidden, NotFound
from services.talent.domain.draw import describe_exclusions
from services.talent.domain.expertise import Catalogue
from services.talent.draws import drawing
from services.talent.draws.models import Draw, DrawChainEntry
from services.talent.pool.models import Expert


def detail(session, principal: Principal, draw_id: str, catalogue: Catalogue) -> dict:
    """City officers see every draw in full; anyone else only a published panel, and
    only its public view."""
    root, draws = _family(session, draw_id)
    if not principal.city_wide:
        if root.status != "published":
            raise Forbidden("专家组公布前仅市级监管人员可以查看。", code="AUTH_FORBIDDEN")
        return public_view(session, root, draws, catalogue)
    members = drawing.members_of(session, draws)
    experts = _experts(session, [m.expert_id for m in members])
    hashes = dict(session.execute(select(DrawChainEntry.seq, DrawChainEntry.hash).where(
        DrawChainEntry.seq.in_([d.chain_seq for d in draws]))).all())
    return {
        **_summary(root),
        "drawn_by": root.drawn_by,
        "published_by": root.published_by,
        "seed": root.seed,
        "snapshot_hash": root.snapshot_hash,
        "parameters": json.loads(root.parameters),
        "draws": [{"id": d.id, "parent_draw_id": d.parent_draw_id, "seed": d.seed,
                   "snapshot_hash": d.snapshot_hash, "eligible_count": d.eligible_count,
                   "exclusions": describe_exclusions(json.loads(d.exclusions or "{}")),
                   "size": json.loads(d.parameters)["size"],
                   "alternates": json.loads(d.parameters)["alternates"],
                   "drawn_at": d.drawn_at, "drawn_by": d.drawn_by, "chain_seq": d.chain_seq,
                   "chain_hash": hashes.get(d.chain_seq)} for d in draws],
        "members": [{**_expert(experts.get(m.expert_id), m.expert_id, catalogue),
                     "draw_id": m.draw_id, "role": m.role, "position": m.position,
                     "state": m.state, "replaced_by": m.replaced_by} for m in members],
        "panel": _panel(members, experts, catalogue),
    }


def public(session, draw_id: str, catalogue: Catalogue) -> dict:
    """A published panel, for anyone; an unpublished one does not exist (404)."""
    root, draws = _family(session, draw_id)
    if root.status != "published":
        raise drawing.not_found()
    return public_view(session, root, draws, catalogue)


def public_view(session, root: Draw, draws: list[Draw], catalogue: Catalogue) -> dict:
    members = drawing.members_of(session, draws)
    experts = _experts(session, [m.expert_id for m in members])
    return {**_summary(root), "seed": root.seed, "snapshot_hash": root.snapshot_hash,
            "panel": [{k: v for k, v in member.items() if k != "county"}
                      for member in _panel(members, experts, catalogue)]}


def _family(session, draw_id: str) -> tuple[Draw, list[Draw]]:
    draw = session.get(Draw, draw_id) if len(draw_id) <= 36 else None
    if draw is None:
        raise drawing.not_found()
    root = session.get(Draw, draw.parent_draw_id) if draw.parent_draw_id else draw
    return root, drawing.family(session, root)


def _summary(root: Draw) -> dict:
    return {"id": root.id, "purpose": root.purpose, "status": root.status,
            "drawn_at": root.drawn_at, "published_at": root.published_at}


def _experts(session, ids: list[str]) -> dict[str, Expert]:
    return {e.id: e for e in session.scalars(select(Expert).where(Expert.id.in_(ids)))}


def _expert(expert: Expert | None, expert_id: str, catalogue: Catalogue) -> dict:
    codes = sorted(json.loads(expert.expertise or "[]")) if expert else []
    return {"expert_id": expert_id, "name": expert.name if expert else None,
            "county": expert.county if expert else None,
            "expertise": [{"code": c, "name": catalogue.name(c)} for c in codes]}


def _panel(members, experts, catalogue) -> list[dict]:
    """Who sits on the panel now, in the order they were drawn (supplementary last)."""
    return [{**_expert(experts.get(m.expert_id), m.expert_id, catalogue), "role": m.role}
            for m in members if m.state in drawing.SITTING]
