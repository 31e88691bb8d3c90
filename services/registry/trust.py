"""Which broker user may speak for which county (docs/architecture.md, "Trust between sites").

BROKER_TRUST says it, explicitly:
- `shared` (the default; the demo, the tests, one host): the city and every county use
  one broker (or vhost) whose users are all the city's own; a message's county is
  believed.
- `per-county` (multi-site): each county publishes as its own broker user and sets the
  AMQP `user_id` property, which the broker validates; COUNTY_BROKER_USERS maps each
  user to the one county it may file for, and the registry does not start without it.
  A forwarded message (filings or campaign progress) is applied only when the county of
  its routing key and every county its body names are its user's county. Any other
  message is dead-lettered (`COUNTY_NOT_TRUSTED`) and audited, and nobody is answered:
  the county it claims did not send it.

One check (`admit`) serves the filings and the progress snapshots.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from shared import clock
from shared.config import invalid_setting, structured
from shared.contracts import jurisdiction
from shared.db import UnitOfWork
from shared.messaging import dead, topology
from services.registry.models import AuditEntry

log = logging.getLogger(__name__)

SHARED, PER_COUNTY = "shared", "per-county"
MODE_KEY, USERS_KEY = "BROKER_TRUST", "COUNTY_BROKER_USERS"
CODE = "COUNTY_NOT_TRUSTED"
AUDIT_ACTION = "message.untrusted"


@dataclass(frozen=True)
class BrokerTrust:
    mode: str = SHARED
    county_of_user: Mapping[str, str] = field(default_factory=dict)

    @property
    def per_county(self) -> bool:
        return self.mode == PER_COUNTY

    def refusal(self, user_id: str | None, routing_key: str, claimed: set[str]) -> str | None:
        """None if the message may be applied, else why not (Chinese). `claimed`: the
        counties its body names."""
        if not self.per_county:
            return None
        if not user_id:
            return "消息未带经消息队列验证的发送用户（user_id），无法确认报送方代表哪个县区"
        county = self.county_of_user.get(user_id)
        if county is None:
            return f"消息队列用户“{user_id}”未在 {USERS_KEY} 中登记，不能代表任何县区报送"
        parts = (routing_key or "").split(".")
        routed = parts[1] if len(parts) == 3 else None
        if routed != county:
            return (f"消息队列用户“{user_id}”只能代表县区“{county}”报送，"
                    f"消息的路由键“{routing_key}”却指向{f'县区“{routed}”' if routed else '其他县区'}")
        others = sorted(claimed - {county})
        if others:
            return (f"消息队列用户“{user_id}”只能代表县区“{county}”报送，"
                    f"消息内容却声称代表县区“{'、'.join(others)}”")
        return None


def mode_of(config: Mapping[str, Any]) -> str:
    mode = str(config.get(MODE_KEY) or SHARED).strip().lower()
    if mode not in (SHARED, PER_COUNTY):
        raise invalid_setting(MODE_KEY, f"应为 {SHARED} 或 {PER_COUNTY}，而不是“{mode}”",
                              f"must be {SHARED} or {PER_COUNTY}, not {mode!r}")
    return mode


def _user_map(data: Any) -> dict[str, str]:
    if not isinstance(data, Mapping):
        raise ValueError("应为“消息队列用户: 县级区划代码”的映射（JSON 对象）",
                         "must map broker users to county codes (a JSON object)")
    users = {}
    for user, county in data.items():
        code = str(county).strip() if isinstance(county, (str, int)) and not isinstance(county, bool) else ""
        if not isinstance(user, str) or not user.strip() or code not in jurisdiction():
            raise ValueError(f"“{user}: {county}”不是“消息队列用户: 本辖区县级区划代码”",
                             f"{user!r}: {county!r} is not a broker user mapped to a county "
                             "code of the jurisdiction")
        users[user.strip()] = code
    return users


def from_config(config: Mapping[str, Any]) -> BrokerTrust:
    """The trust of this deployment; a SettingError (the registry does not start) when
    it is not explicit: per-county without the map, or a map the shared mode would ignore."""
    mode = mode_of(config)
    users = structured(config, USERS_KEY, _user_map, default={})
    if mode == PER_COUNTY and not users:
        raise invalid_setting(
            USERS_KEY, f"{MODE_KEY}={PER_COUNTY} 时必须配置消息队列用户与县区的对应关系",
            f"{MODE_KEY}={PER_COUNTY} needs the map of broker users to counties")
    if mode == SHARED and users:
        raise invalid_setting(
            USERS_KEY, f"仅在 {MODE_KEY}={PER_COUNTY} 时生效，当前为 {MODE_KEY}={SHARED}；"
                       f"请设置 {MODE_KEY}={PER_COUNTY} 或删除该配置",
            f"only applies with {MODE_KEY}={PER_COUNTY}, and {MODE_KEY} is {SHARED}; "
            f"set {MODE_KEY}={PER_COUNTY} or remove it")
    return BrokerTrust(mode, users)


def claimed_counties(body: Any) -> set[str]:
    """Every county a forwarded message names: its own and each filing's of a batch."""
    if not isinstance(body, dict):
        return set()
    items = body.get("filings") if isinstance(body.get("filings"), list) else []
    values = [body.get("county"), *(i.get("county") for i in items if isinstance(i, dict))]
    return {str(v) for v in values if v is not None}


def admit(uow: UnitOfWork, trust: BrokerTrust, body: Any, *, routing_key: str,
          message_id: str | None, user_id: str | None) -> bool:
    """True if the message may be applied. If not, it is dead-lettered and audited in
    the caller's unit of work (with its inbox mark): nothing of it is applied and no
    decision goes anywhere."""
    claimed = claimed_counties(body)
    reason = trust.refusal(user_id, routing_key, claimed)
    if reason is None:
        return True
    dead_letter_id = dead.set_aside(
        uow, topology.REGISTRY_INTAKE, body, code=CODE, reason=reason, message_id=message_id,
        exchange=topology.FILINGS.name, routing_key=routing_key or "",
        queue=topology.REGISTRY_INTAKE, headers={"x-user-id": user_id or ""})
    single = body if isinstance(body, dict) and "filings" not in body else {}
    enterprise = single.get("enterprise") if isinstance(single.get("enterprise"), dict) else {}
    uscc, filing_id = enterprise.get("uscc"), single.get("filing_id")
    uow.session.add(AuditEntry(
        at=clock.now_utc(), actor=f"broker:{user_id or '-'}"[:100], action=AUDIT_ACTION,
        uscc=uscc if isinstance(uscc, str) and len(uscc) == 18 else None,
        filing_id=filing_id if isinstance(filing_id, str) and len(filing_id) <= 36 else None,
        detail=json.dumps({
            "code": CODE, "reason": reason, "message_id": message_id, "routing_key": routing_key,
            "user_id": user_id, "user_county": trust.county_of_user.get(user_id or ""),
            "claimed_counties": sorted(claimed), "dead_letter_id": dead_letter_id},
            ensure_ascii=False)))
    log.warning("refused message %s on %s from broker user %r (mapped to %s; claims %s): "
                "dead-lettered as %s", message_id, routing_key, user_id,
                trust.county_of_user.get(user_id or ""), sorted(claimed), CODE)
    return False
