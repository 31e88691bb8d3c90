"""A filing's path across the sites, hop by hop (`cqo trace`, docs/multisite.md).

No site can read another's database, so each answers for the hops it saw
(`GET /api/v1/filings/{id}/trace` at the county and at the city) and the caller merges
them. The county knows intake, pre-review, its outbox row (written, published) and the
decisions it got back; the city knows when the filing was received, the shovel's
forward headers it came with, its decision and when that was published.

A hop's time is the recorder's clock, to the microsecond, except the shovel's: RabbitMQ's
`x-shovelled-timestamp` has whole seconds. Merged hops are put in time order per filing
version; a whole-second time is placed inside its second by the hops of the same
message around it (a message is published, then shovelled, then received), so that
truncation alone never shows a message shovelled before it was published. Times of two
sites that contradict the message's path (beyond that second) are reported as a
probable clock difference, not hidden.

Pure: no broker, no database, no service imports (the CLI imports it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from marshmallow import Schema, fields

COUNTY, CITY, BROKER = "county", "city", "broker"
SHOVELLED_HEADER, SHOVELLED_AT_HEADER = "x-shovelled", "x-shovelled-timestamp"

# code -> (Chinese name, where it happens), in the order of a filing's path
HOPS: dict[str, tuple[str, str]] = {
    "submitted": ("县局受理", COUNTY),
    "reviewed": ("县局预审", COUNTY),
    "outbox_written": ("报送消息写入发件箱", COUNTY),
    "published": ("报送消息已发布", COUNTY),
    "shovelled": ("经转运到达市局", BROKER),
    "received": ("市局接收", CITY),
    "decided": ("市局作出决定", CITY),
    "decision_published": ("决定消息已发布", CITY),
    "decision_shovelled": ("决定经转运到达县局", BROKER),
    "decision_applied": ("县局收到决定", COUNTY),
}
RANK = {code: rank for rank, code in enumerate(HOPS)}
CLOCK_SKEW_NOTE = "{later}（{later_at}）早于{earlier}（{earlier_at}），两站点的时钟可能不一致"


def hop_name(code: str) -> str:
    return HOPS[code][0] if code in HOPS else code


@dataclass(frozen=True)
class Hop:
    hop: str
    version: int
    at: datetime  # aware
    message_id: str | None = None
    detail: str | None = None  # what happened (e.g. the decision's outcome), Chinese
    by: str | None = None  # the shovel that carried it
    precision_s: int = 0  # 1: whole seconds (x-shovelled-timestamp)
    site: str = ""  # who reported it: "city", or the county code

    def to_dict(self) -> dict:
        return {"hop": self.hop, "name": hop_name(self.hop), "version": self.version,
                "at": self.at, "precision_s": self.precision_s, "message_id": self.message_id,
                "detail": self.detail, "by": self.by, "site": self.site}


# -- what a shovel tells ---------------------------------------------------------------

@dataclass(frozen=True)
class Forwarded:
    """The shovel hop of a delivery, from its forward headers (absent: not shovelled)."""

    at: datetime | None
    by: str | None  # "<shovel name>@<its vhost>"


def _text(value, limit: int = 200) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value[:limit] if isinstance(value, str) and value else None


def forwarded(headers: Mapping | None) -> Forwarded | None:
    """`x-shovelled` (newest shovel first) and `x-shovelled-timestamp` (whole seconds
    since the epoch) of a delivery; a value of another shape is ignored, never raised."""
    if not isinstance(headers, Mapping):
        return None
    stamp, entries = headers.get(SHOVELLED_AT_HEADER), headers.get(SHOVELLED_HEADER)
    at = None
    if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 2 ** 33:
        at = datetime.fromtimestamp(stamp, timezone.utc)
    by = None
    if isinstance(entries, (list, tuple)) and entries and isinstance(entries[0], Mapping):
        name, vhost = _text(entries[0].get("shovel-name")), _text(entries[0].get("shovel-vhost"))
        by = name and (f"{name}@{vhost}" if vhost else name)[:200]
    if at is None and by is None:
        return None
    return Forwarded(at, by)


# -- a site's answer ---------------------------------------------------------------------

class HopOut(Schema):
    hop = fields.String(metadata={"description": "环节代码：" + "、".join(HOPS)})
    name = fields.String(metadata={"description": "环节名称"})
    version = fields.Integer(metadata={"description": "备案版本"})
    at = fields.AwareDateTime(metadata={"description": "时间（ISO 8601，UTC）"})
    precision_s = fields.Integer(metadata={
        "description": "时间精度（秒）：0 为微秒；1 为整秒（消息转运的 x-shovelled-timestamp）"})
    message_id = fields.String(allow_none=True, metadata={"description": "消息编号（message_id）"})
    detail = fields.String(allow_none=True, metadata={"description": "说明（如决定结果）"})
    by = fields.String(allow_none=True, metadata={"description": "转运者（shovel 名称@虚拟主机）"})
    site = fields.String(metadata={"description": "记录该环节的站点：city 或县级区划代码"})


class TraceOut(Schema):
    filing_id = fields.String()
    site = fields.String(metadata={"description": "回答的站点：city（市局）或 county（县局）"})
    county = fields.String(metadata={"description": "备案所属县（市、区）代码"})
    hops = fields.List(fields.Nested(HopOut), metadata={"description": "本站点记录的环节，按时间顺序"})


def answer(filing_id: str, *, site: str, county: str, hops: Iterable[Hop]) -> dict:
    """A site's trace answer (TraceOut), its hops stamped with the site and ordered."""
    reporter = CITY if site == CITY else county
    stamped = [replace(h, site=reporter) for h in hops]
    return TraceOut().dump({"filing_id": filing_id, "site": site, "county": county,
                            "hops": [h.to_dict() for h in order(stamped)]})


