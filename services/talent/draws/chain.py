"""The draws' audit chain in the database (services/talent/domain/audit_chain.py for
the rule). The head is read and the next entry written under one lock, so two draws
committing at the same time cannot both extend the same head (a fork): on PostgreSQL a
transaction-scoped advisory lock (it also covers the empty chain, which a row lock
cannot); SQLite serialises writers anyway (BEGIN IMMEDIATE, shared/db.py). The
primary key on `seq` would refuse a fork even without the lock."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import select, text

from services.talent.domain import audit_chain
from services.talent.draws.models import Draw, DrawChainEntry

CHAIN_LOCK = 715101  # pg_advisory_xact_lock key of the draw chain
READ_BATCH = 1000


def instant(value: datetime) -> str:
    """An instant as the chain records it: UTC, microseconds (same text on both
    databases)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def draw_record(draw: Draw) -> dict:
    """What the chain records of a draw; verification compares it with the stored draw."""
    return {"kind": "draw", "draw_id": draw.id, "purpose": draw.purpose,
            "parameters": json.loads(draw.parameters), "seed": draw.seed,
            "snapshot_hash": draw.snapshot_hash, "panel": json.loads(draw.panel),
            "alternates": json.loads(draw.alternates), "drawn_by": draw.drawn_by,
            "drawn_at": instant(draw.drawn_at), "parent_draw_id": draw.parent_draw_id}


def draw_record_or_none(draw: Draw) -> dict | None:
    """`draw_record`, or None when a stored field is no longer JSON (edited)."""
    try:
        return draw_record(draw)
    except (TypeError, ValueError):
        return None


def append(session, draw_id: str, record: dict, at: datetime) -> DrawChainEntry:
    """Append `record` after the current head; call last in the unit of work (the lock
    is held until it commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    head = session.execute(select(DrawChainEntry.seq, DrawChainEntry.hash)
                           .order_by(DrawChainEntry.seq.desc()).limit(1)).first()
    prev = audit_chain.ChainEntry(head.seq, "", {}, head.hash) if head else None
    entry = audit_chain.append(prev, record)
    row = DrawChainEntry(seq=entry.seq, draw_id=draw_id, kind=record["kind"],
                         prev_hash=entry.prev_hash, record=audit_chain.canonical(record),
                         hash=entry.hash, at=at)
    session.add(row)
    session.flush()
    return row


def entries(session) -> Iterator[audit_chain.ChainEntry]:
    """The whole chain in order, read in batches."""
    after = 0
    while True:
        rows = session.execute(
            select(DrawChainEntry.seq, DrawChainEntry.prev_hash, DrawChainEntry.record,
                   DrawChainEntry.hash).where(DrawChainEntry.seq > after)
            .order_by(DrawChainEntry.seq).limit(READ_BATCH)).all()
        for row in rows:
            yield audit_chain.ChainEntry(row.seq, row.prev_hash, _record(row.record), row.hash)
        if len(rows) < READ_BATCH:
            return
        after = rows[-1].seq


def _record(text_: str):
    try:
        return json.loads(text_)
    except ValueError:
        return text_  # an edited row that is no longer JSON: its hash will not match


def head_hash(session) -> str:
    head = session.execute(select(DrawChainEntry.hash).order_by(DrawChainEntry.seq.desc())
                           .limit(1)).scalar()
    return head or audit_chain.GENESIS
