"""The write use cases of panel draws (docs/architecture.md, "Panel draws"): draw,
decline (an alternate steps in, or a supplementary draw when they have run out) and
publish. One unit of work each: the draw, its members, its audit-chain entry and its
events are written together or not at all."""
from __future__ import annotations

import json
import uuid

from sqlalchemy import or_, select, text

from shared import clock
from shared.db import Database, UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.messaging import events
from services.talent.domain import draw as rules
from services.talent.domain.expertise import Catalogue
from services.talent.draws import chain, parameters, pool_snapshot
from services.talent.draws.models import Draw, DrawMember
from services.talent.pool.models import Expert

SITTING = ("invited", "accepted")


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def not_found() -> NotFound:
    return NotFound("未找到该抽取记录。", code="DRAW_NOT_FOUND")


def run(db: Database, actor: str, data: dict, catalogue: Catalogue) -> str:
    """Draw a panel; returns the draw's id. `catalogue` is the pool's (the configured
    list of expertise, services/talent/pool/expertise.py), never a default of its own."""
    stored = parameters.from_request({**data, "exclude_experts": ()}, catalogue)
    # bad input is answered before the pool is read
    rules.check_parameters(parameters.domain(stored), catalogue.codes)
    with db.unit_of_work() as uow:
        draw = draw_into(uow, stored, actor, catalogue)
        uow.commit()
    return draw.id


