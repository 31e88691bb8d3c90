"""A hash-chained audit log of draws: each entry carries the previous entry's hash.

Editing a stored draw together with its own hash is not enough to hide it: the next
entry's `prev_hash` no longer matches, and rewriting the whole tail would change the
head hash that was published or handed out with every draw record.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> str:
    """One text per record: sorted keys, no spaces, UTF-8 kept (Chinese purposes)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def entry_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(record)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    seq: int
    prev_hash: str
    record: Mapping[str, Any]
    hash: str


def append(prev: ChainEntry | None, record: Mapping[str, Any]) -> ChainEntry:
    prev_hash = prev.hash if prev else GENESIS
    return ChainEntry(seq=(prev.seq + 1) if prev else 1, prev_hash=prev_hash,
                      record=record, hash=entry_hash(prev_hash, record))


def first_break(entries: Iterable[ChainEntry]) -> int | None:
    """The seq of the first entry that does not chain (wrong prev_hash, a gap, or a hash
    that is not its record's), or None when the whole chain holds."""
    prev_hash, expected_seq = GENESIS, 1
    for entry in entries:
        if (entry.seq != expected_seq or entry.prev_hash != prev_hash
                or entry.hash != entry_hash(prev_hash, entry.record)):
            return entry.seq
        prev_hash, expected_seq = entry.hash, entry.seq + 1
    return None
