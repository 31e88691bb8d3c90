"""`cqo topology plan|apply|export|status|rotate-password|teardown`: the multi-site broker
layout (docs/multisite.md), a vhost and a broker user per site, joined by shovels.

What to declare is shared/messaging/sites.py (data); applying it is
shared/messaging/management.py (the management HTTP API). This module reads the
options and the secrets file and prints, in Chinese. No password is ever printed:
plan and export redact the shovels' URIs (export --include-secrets is for a secret
store, written to a 0600 file).

Secrets (`--secrets`): a JSON file `{"<user>": "<password>", ...}`, or a directory
of key files (as `cqo keys init` makes) holding `broker_password.<user>`. Missing
passwords are generated (secrets.token_urlsafe) and written back, owner-only.
"""
from __future__ import annotations

import json
import os
import secrets as random_secrets
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

topology_app = typer.Typer(help="多站点消息队列拓扑：每个县区和市级各一个虚拟主机与用户，由 Shovel 连接。",
                           no_args_is_help=True)
console = Console()
notices = Console(stderr=True)  # what export says besides the document it prints

SECRET_FILE_PREFIX = "broker_password."
MANAGEMENT_ENV = "RABBITMQ_MANAGEMENT_URL"
JURISDICTION_ENV = "JURISDICTION_CSV"  # another jurisdiction's divisions, as the services take it
DEFAULT_MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"

COUNTIES = typer.Option(None, "--county",
                        help=f"县级区划代码，可重复；默认为辖区内全部县区（辖区取环境变量 {JURISDICTION_ENV}，否则为沧州）")
PREFIX = typer.Option("cqo", "--prefix", help="命名前缀：虚拟主机 <前缀>-<站点>，用户 <前缀>_<站点>")
CITY = typer.Option("city", "--city", help="市级站点名")
AMQP_ADDRESS = typer.Option("127.0.0.1:5672", "--amqp-address",
                            help="Shovel 连接各站点消息队列的地址（主机:端口）")
SECRETS = typer.Option(..., "--secrets", help="密码文件（JSON）或密钥目录（broker_password.<用户>）")
MANAGEMENT = typer.Option(None, "--management-url",
                          help=f"消息队列管理接口（默认取环境变量 {MANAGEMENT_ENV}，否则 {DEFAULT_MANAGEMENT_URL}）")

ACTIONS = {"created": "新建", "updated": "更新", "unchanged": "无变化", "deleted": "删除", "absent": "不存在"}
KINDS = {"vhost": "虚拟主机", "user": "用户", "permission": "权限", "topic_permission": "主题权限",
         "exchange": "交换机", "queue": "队列", "binding": "绑定", "policy": "策略", "shovel": "Shovel"}
ROLES = {"county": "县区", "city": "市级", "shovel": "Shovel"}


@topology_app.callback()
def _topology() -> None:
    """多站点消息队列拓扑：每个县区和市级各一个虚拟主机与用户，由 Shovel 连接。"""


def _fail(code: str, message: str, exit_code: int = 2) -> None:
    typer.echo(f"[{code}] {message}", err=True)
    raise typer.Exit(exit_code)


# -- secrets ------------------------------------------------------------------------------------

class BrokerSecrets:
    """The broker users' passwords, in a JSON file or a key directory."""

    def __init__(self, path: Path):
        self.path = path
        self.is_dir = path.is_dir() or (not path.exists() and path.suffix != ".json")

    def load(self) -> dict[str, str]:
        if self.is_dir:
            if not self.path.exists():
                return {}
            return {p.name[len(SECRET_FILE_PREFIX):]: p.read_text(encoding="utf-8").strip()
                    for p in self.path.iterdir() if p.name.startswith(SECRET_FILE_PREFIX)}
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except ValueError:
            _fail("SECRETS_INVALID", f"密码文件 {self.path} 不是有效的 JSON")
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in data.items()):
            _fail("SECRETS_INVALID", f"密码文件 {self.path} 应为“用户名: 密码”的 JSON 对象")
        return data

    def save(self, passwords: dict[str, str], changed: list[str]) -> None:
        from shared.keys import write_private

        if self.is_dir:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            for user in changed:
                write_private(self.path / f"{SECRET_FILE_PREFIX}{user}", passwords[user])
        else:
            write_private(self.path, json.dumps(passwords, ensure_ascii=False, indent=2, sort_keys=True))

    def ensure(self, users: list[str]) -> dict[str, str]:
        """Every user's password; the missing ones generated and saved."""
        passwords = self.load()
        missing = [u for u in users if not passwords.get(u)]
        for user in missing:
            passwords[user] = random_secrets.token_urlsafe(32)
        if missing:
            self.save(passwords, missing)
            notices.print(f"已为 {len(missing)} 个消息队列用户生成密码，保存在 {self.path}")
        return passwords

    def rotate(self, user: str) -> dict[str, str]:
        passwords = self.load()
        passwords[user] = random_secrets.token_urlsafe(32)
        self.save(passwords, [user])
        return passwords


# -- building ------------------------------------------------------------------------------------

