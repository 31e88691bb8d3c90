"""The multi-site broker layout (docs/multisite.md): what `cqo topology` declares, as data.

A city site and one site per county, each a vhost (of one broker, or the same
definitions on a broker per site), each with its own broker user, joined by dynamic
shovels that a shovel user runs. Nothing here talks to a broker: `layout()` says what
should exist, shared/messaging/management.py makes a broker match it, and `definitions()`
is the same thing as a RabbitMQ definitions document.

Least privilege, by role (the regexes are RabbitMQ's configure / write / read):
- a county's user, on its own vhost only: declares the exchanges and its own queues
  (the services declare what they use at start), publishes filings and events under
  its own county code only (topic permissions), reads its own queues only, and cannot
  publish decisions or notices, nor touch the shovels' staging queues;
- the city's user, on the city vhost only: everything but the staging queues, and it
  never publishes a filing nor a county's event (only the shovels bring those);
- the shovel user (tag `impersonator`: it republishes messages whose `user_id` is a
  county's user): reads the staging queues and writes to the exchanges of the
  other side, each route under its county's routing keys only.

Names follow one rule so the registry's trust map (services/registry/trust.py,
COUNTY_BROKER_USERS) can be read off the layout: county 130921's user is
`<prefix>_130921` (`cqo_130921` by default) on vhost `<prefix>-130921`.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping
from urllib.parse import quote

from kombu import Queue

from shared.messaging import topology

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
IMPERSONATOR = "impersonator"
REDACTED = "******"
NOTHING = "^$"  # a RabbitMQ permission that matches no resource / routing key
_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SITE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class TopologyError(RuntimeError):
    """str() is English (logs); `message` is Chinese, for the operator; `code` is stable."""

    code = "TOPOLOGY_ERROR"

    def __init__(self, message: str, english: str):
        super().__init__(english)
        self.message = message


class LayoutError(TopologyError, ValueError):
    """A layout that cannot be declared (bad counties, prefix, site name, passwords)."""

    code = "TOPOLOGY_INVALID"


@dataclass(frozen=True)
class Names:
    """How sites, vhosts and users are named (one prefix per deployment; a test run
    takes a prefix of its own so that two runs never share a vhost or a user)."""

    prefix: str = "cqo"
    city: str = "city"

    def vhost(self, site: str) -> str:
        return f"{self.prefix}-{site}"

    def user(self, site: str) -> str:
        return f"{self.prefix}_{site}"

    @property
    def shovel_user(self) -> str:
        return f"{self.prefix}_shovel"


@dataclass(frozen=True)
class User:
    name: str
    role: str  # "county", "city" or "shovel"
    site: str  # the county code, the city's site name, or "" for the shovel user
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Permission:
    user: str
    vhost: str
    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermission:
    user: str
    vhost: str
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class ExchangeDef:
    vhost: str
    name: str
    type: str
    durable: bool = True


@dataclass(frozen=True)
class QueueDef:
    vhost: str
    name: str
    arguments: Mapping[str, object]
    durable: bool = True


@dataclass(frozen=True)
class BindingDef:
    vhost: str
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True)
class PolicyDef:
    vhost: str
    name: str
    body: Mapping[str, object]  # pattern, apply-to, priority, definition


@dataclass(frozen=True)
class ShovelDef:
    vhost: str  # where it runs: the vhost of the queue it drains
    name: str
    county: str
    direction: str  # "up" (county to city) or "down"
    value: Mapping[str, object]  # src-uri / dest-uri carry the shovel user's password


@dataclass(frozen=True)
class Layout:
    names: Names
    counties: tuple[str, ...]
    vhosts: tuple[str, ...]
    users: tuple[User, ...]
    permissions: tuple[Permission, ...]
    topic_permissions: tuple[TopicPermission, ...]
    exchanges: tuple[ExchangeDef, ...]
    queues: tuple[QueueDef, ...]
    bindings: tuple[BindingDef, ...]
    policies: tuple[PolicyDef, ...]
    shovels: tuple[ShovelDef, ...] = field(default=())

    def user(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        raise LayoutError(f"拓扑中没有消息队列用户“{name}”",
                          f"no broker user {name!r} in this layout")

    def county_broker_users(self) -> dict[str, str]:
        """The registry's COUNTY_BROKER_USERS for this layout (BROKER_TRUST=per-county)."""
        return {u.name: u.site for u in self.users if u.role == "county"}

    def redacted(self) -> Layout:
        """The same layout with no password in it (for plan, export and logs)."""
        return replace(self, shovels=tuple(
            replace(s, value={k: redact_uri(v) if k.endswith("-uri") else v
                              for k, v in s.value.items()}) for s in self.shovels))


