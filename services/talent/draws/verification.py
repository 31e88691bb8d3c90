"""Verifying a stored draw: rebuild its eligible list from the pool's history as of the
draw, re-run it with the stored seed, and check the audit chain (docs/architecture.md,
"Panel draws"). Each check says what it compared, so an officer (or `cqo draw verify`)
sees which part of the record does not hold."""
from __future__ import annotations

import json

from sqlalchemy import select

from services.talent.domain import audit_chain
from services.talent.domain.draw import describe_exclusions, exclusion_counts, snapshot_hash
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
SHOWN = 20  # expert ids named when the snapshot differs


def _json(text, default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _check(name: str, ok: bool, message: str, **extra) -> dict:
    return {"name": name, "label": CHECKS[name], "ok": ok, "message": message, **extra}


def verify(session, draw_id: str) -> dict:
    draw = session.get(Draw, draw_id) if len(draw_id) <= 36 else None
    if draw is None:
        raise not_found()
    stored = _json(draw.parameters, {})
    snapshot = _json(draw.snapshot, None)
    if not (isinstance(snapshot, list) and all(isinstance(i, str) for i in snapshot)):
        snapshot = None  # edited into something that is not a list of ids
    try:
        rebuilt, excluded = parameters.eligible(history.pool_as_of(session, draw.drawn_at),
                                                stored, draw.drawn_at)
    except (KeyError, TypeError):
        rebuilt, excluded = None, []  # parameters no longer readable: the chain check names the edit
    broken = audit_chain.first_break(chain.entries(session))
    checks = [_snapshot(rebuilt, snapshot), _snapshot_hash(draw, snapshot),
              *_rerun(draw, rebuilt, stored), _chain(session, draw, broken)]
    return {"draw_id": draw.id, "ok": all(c["ok"] for c in checks), "checks": checks,
            "drawn_at": draw.drawn_at, "seed": draw.seed, "snapshot_hash": draw.snapshot_hash,
            "eligible_count": len(snapshot or ()), "exclusions": describe_exclusions(exclusion_counts(excluded)),
            "chain_break_seq": broken,
            "chain_head": chain.head_hash(session)}


def _snapshot(rebuilt: list[str] | None, snapshot: list[str] | None) -> dict:
    if rebuilt is None:
        return _check("snapshot", False, "存储的抽取参数无法读取，无法重建候选名单。")
    if snapshot is None:
        return _check("snapshot", False, "存储的快照不是专家编号列表。")
    if rebuilt == snapshot:
        return _check("snapshot", True, f"按抽取时的专家库历史重建的 {len(rebuilt)} 名候选专家与快照一致。")
    missing, extra = sorted(set(rebuilt) - set(snapshot)), sorted(set(snapshot) - set(rebuilt))
    return _check("snapshot", False,
                  f"重建的候选名单（{len(rebuilt)} 名）与快照（{len(snapshot)} 名）不一致："
                  f"快照缺少 {len(missing)} 名、多出 {len(extra)} 名。",
                  differences={"missing": missing[:SHOWN], "extra": extra[:SHOWN]})


def _snapshot_hash(draw: Draw, snapshot: list[str] | None) -> dict:
    ok = snapshot is not None and snapshot_hash(snapshot) == draw.snapshot_hash
    return _check("snapshot_hash", ok, "快照的哈希与存储的哈希一致。" if ok
                  else "快照的哈希与存储的哈希不一致。")


def _rerun(draw: Draw, rebuilt: list[str] | None, stored: dict) -> list[dict]:
    try:
        seed = bytes.fromhex(draw.seed)
    except ValueError:
        seed = None
    if rebuilt is None or seed is None:
        return [_check("order", False, "种子或参数无法读取，无法重新排序。"),
                _check("result", False, "种子或参数无法读取，无法重新抽取。")]
    order, panel, alternates = parameters.rerun(rebuilt, stored, seed)
    same_order = order == _json(draw.order, None)
    same_result = panel == _json(draw.panel, None) and alternates == _json(draw.alternates, None)
    return [_check("order", same_order, "用存储的种子重新排序，与存储的顺序一致。" if same_order
                   else "用存储的种子重新排序，与存储的顺序不一致。"),
            _check("result", same_result, "重新抽取的专家和备选专家与存储的结果一致。" if same_result
                   else "重新抽取的专家或备选专家与存储的结果不一致。")]


def _chain(session, draw: Draw, broken: int | None) -> dict:
    """The chain holds as a whole, and its record of this draw is the stored draw."""
    recorded = [_json(text, None) for text in session.scalars(select(DrawChainEntry.record).where(
        DrawChainEntry.draw_id == draw.id, DrawChainEntry.kind == "draw"))]
    matches = recorded == [chain.draw_record_or_none(draw)]
    if broken is not None:
        message = f"审计哈希链在第 {broken} 条记录处断开（记录被修改、删除或插入）。"
    elif not matches:
        message = "审计哈希链中本次抽取的记录与存储的抽取不一致。"
    else:
        message = f"审计哈希链完整，第 {draw.chain_seq} 条记录与存储的抽取一致。"
    return _check("chain", broken is None and matches, message)
