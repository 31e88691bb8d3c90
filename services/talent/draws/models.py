"""A draw, its members and the hash-chained audit log of draws (docs/architecture.md,
"Panel draws")."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.talent.models import BigIntPk, TalentBase


class Draw(TalentBase):
    """One draw as it was made. `snapshot` (the eligible ids, sorted), `order`, `panel`
    and `alternates` are JSON text written once; who sits on the panel now (declines,
    replacements) is in `draw_members`. A supplementary draw names its `parent_draw_id`."""

    __tablename__ = "draws"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[str] = mapped_column(Text)       # JSON, see draws.parameters
    seed: Mapped[str] = mapped_column(String(64))        # hex
    # the two long lists (~700 kB each for 20,000 experts) load only when read
    snapshot: Mapped[str] = mapped_column(Text, deferred=True)  # JSON list of eligible ids
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    eligible_count: Mapped[int] = mapped_column(Integer)  # for display; verified: `snapshot`
    order: Mapped[str] = mapped_column("draw_order", Text, deferred=True)  # the whole order
    panel: Mapped[str] = mapped_column(Text)             # JSON list
    alternates: Mapped[str] = mapped_column(Text)        # JSON list
    # for display: how many experts each exclusion code left out ({code: n}); not in the
    # chain, verification recounts them from the history
    exclusions: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))      # drawn | published
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    drawn_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    parent_draw_id: Mapped[str | None] = mapped_column(ForeignKey("draws.id"), nullable=True,
                                                       index=True)
    chain_seq: Mapped[int] = mapped_column(BigIntPk)     # the draw's entry in draw_chain


class DrawMember(TalentBase):
    """An expert drawn onto a panel (role member) or as an alternate. States: standby
    (an alternate not called), invited, accepted, declined (`replaced_by`: who took the
    seat, from the alternates or a supplementary draw)."""

    __tablename__ = "draw_members"

    draw_id: Mapped[str] = mapped_column(ForeignKey("draws.id"), primary_key=True)
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))        # member | alternate
    position: Mapped[int] = mapped_column(Integer)       # 1-based, in the draw order
    state: Mapped[str] = mapped_column(String(16))
    replaced_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrawChainEntry(TalentBase):
    """The audit log: each entry's `hash` = SHA-256(prev_hash + canonical record)
    (services/talent/domain/audit_chain.py). Appended only under the chain lock
    (draws.chain.append)."""

    __tablename__ = "draw_chain"

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=False)
    draw_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))        # draw | decline | publish
    prev_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[str] = mapped_column(Text)            # canonical JSON
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_draw_chain_draw", "draw_id", "seq"),)