# -- building the layout ----------------------------------------------------------------

def check_counties(counties: Iterable[str], known: Iterable[str] | None = None) -> tuple[str, ...]:
    """The counties, in order, without repeats; each a routing word and, when `known` is
    given (the jurisdiction), one of them."""
    known_set = set(known) if known is not None else None
    result: list[str] = []
    for county in counties:
        county = str(county).strip()
        try:
            topology.check_county(county)
        except ValueError:
            raise LayoutError(f"县级区划代码“{county}”不能用作路由键（应为字母、数字、下划线或连字符）",
                              f"county code {county!r} is not one routing-key word") from None
        if known_set is not None and county not in known_set:
            raise LayoutError(f"“{county}”不是本辖区的县级区划代码",
                              f"{county!r} is not a county of the jurisdiction")
        if county not in result:
            result.append(county)
    if not result:
        raise LayoutError("至少需要一个县区", "at least one county is needed")
    return tuple(result)


def check_names(names: Names, counties: Iterable[str]) -> Names:
    if not _PREFIX.match(names.prefix):
        raise LayoutError(f"前缀“{names.prefix}”无效：应以小写字母开头，只含小写字母、数字和下划线，最长 40 个字符",
                          f"invalid prefix {names.prefix!r}")
    if not _SITE.match(names.city) or names.city == "shovel":
        raise LayoutError(f"市级站点名“{names.city}”无效：应以小写字母开头，只含小写字母、数字和下划线，且不能是 shovel",
                          f"invalid city site name {names.city!r}")
    if names.city in set(counties):
        raise LayoutError(f"市级站点名“{names.city}”与县区代码重复", "city site name is a county code")
    return names


def _alternation(values: Iterable[str]) -> str:
    return "|".join(re.escape(v) for v in values)


def nameko_service(county: str) -> str:
    """A county's nameko service name (docs/architecture.md: `filing_<county>`)."""
    return f"filing_{county}"


def _nameko_resources(service: str) -> tuple[str, str]:
    """(exchanges, queues) regex alternatives of one nameko service's own: its event
    exchange and the RPC exchange; its RPC queue, its RPC reply queues and its
    event-handler queues (nameko 2.14's names)."""
    svc = re.escape(service)
    return (rf"nameko-rpc|{svc}\.events",
            rf"rpc-{svc}|rpc\.reply-{svc}-[0-9a-f-]+|evt-.+--{svc}\..+")


def _county_rules(names: Names, county: str) -> tuple[Permission, list[TopicPermission]]:
    user, vhost, c = names.user(county), names.vhost(county), re.escape(county)
    own_queues = rf"filing\.{c}\.(decisions|notices)"
    nameko_exchanges, nameko_queues = _nameko_resources(nameko_service(county))
    # cqo.dead is an exchange (dead letters are published to it) and a queue (bound to it)
    configure = (rf"^(cqo\.(filings|decisions|notices|dead|events)|{own_queues}"
                 rf"|{nameko_exchanges}|{nameko_queues})$")
    write = rf"^(cqo\.(filings|events|dead)|{own_queues}|{nameko_exchanges}|{nameko_queues})$"
    read = rf"^(cqo\.(decisions|notices|dead)|{own_queues}|{nameko_exchanges}|{nameko_queues})$"
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # RPC reply keys
    svc = re.escape(nameko_service(county))
    topics = [
        TopicPermission(user, vhost, topology.FILINGS.name, rf"^filing\.{c}\.[^.]+$", NOTHING),
        TopicPermission(user, vhost, topology.EVENTS.name, rf"^filing\.{c}\.[^.]+$", NOTHING),
        TopicPermission(user, vhost, topology.DECISIONS.name, NOTHING, rf"^decision\.{c}$"),
        TopicPermission(user, vhost, topology.NOTICES.name, NOTHING,
                        rf"^notice\.({c}|all)$"),
        TopicPermission(user, vhost, "nameko-rpc", rf"^({svc}\.[^.]+|{uuid})$",
                        rf"^({svc}\.\*|{uuid})$"),
    ]
    return Permission(user, vhost, configure, write, read), topics