def hops_of(answer_body: Mapping) -> list[Hop]:
    """The hops of a site's answer (as JSON), back as Hop values."""
    return [Hop(hop=h["hop"], version=int(h["version"]), at=_parse(h["at"]),
                message_id=h.get("message_id"), detail=h.get("detail"), by=h.get("by"),
                precision_s=int(h.get("precision_s") or 0), site=h.get("site") or "")
            for h in answer_body.get("hops") or ()]


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# -- merging -------------------------------------------------------------------------------

def _placed(hop: Hop, same_message: list[Hop]) -> datetime:
    """When a whole-second hop happened, as far as the hops of its message tell: not
    before the exact hops that precede it on the path, and still inside its second."""
    if not hop.precision_s:
        return hop.at
    before = [h.at for h in same_message if not h.precision_s and RANK.get(h.hop, 99) < RANK.get(hop.hop, 99)]
    latest = max(before, default=hop.at)
    return min(max(hop.at, latest), hop.at + timedelta(seconds=hop.precision_s) - timedelta(microseconds=1))


def _by_message(hops: Iterable[Hop]) -> dict[str, list[Hop]]:
    """The hops that name a message, grouped by it."""
    groups: dict[str, list[Hop]] = {}
    for h in hops:
        if h.message_id:
            groups.setdefault(h.message_id, []).append(h)
    return groups


def order(hops: Iterable[Hop]) -> list[Hop]:
    """Each version's hops in time order (the path order breaks ties); duplicates (the
    same hop, message and time reported twice) once."""
    unique = list(dict.fromkeys(hops))
    by_message = _by_message(unique)
    placed = {h: _placed(h, by_message.get(h.message_id, [])) if h.message_id else h.at for h in unique}
    return sorted(unique, key=lambda h: (h.version, placed[h], RANK.get(h.hop, len(RANK)), h.site))


def clock_notes(hops: Iterable[Hop], show=lambda at: at.isoformat()) -> list[str]:
    """A hop of a message that is earlier than one the message must have passed before
    it (beyond the later one's precision): the two sites' clocks disagree."""
    notes = []
    for group in _by_message(hops).values():
        for later in group:
            # the latest hop of another site that the message passed before this one
            passed = [h for h in group if h.site != later.site
                      and RANK.get(h.hop, 99) < RANK.get(later.hop, 99)
                      and later.at + timedelta(seconds=later.precision_s) < h.at]
            if passed:
                earlier = max(passed, key=lambda h: h.at)
                notes.append(CLOCK_SKEW_NOTE.format(
                    later=hop_name(later.hop), later_at=show(later.at),
                    earlier=hop_name(earlier.hop), earlier_at=show(earlier.at)))
    return notes


@dataclass
class SiteResult:
    """What one site said: its hops, or that it has no record (404), or why it could
    not be asked (`error`, Chinese)."""

    site: str  # "city" or "county"
    url: str
    hops: list[Hop] = field(default_factory=list)
    county: str | None = None
    found: bool = False
    error: str | None = None


@dataclass
class Trace:
    filing_id: str
    hops: list[Hop]
    sites: list[SiteResult]
    notes: list[str]

    @property
    def complete(self) -> bool:
        """Every site answered (a site without a record of the filing did answer)."""
        return all(s.error is None for s in self.sites)

    @property
    def found(self) -> bool:
        return any(s.found for s in self.sites)


def merge(filing_id: str, sites: list[SiteResult], show=lambda at: at.isoformat()) -> Trace:
    hops = order(h for s in sites for h in s.hops)
    return Trace(filing_id, hops, sites, clock_notes(hops, show))