def _known_counties() -> list[str]:
    """The jurisdiction's filing counties: JURISDICTION_CSV's, as the services read it
    (their config.yaml), or Cangzhou's. Read here, not set process-wide."""
    from shared.contracts import jurisdiction
    from shared.validators.divisions import Jurisdiction

    path = os.environ.get(JURISDICTION_ENV)
    if not path:
        return jurisdiction().filing_counties()
    try:
        return Jurisdiction.from_csv(path).filing_counties()
    except (OSError, ValueError) as exc:
        _fail("JURISDICTION_INVALID", f"无法读取 {JURISDICTION_ENV} 指定的区划文件 {path}："
                                      f"{type(exc).__name__}（应为 UTF-8 CSV，列 code,name,kind）")


def _layout(counties, prefix, city, amqp_address, passwords=None):
    from shared.messaging import sites

    known = _known_counties()
    try:
        return sites.layout(counties or known, passwords, names=sites.Names(prefix, city),
                            amqp_address=amqp_address, known_counties=known)
    except sites.LayoutError as exc:
        _fail(exc.code, exc.message)


def _management(url: Optional[str]):
    from shared.messaging.management import Management

    return Management(url or os.environ.get(MANAGEMENT_ENV) or DEFAULT_MANAGEMENT_URL)


def _print_report(report, title: str) -> None:
    console.print(title)
    table = Table()
    actions = [a for a in ACTIONS if report.count(a)]
    table.add_column("类别")
    for action in actions:
        table.add_column(ACTIONS[action], justify="right")
    for kind, label in KINDS.items():
        if report.count(kind=kind):
            table.add_row(label, *(str(report.count(a, kind)) for a in actions))
    console.print(table)


def _run(action):
    """Runs `action()`, turning the broker's refusals into a Chinese error."""
    from shared.messaging.management import ManagementError

    try:
        return action()
    except ManagementError as exc:
        _fail(exc.code, exc.message, 1)


# -- commands ------------------------------------------------------------------------------------

@topology_app.command("plan")
def plan(county: Optional[List[str]] = COUNTIES, prefix: str = PREFIX, city: str = CITY,
         amqp_address: str = AMQP_ADDRESS) -> None:
    """列出将要创建的站点、用户、权限和 Shovel（不连接消息队列，不显示密码）。"""
    lay = _layout(county, prefix, city, amqp_address).redacted()
    sites_table = Table(title=f"站点（{len(lay.vhosts)} 个虚拟主机）")
    for column in ("虚拟主机", "站点", "交换机", "队列", "绑定", "策略"):
        sites_table.add_column(column)
    for vhost in lay.vhosts:
        site = next(u for u in lay.users if u.role != "shovel" and lay.names.vhost(u.site) == vhost)
        sites_table.add_row(vhost, f"{ROLES[site.role]} {site.site}",
                            *(str(sum(1 for x in items if x.vhost == vhost))
                              for items in (lay.exchanges, lay.queues, lay.bindings, lay.policies)))
    console.print(sites_table)

    users = Table(title="消息队列用户与权限（configure / write / read）")
    for column in ("用户", "角色", "标签", "虚拟主机", "configure", "write", "read"):
        users.add_column(column, overflow="fold")
    for p in lay.permissions:
        user = lay.user(p.user)
        users.add_row(p.user, ROLES[user.role], ",".join(user.tags), p.vhost, p.configure, p.write, p.read)
    console.print(users)

    topics = Table(title="主题权限（路由键）")
    for column in ("用户", "虚拟主机", "交换机", "可发布", "可绑定"):
        topics.add_column(column, overflow="fold")
    for t in lay.topic_permissions:
        topics.add_row(t.user, t.vhost, t.exchange, t.write, t.read)
    console.print(topics)

    shovels = Table(title="Shovel（ack-mode on-confirm，带转发头）")
    for column in ("名称", "方向", "所在虚拟主机", "源队列", "目的交换机", "目的地址"):
        shovels.add_column(column, overflow="fold")
    for s in lay.shovels:
        shovels.add_row(s.name, "县区→市级" if s.direction == "up" else "市级→县区", s.vhost,
                        s.value["src-queue"], s.value["dest-exchange"], s.value["dest-uri"])
    console.print(shovels)
    console.print("市级登记服务的配置（BROKER_TRUST=per-county）：")
    console.print(f"COUNTY_BROKER_USERS='{json.dumps(lay.county_broker_users())}'", markup=False)


@topology_app.command("apply")
def apply_command(secrets: Path = SECRETS, management_url: Optional[str] = MANAGEMENT,
                  county: Optional[List[str]] = COUNTIES, prefix: str = PREFIX, city: str = CITY,
                  amqp_address: str = AMQP_ADDRESS) -> None:
    """创建或修正拓扑（幂等：再次执行不作改动）。"""
    from shared.messaging import management

    lay = _layout(county, prefix, city, amqp_address)
    passwords = BrokerSecrets(secrets).ensure([u.name for u in lay.users])
    lay = _layout(county, prefix, city, amqp_address, passwords)
    api = _management(management_url)
    try:
        report = _run(lambda: management.apply(api, lay, passwords))
    finally:
        api.close()
    _print_report(report, f"拓扑已应用：{len(lay.counties)} 个县区与市级站点")
    console.print("有改动" if report.changed else "与现有拓扑一致，未作改动")