def _city_rules(names: Names) -> tuple[Permission, list[TopicPermission]]:
    user, vhost = names.user(names.city), names.vhost(names.city)
    # everything on its own site except the shovels' staging queues
    anything_but_staging = r"^(?!shovel\.).*$"
    return (Permission(user, vhost, anything_but_staging, anything_but_staging, anything_but_staging),
            [  # filings and a county's events reach the city only through the shovels
                TopicPermission(user, vhost, topology.FILINGS.name, NOTHING, ".*"),
                TopicPermission(user, vhost, topology.EVENTS.name, r"^(?!filing\.).*$", ".*"),
            ])


def _shovel_rules(names: Names, counties: tuple[str, ...]) -> tuple[list[Permission], list[TopicPermission]]:
    user, city = names.shovel_user, names.vhost(names.city)
    every = _alternation(counties)
    # the shovel declares (re-declares) its source queue, hence configure on it
    down = rf"^shovel\.({every})\.(decisions|notices)$"
    permissions = [Permission(user, city, down, r"^cqo\.(filings|events)$", down)]
    topics = [TopicPermission(user, city, topology.FILINGS.name, rf"^filing\.({every})\.[^.]+$", NOTHING),
              TopicPermission(user, city, topology.EVENTS.name, rf"^filing\.({every})\.[^.]+$", NOTHING)]
    for county in counties:
        vhost, c = names.vhost(county), re.escape(county)
        up = rf"^shovel\.{c}\.(filings|events)$"
        permissions.append(Permission(user, vhost, up, r"^cqo\.(decisions|notices)$", up))
        topics += [TopicPermission(user, vhost, topology.DECISIONS.name, rf"^decision\.{c}$", NOTHING),
                   TopicPermission(user, vhost, topology.NOTICES.name,
                                   rf"^notice\.({c}|all)$", NOTHING)]
    return permissions, topics


def _queue_defs(vhost: str, queues: Iterable[Queue]) -> tuple[list[QueueDef], list[BindingDef]]:
    defs, bindings = [], []
    for q in queues:
        defs.append(QueueDef(vhost, q.name, dict(q.queue_arguments or {}), bool(q.durable)))
        bindings += [BindingDef(vhost, b.exchange.name, q.name, b.routing_key) for b in q.bindings]
    return defs, bindings


def amqp_uri(address: str, user: str, password: str, vhost: str) -> str:
    """amqp://user:password@host:port/vhost, each part quoted."""
    return (f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{address}/"
            f"{quote(vhost, safe='')}")


def layout(counties: Iterable[str], passwords: Mapping[str, str] | None = None, *,
           names: Names = Names(), amqp_address: str = "127.0.0.1:5672",
           known_counties: Iterable[str] | None = None,
           delivery_limit: int = topology.DEFAULT_DELIVERY_LIMIT) -> Layout:
    """Everything to declare for the city and `counties`. `passwords` (user -> password)
    only fill the shovels' URIs (the shovel user's); without them the URIs say REDACTED.
    `amqp_address` (host:port) is where the shovels reach the sites' broker."""
    counties = check_counties(counties, known_counties)
    names = check_names(names, counties)
    sites = (names.city, *counties)
    city_vhost = names.vhost(names.city)
    county_users = [User(names.user(c), "county", c) for c in counties]
    users = (User(names.user(names.city), "city", names.city), *county_users,
             User(names.shovel_user, "shovel", "", (IMPERSONATOR,)))
    permissions, topics = [], []
    city_permission, city_topics = _city_rules(names)
    permissions.append(city_permission)
    topics += city_topics
    for county in counties:
        permission, county_topics = _county_rules(names, county)
        permissions.append(permission)
        topics += county_topics
    shovel_permissions, shovel_topics = _shovel_rules(names, counties)
    permissions += shovel_permissions
    topics += shovel_topics

    exchanges = [ExchangeDef(names.vhost(site), e.name, e.type, bool(e.durable))
                 for site in sites for e in topology.EXCHANGES]
    queues, bindings = _queue_defs(city_vhost, topology.registry_queues())
    for county in counties:
        staging = topology.shovel_queues(county)
        for vhost, declared in ((names.vhost(county), topology.county_queues(county) + staging["county"]),
                                (city_vhost, staging["city"])):
            more_queues, more_bindings = _queue_defs(vhost, declared)
            queues += more_queues
            bindings += more_bindings
    policies = [PolicyDef(names.vhost(site), p["name"], {k: v for k, v in p.items() if k != "name"})
                for site in sites for p in topology.policy_definitions(delivery_limit)]

    shovel_password = (passwords or {}).get(names.shovel_user, REDACTED)
    city_uri = amqp_uri(amqp_address, names.shovel_user, shovel_password, city_vhost)
    shovels = []
    for county in counties:
        county_uri = amqp_uri(amqp_address, names.shovel_user, shovel_password, names.vhost(county))
        for definition in topology.shovel_definitions(county, county_uri, city_uri):
            up = definition["value"]["src-uri"] == county_uri
            shovels.append(ShovelDef(names.vhost(county) if up else city_vhost, definition["name"],
                                     county, "up" if up else "down", definition["value"]))
    return Layout(names, counties, tuple(names.vhost(s) for s in sites), users,
                  tuple(permissions), tuple(topics), tuple(exchanges), tuple(queues),
                  tuple(bindings), tuple(policies), tuple(shovels))