def draw_into(uow: UnitOfWork, stored: dict, actor: str, catalogue: Catalogue, *,
              parent: Draw | None = None) -> Draw:
    """Draw from the pool as it is now and write the draw, its members, its chain entry
    and an invitation per panel member into `uow`."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        # wait for pool changes in flight and hold new ones until the draw commits: a
        # state committed after the draw read the pool but dated before the draw would
        # make its verification (the pool rebuilt as of the draw) disagree. Draws share
        # this lock mode, so they do not wait for each other here. (SQLite: one writer.)
        session.execute(text("LOCK TABLE expert_states IN SHARE MODE"))
    now = clock.now_utc()
    pool = pool_snapshot.pool_as_of(session, now)
    seed = rules.new_seed()
    if parent is not None:
        # a supplementary draw keeps as many alternates as the remaining pool allows;
        # its seat itself is never left short (too few: DRAW_NOT_ENOUGH_ELIGIBLE)
        available = len(parameters.eligible(pool, stored, now)[0])
        stored["alternates"] = max(0, min(stored["alternates"], available - stored["size"]))
    outcome = parameters.draw(pool, stored, now, seed, catalogue.codes)
    draw = Draw(id=str(uuid.uuid4()), purpose=stored["purpose"], parameters=dumps(stored),
                seed=seed.hex(), snapshot=dumps(outcome.eligible),
                snapshot_hash=outcome.snapshot_hash, eligible_count=len(outcome.eligible),
                order=dumps(outcome.order),
                panel=dumps(outcome.panel), alternates=dumps(outcome.alternates),
                exclusions=dumps(rules.exclusion_counts(outcome.excluded)),
                status="drawn", drawn_at=now, drawn_by=actor,
                parent_draw_id=parent.id if parent else None)
    entry = chain.append(session, draw.id, chain.draw_record(draw), now)
    draw.chain_seq = entry.seq
    session.add(draw)
    session.flush()  # the members' foreign key
    members = [DrawMember(draw_id=draw.id, expert_id=expert_id, role="member", position=n,
                          state="invited", updated_at=now)
               for n, expert_id in enumerate(outcome.panel, start=1)]
    members += [DrawMember(draw_id=draw.id, expert_id=expert_id, role="alternate",
                           position=len(outcome.panel) + n, state="standby", updated_at=now)
                for n, expert_id in enumerate(outcome.alternates, start=1)]
    session.add_all(members)
    for expert_id in outcome.panel:
        invite(uow, draw, expert_id, "member")
    return draw


def invite(uow: UnitOfWork, draw: Draw, expert_id: str, role: str) -> None:
    events.publish(uow, "talent.draw.invited", draw.id,
                   {"draw_id": draw.id, "purpose": draw.purpose, "expert_id": expert_id,
                    "role": role},
                   source="talent", event_id=f"event:draw:{draw.id}:invited:{expert_id}")


def root_for_update(session, draw_id: str) -> Draw:
    """The first draw of `draw_id`'s family, locked: declines and publication of one
    panel are serialised."""
    draw = session.get(Draw, draw_id)
    if draw is None:
        raise not_found()
    root_id = draw.parent_draw_id or draw.id
    return session.execute(select(Draw).where(Draw.id == root_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()


def family(session, root: Draw) -> list[Draw]:
    """The first draw and its supplementary draws, in the order they were made."""
    draws = session.scalars(select(Draw).where(
        or_(Draw.id == root.id, Draw.parent_draw_id == root.id))).all()
    return sorted(draws, key=lambda d: (d.parent_draw_id is not None, d.chain_seq))


def members_of(session, draws: list[Draw]) -> list[DrawMember]:
    rank = {d.id: n for n, d in enumerate(draws)}
    rows = session.scalars(select(DrawMember).where(DrawMember.draw_id.in_(list(rank)))).all()
    return sorted(rows, key=lambda m: (rank[m.draw_id], m.position))


def decline(db: Database, actor: str, draw_id: str, expert_id: str,
            catalogue: Catalogue) -> str:
    """A panel member declined: the next alternate steps in, or, when the alternates have
    run out, a supplementary draw linked to the first fills the seat, with its own seed
    and without anyone already drawn for this panel. Returns the first draw's id."""
    with db.unit_of_work() as uow:
        session = uow.session
        now = clock.now_utc()
        root = root_for_update(session, draw_id)
        draws = family(session, root)
        members = members_of(session, draws)
        mine = [m for m in members if m.expert_id == expert_id]
        member = next((m for m in mine if m.state in SITTING), None)
        if member is None:
            if any(m.state == "declined" for m in mine):
                raise Conflict("该专家已登记为拒绝参加。", code="DRAW_ALREADY_DECLINED")
            raise ValidationFailed("该专家不在本次抽取的专家组中。", code="DRAW_NOT_A_MEMBER",
                                   field="expert_id")
        draw = next(d for d in draws if d.id == member.draw_id)
        own = [m for m in members if m.draw_id == draw.id]
        panel = [m.expert_id for m in own if m.state in SITTING]
        called = [m.expert_id for m in own if m.role == "alternate" and m.state != "standby"]
        _, successor = rules.replace_declined(panel, json.loads(draw.alternates), expert_id,
                                              used=called)
        supplementary = None
        if successor is not None:
            stepping_in = next(m for m in own if m.expert_id == successor)
            stepping_in.state, stepping_in.updated_at = "invited", now
            invite(uow, draw, successor, "alternate")
        else:
            stored = json.loads(root.parameters)
            # a draw made now: today's rules, whatever the first draw's were
            stored.update(size=1, exclude_experts=sorted({m.expert_id for m in members}),
                          term_and_consent=True)
            supplementary = draw_into(uow, stored, actor, catalogue, parent=root)
            successor = json.loads(supplementary.panel)[0]
        member.state, member.replaced_by, member.updated_at = "declined", successor, now
        chain.append(session, draw.id, {
            "kind": "decline", "draw_id": draw.id, "expert_id": expert_id,
            "replaced_by": successor,
            "supplementary_draw_id": supplementary.id if supplementary else None,
            "by": actor, "at": chain.instant(now)}, now)
        uow.commit()
        return root.id


def publish(db: Database, actor: str, draw_id: str) -> str:
    """Publish a panel (the first draw and its supplementary draws): from now on its
    names and expertise are public. Publishing again changes nothing."""
    with db.unit_of_work() as uow:
        session = uow.session
        root = root_for_update(session, draw_id)
        if root.status == "published":
            return root.id
        now = clock.now_utc()
        root.status, root.published_at, root.published_by = "published", now, actor
        sitting = sitting_members(session, family(session, root))
        chain.append(session, root.id, {
            "kind": "publish", "draw_id": root.id, "members": [e.id for e in sitting],
            "by": actor, "at": chain.instant(now)}, now)
        events.publish(uow, "talent.draw.published", root.id, {
            "draw_id": root.id, "purpose": root.purpose,
            "members": [{"expert_id": e.id, "name": e.name,
                         "expertise": sorted(json.loads(e.expertise or "[]"))} for e in sitting]},
            source="talent", event_id=f"event:draw:{root.id}:published")
        uow.commit()
        return root.id


def sitting_members(session, draws: list[Draw]) -> list[Expert]:
    ids = [m.expert_id for m in members_of(session, draws) if m.state in SITTING]
    experts = {e.id: e for e in session.scalars(select(Expert).where(Expert.id.in_(ids)))}
    return [experts[i] for i in ids]