@topology_app.command("export")
def export(secrets: Path = SECRETS, county: Optional[List[str]] = COUNTIES, prefix: str = PREFIX,
           city: str = CITY, amqp_address: str = AMQP_ADDRESS,
           include_secrets: bool = typer.Option(
               False, "--include-secrets", help="Shovel 地址中保留密码（仅与 --out 一起使用，写入仅属主可读的文件）"),
           out: Optional[Path] = typer.Option(None, "--out", help="写入文件而不是输出到屏幕")) -> None:
    """输出 RabbitMQ definitions JSON（用户只含密码哈希；Shovel 地址中的密码默认隐去）。"""
    from shared.messaging import sites

    if include_secrets and out is None:
        _fail("SECRETS_ON_SCREEN", "--include-secrets 只能与 --out 一起使用，密码不输出到屏幕")
    lay = _layout(county, prefix, city, amqp_address)
    passwords = BrokerSecrets(secrets).ensure([u.name for u in lay.users])
    lay = _layout(county, prefix, city, amqp_address, passwords)
    text = json.dumps(sites.definitions(lay if include_secrets else lay.redacted(), passwords),
                      ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
        return
    from shared.keys import write_private

    write_private(out, text + "\n")
    console.print(f"已写入 {out}" + ("（含 Shovel 密码，仅属主可读）" if include_secrets else ""))


@topology_app.command("status")
def status(management_url: Optional[str] = MANAGEMENT, county: Optional[List[str]] = COUNTIES,
           prefix: str = PREFIX, city: str = CITY, amqp_address: str = AMQP_ADDRESS) -> None:
    """各 Shovel 的运行状态。"""
    from shared.messaging import management

    lay = _layout(county, prefix, city, amqp_address)
    api = _management(management_url)
    try:
        states = _run(lambda: management.shovel_states(api, lay))
    finally:
        api.close()
    table = Table(title="Shovel 状态")
    for column in ("名称", "所在虚拟主机", "状态"):
        table.add_column(column)
    for s in lay.shovels:
        table.add_row(s.name, s.vhost, states[s.name])
    console.print(table)
    if any(state != "running" for state in states.values()):
        raise typer.Exit(1)


@topology_app.command("rotate-password")
def rotate_password(user: str = typer.Argument(..., help="消息队列用户名"),
                    secrets: Path = SECRETS, management_url: Optional[str] = MANAGEMENT,
                    county: Optional[List[str]] = COUNTIES, prefix: str = PREFIX, city: str = CITY,
                    amqp_address: str = AMQP_ADDRESS,
                    close_connections: bool = typer.Option(
                        False, "--close-connections", help="同时断开该用户现有的连接（服务须已换用新密码）")) -> None:
    """为一个消息队列用户换新密码（写回密码文件；Shovel 用户的新密码同时写入各 Shovel）。"""
    from shared.messaging import management, sites

    lay = _layout(county, prefix, city, amqp_address)
    try:
        lay.user(user)
    except sites.LayoutError as exc:
        _fail(exc.code, exc.message)
    store = BrokerSecrets(secrets)
    passwords = store.ensure([u.name for u in lay.users])
    previous = passwords[user]
    passwords = store.rotate(user)
    lay = _layout(county, prefix, city, amqp_address, passwords)
    api = _management(management_url)
    try:
        try:
            report = management.rotate_password(api, lay, user, passwords[user])
        except management.ManagementError as exc:
            store.save({**passwords, user: previous}, [user])  # the broker still has the old one
            _fail(exc.code, exc.message, 1)
        closed = _run(lambda: management.close_connections(api, user)) if close_connections else 0
    finally:
        api.close()
    console.print(f"已为用户 {user} 更换密码，新密码保存在 {secrets}"
                  + (f"；更新了 {report.count(kind='shovel') - report.count('unchanged', 'shovel')} 个 Shovel"
                     if lay.user(user).role == "shovel" else "")
                  + (f"；断开了 {closed} 个连接" if close_connections else ""))


@topology_app.command("teardown")
def teardown(management_url: Optional[str] = MANAGEMENT, county: Optional[List[str]] = COUNTIES,
             prefix: str = PREFIX, city: str = CITY, amqp_address: str = AMQP_ADDRESS,
             yes: bool = typer.Option(False, "--yes", help="不再确认")) -> None:
    """删除拓扑：Shovel、虚拟主机（连同其中的消息）和用户。用于测试与基准。"""
    from shared.messaging import management

    lay = _layout(county, prefix, city, amqp_address)
    if not yes and not typer.confirm(f"删除 {len(lay.vhosts)} 个虚拟主机（含其中全部消息）和 "
                                     f"{len(lay.users)} 个用户？"):
        raise typer.Exit(1)
    api = _management(management_url)
    try:
        report = _run(lambda: management.teardown(api, lay))
    finally:
        api.close()
    _print_report(report, "拓扑已删除")
