"""Makes a broker match a multi-site layout (shared/messaging/sites.py) through the
RabbitMQ management HTTP API: read what is there, change only what differs, so a
second `apply` changes nothing. Also tears a layout down and rotates a user's password.

Logs name what changed, never a password (shovel URIs are logged redacted).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import quote

import requests

from shared.messaging import sites
from shared.messaging.topology import management_endpoint

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED, DELETED, ABSENT = "created", "updated", "unchanged", "deleted", "absent"


class ManagementError(sites.TopologyError):
    """The broker refused, or could not be reached."""

    code = "BROKER_MANAGEMENT_FAILED"


@dataclass(frozen=True)
class Change:
    kind: str  # vhost, user, permission, topic_permission, exchange, queue, binding, policy, shovel
    vhost: str
    name: str
    action: str


@dataclass
class Report:
    changes: list[Change] = field(default_factory=list)

    def add(self, kind: str, vhost: str, name: str, action: str) -> None:
        self.changes.append(Change(kind, vhost, name, action))
        if action != UNCHANGED:
            log.info("%s %s %s on vhost %r", action, kind, name, vhost)

    def count(self, action: str | None = None, kind: str | None = None) -> int:
        return sum(1 for c in self.changes
                   if (action is None or c.action == action) and (kind is None or c.kind == kind))

    @property
    def changed(self) -> bool:
        return any(c.action not in (UNCHANGED, ABSENT) for c in self.changes)


def _q(value: str) -> str:
    return quote(value, safe="")


class Management:
    """A thin client of the management API (one broker)."""

    def __init__(self, management_url: str, timeout: float = 15.0):
        self.base, self.auth = management_endpoint(management_url)
        self.admin = self.auth[0]
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        try:
            resp = self.session.request(method, f"{self.base}/api{path}", auth=self.auth,
                                        timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise ManagementError(f"无法连接消息队列管理接口 {self.base}：{type(exc).__name__}",
                                  f"management API {self.base} unreachable: {exc}") from exc
        if resp.status_code == 401:
            raise ManagementError(f"消息队列管理接口 {self.base} 拒绝了用户“{self.admin}”的登录",
                                  f"management API refused user {self.admin!r}")
        return resp

    def get(self, path: str) -> Any | None:
        """The JSON at `path`, or None when it does not exist."""
        resp = self._call("GET", path)
        if resp.status_code == 404:
            return None
        self._check(resp, "GET", path)
        return resp.json()

    def send(self, method: str, path: str, body: Mapping | None = None) -> None:
        resp = self._call(method, path, json=body)
        if method == "DELETE" and resp.status_code == 404:
            return
        self._check(resp, method, path)

    @staticmethod
    def _check(resp: requests.Response, method: str, path: str) -> None:
        if resp.status_code >= 400:
            try:
                reason = resp.json().get("reason", resp.text)
            except ValueError:
                reason = resp.text
            reason = sites.redact_uri(str(reason))  # a refused shovel's reason quotes its URIs
            raise ManagementError(f"消息队列拒绝了 {method} {path}：{reason}",
                                  f"{method} {path}: {resp.status_code} {reason}")

    def overview(self) -> dict:
        return self.get("/overview") or {}


# -- apply ------------------------------------------------------------------------------------

def _tags(value: Any) -> set[str]:
    if isinstance(value, str):
        return {t for t in value.split(",") if t}
    return set(value or ())


def _same_permission(found: Mapping | None, wanted: Mapping) -> bool:
    return found is not None and all(found.get(k) == v for k, v in wanted.items())


def apply(api: Management, lay: sites.Layout, passwords: Mapping[str, str]) -> Report:
    """Creates or corrects everything of `lay` on the broker; idempotent."""
    report = Report()
    for vhost in lay.vhosts:
        _ensure_vhost(api, vhost, report)
    for user in lay.users:
        _ensure_user(api, user, passwords[user.name], report)
    for p in lay.permissions:
        wanted = {"configure": p.configure, "write": p.write, "read": p.read}
        _ensure(api, report, "permission", p.vhost, p.user,
                f"/permissions/{_q(p.vhost)}/{_q(p.user)}", wanted, _same_permission)
    _ensure_topic_permissions(api, lay.topic_permissions, report)
    for e in lay.exchanges:
        _ensure_declared(api, report, "exchange", e.vhost, e.name,
                         f"/exchanges/{_q(e.vhost)}/{_q(e.name)}",
                         {"type": e.type, "durable": e.durable, "auto_delete": False,
                          "internal": False, "arguments": {}})
    for q in lay.queues:
        _ensure_declared(api, report, "queue", q.vhost, q.name, f"/queues/{_q(q.vhost)}/{_q(q.name)}",
                         {"durable": q.durable, "auto_delete": False, "arguments": dict(q.arguments)})
    for b in lay.bindings:
        _ensure_binding(api, b, report)
    for p in lay.policies:
        _ensure(api, report, "policy", p.vhost, p.name, f"/policies/{_q(p.vhost)}/{_q(p.name)}",
                dict(p.body), _same_permission)
    for s in lay.shovels:
        _ensure(api, report, "shovel", s.vhost, s.name,
                f"/parameters/shovel/{_q(s.vhost)}/{_q(s.name)}", {"value": dict(s.value)},
                _same_shovel)
    return report


def _ensure(api, report, kind, vhost, name, path, wanted, same) -> None:
    found = api.get(path)
    if same(found, wanted):
        report.add(kind, vhost, name, UNCHANGED)
        return
    api.send("PUT", path, wanted)
    report.add(kind, vhost, name, CREATED if found is None else UPDATED)


def _same_shovel(found: Mapping | None, wanted: Mapping) -> bool:
    return found is not None and found.get("value") == wanted["value"]


def _ensure_vhost(api: Management, vhost: str, report: Report) -> None:
    found = api.get(f"/vhosts/{_q(vhost)}")
    if found is None:
        api.send("PUT", f"/vhosts/{_q(vhost)}", {})
    report.add("vhost", vhost, vhost, CREATED if found is None else UNCHANGED)
    # the operator applying the layout declares the exchanges and queues through the API,
    # which takes the operator's own permissions on the vhost
    wanted = {"configure": ".*", "write": ".*", "read": ".*"}
    path = f"/permissions/{_q(vhost)}/{_q(api.admin)}"
    if not _same_permission(api.get(path), wanted):
        api.send("PUT", path, wanted)


def _ensure_user(api: Management, user: sites.User, password: str, report: Report) -> None:
    path = f"/users/{_q(user.name)}"
    found = api.get(path)
    if (found is not None and _tags(found.get("tags")) == set(user.tags)
            and sites.password_matches(password, found.get("password_hash", ""),
                                       found.get("hashing_algorithm", sites.HASHING_ALGORITHM))):
        report.add("user", "", user.name, UNCHANGED)
        return
    put_user(api, user.name, password, user.tags)
    report.add("user", "", user.name, CREATED if found is None else UPDATED)


def put_user(api: Management, name: str, password: str, tags: Iterable[str]) -> None:
    api.send("PUT", f"/users/{_q(name)}",
             {"password_hash": sites.password_hash(password),
              "hashing_algorithm": sites.HASHING_ALGORITHM, "tags": ",".join(tags)})


def _ensure_topic_permissions(api: Management, wanted: Iterable[sites.TopicPermission],
                              report: Report) -> None:
    by_user_vhost: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for t in wanted:
        by_user_vhost.setdefault((t.user, t.vhost), {})[t.exchange] = (t.write, t.read)
    for (user, vhost), rules in by_user_vhost.items():
        path = f"/topic-permissions/{_q(vhost)}/{_q(user)}"
        found = {t["exchange"]: (t["write"], t["read"]) for t in api.get(path) or []}
        if set(found) - set(rules):  # one left over from an older layout: start afresh
            api.send("DELETE", path)
            found = {}
        for exchange, (write, read) in rules.items():
            name = f"{user}@{exchange}"
            if found.get(exchange) == (write, read):
                report.add("topic_permission", vhost, name, UNCHANGED)
                continue
            api.send("PUT", path, {"exchange": exchange, "write": write, "read": read})
            report.add("topic_permission", vhost, name, UPDATED if exchange in found else CREATED)


def _ensure_declared(api, report, kind, vhost, name, path, wanted) -> None:
    """Exchanges and queues cannot change in place: a different one found is an error
    (deleting it would drop its messages), for the operator to resolve."""
    found = api.get(path)
    if found is None:
        api.send("PUT", path, wanted)
        report.add(kind, vhost, name, CREATED)
        return
    differs = [k for k, v in wanted.items()
               if (dict(found.get(k) or {}) != v if k == "arguments" else found.get(k, v) != v)]
    if differs:
        raise ManagementError(
            f"{vhost} 上已有同名的 {kind}“{name}”，但属性不同（{'、'.join(differs)}）；"
            "请先确认其中没有待处理的消息，再手工删除后重新执行",
            f"{kind} {name!r} on {vhost!r} exists with other {differs}")
    report.add(kind, vhost, name, UNCHANGED)


def _ensure_binding(api: Management, b: sites.BindingDef, report: Report) -> None:
    path = f"/bindings/{_q(b.vhost)}/e/{_q(b.exchange)}/q/{_q(b.queue)}"
    name = f"{b.exchange} -> {b.queue} ({b.routing_key})"
    if any(x.get("routing_key") == b.routing_key for x in api.get(path) or []):
        report.add("binding", b.vhost, name, UNCHANGED)
        return
    api.send("POST", path, {"routing_key": b.routing_key, "arguments": {}})
    report.add("binding", b.vhost, name, CREATED)


# -- teardown, rotation, state ----------------------------------------------------------------

def teardown(api: Management, lay: sites.Layout) -> Report:
    """Deletes the layout's shovels, vhosts (with everything in them) and users."""
    report = Report()
    for s in lay.shovels:
        path = f"/parameters/shovel/{_q(s.vhost)}/{_q(s.name)}"
        found = api.get(path)
        if found is not None:
            api.send("DELETE", path)
        report.add("shovel", s.vhost, s.name, DELETED if found is not None else ABSENT)
    for vhost in lay.vhosts:
        found = api.get(f"/vhosts/{_q(vhost)}")
        if found is not None:
            api.send("DELETE", f"/vhosts/{_q(vhost)}")
        report.add("vhost", vhost, vhost, DELETED if found is not None else ABSENT)
    for user in lay.users:
        found = api.get(f"/users/{_q(user.name)}")
        if found is not None:
            api.send("DELETE", f"/users/{_q(user.name)}")
        report.add("user", "", user.name, DELETED if found is not None else ABSENT)
    return report


