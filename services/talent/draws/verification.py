"""Verifying a stored draw: rebuild its eligible list from the pool's history as of the
draw, re-run it with the stored seed, and check the audit chain (docs/architecture.md,
"Panel draws"). Each check says what it compared, so an officer (or `cqo draw verify`)
sees which part of the record does not hold."""
from __future__ import annotations

import json

from sqlalchemy import select

from services.talent.domain import audit_chain
from services.talent.domain.draw import snapshot_hash
from services.talent.draws import chain, parameters
from services.talent.draws.drawing import not_found
from services.talent.draws.models import Draw, DrawChainEntry
from services.talent.pool import history

CHECKS = {
    "snapshot": "候选名单快照",
    "snapshot_hash": "快照哈希",
    "order": "排序",
    "result": "抽取结果",
    "chain": "审计哈希链",
}


def _json(text, default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _check(name: str, ok: bool, message: str) -> dict:
    return {"name": name, "label": CHECKS[name], "ok": ok, "message": message}


def verify(session, draw_id: str) -> dict:
    draw = session.get(Draw, draw_id) if len(draw_id) <= 36 else None
    if draw is None:
        raise not_found()
    stored_params = _json(draw.parameters, {})
    stored_snapshot = _json(draw.snapshot, [])
    try:
        seed = bytes.fromhex(draw.seed)
    except ValueError:
        seed = None
    checks = []

    rebuilt = None
    try:
        pool = history.pool_as_of(session, draw.drawn_at)
        rebuilt = parameters.eligible(pool, stored_params)
    except (KeyError, TypeError):
        pass  # parameters no longer readable: the chain check names the edit
    if rebuilt is None:
        checks.append(_check("snapshot", False, "存储的抽取参数无法读取，无法重建候选名单。"))
    elif rebuilt == stored_snapshot:
        checks.append(_check("snapshot", True,
                             f"按抽取时的专家库历史重建的 {len(rebuilt)} 名候选专家与快照一致。"))
    else:
        missing = len(set(rebuilt) - set(stored_snapshot))
        extra = len(set(stored_snapshot) - set(rebuilt))
        checks.append(_check("snapshot", False,
                             f"重建的候选名单（{len(rebuilt)} 名）与快照（{len(stored_snapshot)} 名）不一致："
                             f"快照缺少 {missing} 名、多出 {extra} 名。"))

    recomputed = snapshot_hash(stored_snapshot) if isinstance(stored_snapshot, list) else None
    checks.append(_check("snapshot_hash", recomputed == draw.snapshot_hash,
                         "快照的哈希与存储的哈希一致。" if recomputed == draw.snapshot_hash
                         else "快照的哈希与存储的哈希不一致。"))

    stored_order = _json(draw.order, [])
    if rebuilt is None or seed is None:
        checks.append(_check("order", False, "种子或参数无法读取，无法重新排序。"))
        checks.append(_check("result", False, "种子或参数无法读取，无法重新抽取。"))
    else:
        order, panel, alternates = parameters.rerun(rebuilt, stored_params, seed)
        checks.append(_check("order", order == stored_order,
                             "用存储的种子重新排序，与存储的顺序一致。" if order == stored_order
                             else "用存储的种子重新排序，与存储的顺序不一致。"))
        same = panel == _json(draw.panel, None) and alternates == _json(draw.alternates, None)
        checks.append(_check("result", same,
                             "重新抽取的专家和备选专家与存储的结果一致。" if same
                             else "重新抽取的专家或备选专家与存储的结果不一致。"))

    broken = audit_chain.first_break(chain.entries(session))
    recorded = [_json(text, None) for text in session.scalars(select(DrawChainEntry.record).where(
        DrawChainEntry.draw_id == draw.id, DrawChainEntry.kind == "draw"))]
    matches = recorded == [chain.draw_record_or_none(draw)]
    if broken is not None:
        message = f"审计哈希链在第 {broken} 条记录处断开（记录被修改、删除或插入）。"
    elif not matches:
        message = "审计哈希链中本次抽取的记录与存储的抽取不一致。"
    else:
        message = f"审计哈希链完整，第 {draw.chain_seq} 条记录与存储的抽取一致。"
    checks.append(_check("chain", broken is None and matches, message))

    return {"draw_id": draw.id, "ok": all(c["ok"] for c in checks), "checks": checks,
            "drawn_at": draw.drawn_at, "seed": draw.seed, "snapshot_hash": draw.snapshot_hash,
            "eligible_count": len(stored_snapshot) if isinstance(stored_snapshot, list) else 0,
            "chain_break_seq": broken, "chain_head": chain.head_hash(session)}
