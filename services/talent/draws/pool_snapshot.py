"""The pool as of an instant, for drawing: `history.pool_as_of`'s answer without
reading and parsing every expert's state on every draw. What the pool is, which rows
make it and how a row is read are history's (`latest_seqs`, `state_rows`, `expert_of`);
this module only remembers.

`expert_states` rows are append-only (services/talent/pool/history.py), so the parsed
state of a row never changes: it is kept per row (`seq`) for the process's life, and a
draw parses only the rows it has not seen before. And while no row has been added since
the last draw (same count, same highest `seq`) and none is dated after the instant
asked for, the pool is the one built last time; one aggregate query tells. Reading and
parsing 20,000 experts' states costs more than ordering them (bench/draw.py).

Verification does not use this: it rebuilds the pool with `history.pool_as_of` itself
from every row, so each draw made through this path is checked against the reference.
"""
from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from services.talent.domain.draw import PoolExpert
from services.talent.pool import history
from services.talent.pool.history import STATES

MAX_CACHED = 500_000   # parsed states kept per database; beyond it, start again
FETCH_CHUNK = 1000     # rows whose state is fetched by seq in one query


@dataclass
class _Cache:
    states: dict[int, PoolExpert] = field(default_factory=dict)
    signature: tuple | None = None           # (rows, highest seq, latest `at`) of `pool`
    pool: list[PoolExpert] = field(default_factory=list)


_by_engine: "weakref.WeakKeyDictionary[object, _Cache]" = weakref.WeakKeyDictionary()


def pool_as_of(session, at: datetime) -> list[PoolExpert]:
    """Every expert's last recorded state at or before `at`, as history.pool_as_of
    (in no particular order: the draw sorts what is eligible)."""
    cache = _by_engine.setdefault(session.get_bind(), _Cache())
    conn = session.connection()
    signature = tuple(conn.execute(select(func.count(), func.max(STATES.c.seq),
                                          func.max(STATES.c.at))).one())
    every_row = signature[2] is None or signature[2] <= at
    if every_row and signature == cache.signature:
        return list(cache.pool)

    latest = conn.execute(history.latest_seqs(at)).all()
    missing = [seq for _, seq in latest if seq not in cache.states]
    if len(cache.states) + len(missing) > MAX_CACHED:
        cache.states.clear()
        missing = [seq for _, seq in latest]
    rows = []
    if len(missing) > FETCH_CHUNK:  # a first draw: every latest state at once
        rows = history.state_rows(conn, at)
        missing = []
    for start in range(0, len(missing), FETCH_CHUNK):
        rows += history.state_rows(conn, seqs=missing[start:start + FETCH_CHUNK])
    for seq, expert_id, text in rows:
        cache.states[seq] = history.expert_of(expert_id, text)
    if len(rows) > FETCH_CHUNK:
        # tens of thousands of long-lived objects: left to the collector, every full
        # collection walks them again (tens of milliseconds in the middle of a draw)
        gc.freeze()
    pool = [cache.states[seq] for _, seq in latest]
    if every_row:
        cache.signature, cache.pool = signature, pool
    return list(pool)