def rotate_password(api: Management, lay: sites.Layout, user: str, password: str) -> Report:
    """Sets `user`'s new password (tags kept). The shovel user's password is also in the
    shovels' URIs: `lay` must carry the new one, and its shovels are put again."""
    report = Report()
    found = lay.user(user)
    if api.get(f"/users/{_q(user)}") is None:
        raise ManagementError(f"消息队列中没有用户“{user}”，请先执行 cqo topology apply",
                              f"no broker user {user!r}: apply the layout first")
    put_user(api, user, password, found.tags)
    report.add("user", "", user, UPDATED)
    if found.role == "shovel":
        for s in lay.shovels:
            _ensure(api, report, "shovel", s.vhost, s.name,
                    f"/parameters/shovel/{_q(s.vhost)}/{_q(s.name)}", {"value": dict(s.value)},
                    _same_shovel)
    return report


def close_connections(api: Management, user: str) -> int:
    """Closes every connection of `user` (they must log in again); returns how many."""
    closed = 0
    for conn in api.get("/connections") or []:
        if conn.get("user") == user:
            api.send("DELETE", f"/connections/{_q(conn['name'])}")
            closed += 1
    if closed:
        log.info("closed %d connection(s) of broker user %s", closed, user)
    return closed


def shovel_states(api: Management, lay: sites.Layout) -> dict[str, str]:
    """name -> state ("running", "starting", "terminated"...) of the layout's shovels."""
    states: dict[str, str] = {}
    for vhost in {s.vhost for s in lay.shovels}:
        for status in api.get(f"/shovels/{_q(vhost)}") or []:
            states[status["name"]] = status.get("state", "")
    return {s.name: states.get(s.name, "missing") for s in lay.shovels}