# -- passwords ---------------------------------------------------------------------------

_URI_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s\"']*:)[^@\s\"']*@", re.I)


def redact_uri(uri: object) -> object:
    """A URI (or any text, such as a broker's error about one) without its passwords."""
    if not isinstance(uri, str):
        return uri
    return _URI_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", uri)


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's stored form (rabbit_password_hashing_sha256): base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def password_matches(password: str, stored_hash: str, algorithm: str = HASHING_ALGORITHM) -> bool:
    """Whether `stored_hash` (as the management API shows it) is `password`'s."""
    if algorithm != HASHING_ALGORITHM or not stored_hash:
        return False
    try:
        raw = base64.b64decode(stored_hash)
    except ValueError:
        return False
    return password_hash(password, raw[:4]) == stored_hash


# -- the definitions document --------------------------------------------------------------

def definitions(lay: Layout, passwords: Mapping[str, str]) -> dict:
    """RabbitMQ definitions (management API / `load_definitions` at boot) of the layout.
    Users carry password hashes, never passwords; shovel URIs carry what `lay` carries
    (redact it first unless the document goes to a secret store)."""
    missing = [u.name for u in lay.users if not passwords.get(u.name)]
    if missing:
        raise LayoutError(f"缺少消息队列用户的密码：{'、'.join(missing)}",
                          f"no password for broker users {missing}")
    return {
        "vhosts": [{"name": v} for v in lay.vhosts],
        "users": [{"name": u.name, "password_hash": password_hash(passwords[u.name]),
                   "hashing_algorithm": HASHING_ALGORITHM, "tags": ",".join(u.tags)}
                  for u in lay.users],
        "permissions": [{"user": p.user, "vhost": p.vhost, "configure": p.configure,
                         "write": p.write, "read": p.read} for p in lay.permissions],
        "topic_permissions": [{"user": t.user, "vhost": t.vhost, "exchange": t.exchange,
                               "write": t.write, "read": t.read} for t in lay.topic_permissions],
        "exchanges": [{"name": e.name, "vhost": e.vhost, "type": e.type, "durable": e.durable,
                       "auto_delete": False, "internal": False, "arguments": {}}
                      for e in lay.exchanges],
        "queues": [{"name": q.name, "vhost": q.vhost, "durable": q.durable, "auto_delete": False,
                    "arguments": dict(q.arguments)} for q in lay.queues],
        "bindings": [{"source": b.exchange, "vhost": b.vhost, "destination": b.queue,
                      "destination_type": "queue", "routing_key": b.routing_key, "arguments": {}}
                     for b in lay.bindings],
        "policies": [{"vhost": p.vhost, "name": p.name, **p.body} for p in lay.policies],
        "parameters": [{"vhost": s.vhost, "component": "shovel", "name": s.name,
                        "value": dict(s.value)} for s in lay.shovels],
    }
