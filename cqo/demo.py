"""`cqo demo` (= `make demo`): a small annual filing round, end to end, on real processes.

What it does (docs/architecture.md, "The outside contract"):

1. checks that RabbitMQ answers (short timeout) and otherwise says, in Chinese, what to run;
2. creates a vhost of its own through the management API (falls back to the default
   vhost with a warning), deleted at the end;
3. starts the registry, the talent service, the notify service and two county filing
   services (130921 沧县, 130922 青县) as real `cqo serve` processes in a fresh folder
   (default var/demo), each with its own SQLite file, on free ports; notify e-mails a
   local SMTP server and texts a local SMS gateway the demo starts (cqo/demo_notify.py),
   and the city enters the offices' contacts over notify's API;
4. 任职培训 (art. 6, cqo/demo_talent.py): a city course with attendance entered over
   HTTP for 沧县's future CQOs, a 青县 course whose list its officer imports from CSV;
   the cast (cqo.demo.make_cast) is made first, so the trained are those who file;
5. the city opens the year's campaign; waits until both counties show it;
6. enterprises file: valid establishments, refusals at intake (bad USCC check character,
   under 3 years of quality work), one filing returned by the county and corrected,
   one enterprise filing again in another county (the city refuses it), late changes;
   one CQO files a certificate number no course issued, one a colleague's;
7. the counties pre-review and batch-submit; waits for every decision of the city;
8. the certificates verified at the city (and the two it flags); the pool filled from
   the appointment events, city experts designated, a panel drawn, verified, published
   and read without a token;
9. prints a per-county table computed from the services' APIs, cross-checked between
   the counties and the city's ledger;
10. waits until notify has delivered everything and prints the notices each party
   received per channel (its delivery log), cross-checked with the mails the SMTP
   server wrote into the folder and the SMS the gateway received;
11. stops everything (SIGTERM, then SIGKILL), also on Ctrl-C or an error.

Everything here is a client of the services' HTTP APIs: nothing reads their databases.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared import clock
from shared.auth import issue_token
from shared.contracts import county_name
from shared.messaging.broker import connect, node_uris, vhost_of, with_vhost
from shared.messaging.sites import redact_uri as redact  # the URI without its password(s)
from cqo.runner import PortInUse, probe_port
from cqo.stack import CITY_PORTS, FIRST_COUNTY_PORT, Stack, StackError
from cqo.demo_notify import DemoChannels, NotifySteps
from cqo.demo_talent import TalentSteps
from shared.validators import make_resident_id, make_uscc

COUNTIES = ("130921", "130922")          # 沧县, 青县
CITY_SERVICES = ("registry", "talent", "notify")
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DIR = Path("var/demo")
MARKER = ".cqo-demo"                     # a folder with this file may be wiped by the demo
STATE_FILE = "demo-state.json"
RESULT_FILE = "demo-result.json"
OFFSET_CANDIDATES = tuple(range(0, 1000, 100))

EXIT_OK, EXIT_FAILED, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 130


class DemoError(RuntimeError):
    """A failure with a Chinese message for the operator, and the exit code to use."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


@dataclass
class DemoOptions:
    workdir: Path = DEFAULT_DIR
    amqp_uri: str = DEFAULT_AMQP_URI
    management_url: str | None = None     # default: http://user:pass@<broker host>:15672
    port_offset: int | None = None        # None: the first free one of OFFSET_CANDIDATES
    decision_timeout: float = 60.0
    broker_timeout: float = 3.0
    year: int | None = None               # default: this year (Asia/Shanghai)
    # a running compose stack instead of processes of its own: its published ports and
    # the token secret file the services read (README "Running the stack in containers")
    compose_file: Path | None = None
    secret_file: Path = Path("secrets/auth_secret")


# -- 1. the broker ---------------------------------------------------------------------

def broker_hint(amqp_uri: str, error: str) -> str:
    if "ACCESS_REFUSED" in error or "ACCESS-REFUSED" in error.upper():
        return (f"消息服务器 RabbitMQ 拒绝了登录：{redact(amqp_uri)}（{error}）\n"
                "请检查 AMQP_URI 中的用户名、密码和虚拟主机，例如：\n"
                "    AMQP_URI=amqp://用户名:密码@127.0.0.1:5672/ make demo")
    return (
        f"无法连接消息服务器 RabbitMQ：{redact(amqp_uri)}（{error}）\n"
        "演示需要一个 RabbitMQ。请先在本机启动它：\n"
        "    rabbitmq-server -detached\n"
        "（以系统服务安装的，也可以运行 sudo systemctl start rabbitmq-server），"
        "等待几秒后再运行 make demo。\n"
        "如果 RabbitMQ 在其他地址，请设置环境变量 AMQP_URI 后再运行，例如：\n"
        "    AMQP_URI=amqp://用户名:密码@主机:5672/ make demo")


def check_broker(amqp_uri: str, timeout: float = 3.0) -> None:
    """Connect once with kombu (short timeout); DemoError with the Chinese hint if not."""
    from kombu import Connection

    try:
        with Connection(amqp_uri, connect_timeout=timeout) as conn:
            connect(conn, timeout=timeout)  # each node once
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        raise DemoError(broker_hint(amqp_uri, str(exc) or type(exc).__name__),
                        EXIT_ENVIRONMENT) from None


# -- 2. a vhost of the demo's own ------------------------------------------------------

class Vhost:
    """A fresh vhost through the management API; `uri` is what the services use.
    Without the management API: the broker URI as given, with `warning` set."""

    def __init__(self, amqp_uri: str, management_url: str | None = None):
        parts = urlsplit(node_uris(amqp_uri)[0])  # a cluster: its first node's management API
        self.user, self.password = parts.username or "guest", parts.password or "guest"
        self.given = amqp_uri
        self.management_url = management_url or (
            f"http://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{parts.hostname or '127.0.0.1'}:15672")
        self.name: str | None = None
        self.uri = amqp_uri
        self.warning: str | None = None

    def _api(self, method: str, path: str, timeout: float = 5.0, **kw) -> requests.Response:
        parts = urlsplit(self.management_url)
        base = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""),
                           parts.path.rstrip("/"), "", ""))
        resp = requests.request(method, base + "/api" + path, timeout=timeout,
                                auth=(unquote(parts.username or "") or self.user,
                                      unquote(parts.password or "") or self.password),
                                **kw)
        resp.raise_for_status()
        return resp

    def create(self) -> str:
        name = f"cqo_demo_{secrets.token_hex(4)}"
        try:
            self._api("GET", "/overview", timeout=3.0)
            self._api("PUT", f"/vhosts/{quote(name, safe='')}", json={})
            self.name = name  # from here on it exists: delete() removes it
            self._api("PUT", f"/permissions/{quote(name, safe='')}/{quote(self.user, safe='')}",
                      json={"configure": ".*", "write": ".*", "read": ".*"})
        except requests.RequestException as exc:
            self.delete()
            self.warning = (
                f"无法使用 RabbitMQ 管理接口（{redact(self.management_url)}：{type(exc).__name__}），"
                f"演示将直接使用 AMQP_URI 所指的虚拟主机“{vhost_of(self.given)}”，"
                "可能与该虚拟主机上运行的其他服务共用队列。"
                "如需隔离，请启用管理插件：rabbitmq-plugins enable rabbitmq_management，"
                "或用环境变量 RABBITMQ_MANAGEMENT_URL 指定管理接口地址")
            self.uri = self.given
            return self.uri
        self.uri = with_vhost(self.given, name)  # every node of a failover URI
        return self.uri

    def delete(self) -> bool:
        if not self.name:
            return True
        try:
            self._api("DELETE", f"/vhosts/{quote(self.name, safe='')}")
        except requests.RequestException:
            return False
        self.name = None
        return True


# -- 3. the folder and the ports -------------------------------------------------------

def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def service_processes(workdir: Path) -> list[int]:
    """Service processes started in `workdir` (Stack starts each one there), found
    through /proc so that even a demo killed before it recorded them is covered."""
    workdir = Path(workdir).resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != workdir:
                continue
        except OSError:
            continue  # gone, or another user's process
        command = _cmdline(int(entry.name))
        if "serve" in command or "cqo.demo_channels" in command:  # a service, the SMTP server
            found.append(int(entry.name))
    return sorted(found)


def _stop_leftovers(workdir: Path, say: Callable[[str], None]) -> None:
    """Service processes of an earlier demo in this folder that still run (the demo
    was killed outright): SIGTERM, then SIGKILL."""
    pids = set(service_processes(workdir))
    try:
        specs = json.loads((workdir / "stack.json").read_text(encoding="utf-8"))["specs"]
        pids.update(s["pid"] for s in specs if isinstance(s.get("pid"), int)
                    and _alive(s["pid"]) and "serve" in _cmdline(s["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not pids:
        return
    say(f"[yellow]发现上次演示遗留的服务进程 {', '.join(map(str, sorted(pids)))}，正在停止…[/]")
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 12
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _read_state(workdir: Path) -> dict:
    try:
        state = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(workdir: Path, **state) -> None:
    """The running demo's pid and vhost: the next run in this folder refuses to wipe it
    while it runs, and removes its vhost if it was killed before cleaning up."""
    (workdir / STATE_FILE).write_text(json.dumps({"pid": os.getpid(), **state}), encoding="utf-8")


def prepare_workdir(workdir: Path, say: Callable[[str], None]) -> tuple[Path, str | None]:
    """A fresh folder: an earlier demo's folder is wiped; any other non-empty folder is
    refused (the demo never deletes what it did not make). Returns the folder and the
    vhost an earlier, killed demo left behind (None if none)."""
    workdir = workdir.resolve()
    stale_vhost = None
    if workdir.exists():
        if not workdir.is_dir():
            raise DemoError(f"{workdir} 不是目录，请用 --dir 指定演示目录")
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise DemoError(f"目录 {workdir} 非空且不是演示目录，为避免误删其中的文件，"
                            "请用 --dir 指定一个空目录或新目录")
        state = _read_state(workdir)
        other = state.get("pid")
        if isinstance(other, int) and other != os.getpid() and _alive(other) \
                and "demo" in _cmdline(other):
            raise DemoError(f"另一个演示（进程 {other}）正在使用目录 {workdir}，"
                            "请等它结束，或用 --dir 指定其他目录")
        stale_vhost = state.get("vhost") if isinstance(state.get("vhost"), str) else None
        _stop_leftovers(workdir, say)
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("cqo demo folder: `cqo demo` wipes it on its next run\n",
                                  encoding="utf-8")
    write_state(workdir)
    return workdir, stale_vhost


def demo_ports(offset: int, counties=COUNTIES) -> list[int]:
    return [CITY_PORTS[name] + offset for name in CITY_SERVICES] + [
        FIRST_COUNTY_PORT + i + offset for i in range(len(counties))]


def _ports_free(ports: list[int]) -> bool:
    for port in ports:
        try:
            probe_port(f"127.0.0.1:{port}")
        except PortInUse:
            return False
    return True


def choose_port_offset(preferred: int | None, counties=COUNTIES) -> int:
    if preferred is not None:
        busy = [p for p in demo_ports(preferred, counties) if not _ports_free([p])]
        if busy:
            raise DemoError(f"端口 {', '.join(map(str, busy))} 已被占用（端口偏移 {preferred}），"
                            "请换一个 --port-offset，或不指定以自动选择", EXIT_ENVIRONMENT)
        return preferred
    for offset in OFFSET_CANDIDATES:
        if _ports_free(demo_ports(offset, counties)):
            return offset
    raise DemoError("找不到空闲端口：8001、8002、8003、8011 起的端口（及其加 100、200…900 的端口）都已被占用，"
                    "请用 --port-offset 指定", EXIT_ENVIRONMENT)


# -- HTTP ------------------------------------------------------------------------------

class Api:
    """One service seen by one user (a bearer token)."""

    def __init__(self, base_url: str, token: str, label: str):
        self.base, self.label = base_url.rstrip("/") + "/api/v1", label
        self.session = requests.Session()
        self.session.trust_env = False  # 127.0.0.1 never through a proxy
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, *, expect=(200, 201), **kw) -> requests.Response:
        try:
            resp = self.session.request(method, self.base + path, timeout=15, **kw)
        except requests.RequestException as exc:
            raise DemoError(f"{self.label}无法访问（{method} {path}）：{exc}") from None
        if expect and resp.status_code not in expect:
            raise DemoError(f"{self.label}返回了意外的结果（{method} {path} → HTTP {resp.status_code}）："
                            f"{problem_text(resp)}")
        return resp

    def total(self, path: str, **params) -> int:
        return self.call("GET", path, params=params).json()["total"]


def problem_text(resp: requests.Response) -> str:
    """The Chinese message of a problem+json answer, as a clerk would read it."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    detail = body.get("detail") or body.get("title") or ""
    errors = body.get("errors") or {}
    if errors and (not detail or detail.startswith("请检查以下字段")):
        return "；".join(f"{LABELS.get(k, k)}：{'、'.join(v)}" for k, v in errors.items())
    return detail


LABELS = {"enterprise.uscc": "统一社会信用代码", "cqo.years_quality_work": "质量管理工作年限",
          "cqo.id_number": "证件号码", "enterprise.county": "所在县（市、区）"}


# -- the scenario's data -------------------------------------------------------------------

@dataclass
class Person:
    name: str
    id_number: str
    education: str = "bachelor"
    title: str = "intermediate"
    years: float = 8
    certificate: str | None = None
    position: str = "副总经理"
    phone: str | None = None
    email: str | None = None


@dataclass
class Company:
    name: str
    uscc: str
    county: str
    category: str = "industrial_above_scale"


SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ("建国", "秀英", "志强", "晓燕", "海涛", "丽娜", "明辉", "淑芬", "振华", "桂兰",
         "国栋", "慧敏", "俊杰", "红梅", "永刚", "丽华", "文斌", "凤英", "建军", "雪梅")

COMPANIES = {
    "130921": [("华鑫管道装备", "industrial_above_scale"), ("宏达五金制品", "industrial_above_scale"),
               ("金狮机械制造", "industrial_above_scale"), ("瑞丰纺织", "industrial_above_scale"),
               ("博远物流", "service_above_scale"), ("顺通汽车配件", "industrial_above_scale"),
               ("恒泰钢结构", "industrial_above_scale"),
               ("鼎盛化工", "industrial_above_scale"), ("永兴铸造", "industrial_above_scale")],
    "130922": [("正元电子", "industrial_above_scale"), ("海德机箱制造", "industrial_above_scale"),
               ("利民食品", "industrial_above_scale"), ("鑫源包装", "industrial_above_scale"),
               ("通达仓储服务", "service_above_scale"), ("华瑞家具", "industrial_above_scale"),
               ("金鼎电气", "industrial_above_scale"),
               ("明珠塑料制品", "industrial_above_scale"), ("润德机械", "industrial_above_scale")],
}
# per county, by index in COMPANIES: 0-5 valid establishments (3: 大专 without a title and
# 4: no training certificate give warnings); 6 is returned by the county, corrected and
# resubmitted; 7 has a wrong USCC check character and 8 a CQO with 2 years of experience
# (both refused at intake)
WARN_EDUCATION, WARN_TRAINING = 3, 4
RETURNED = 6
BAD_USCC, TOO_JUNIOR = 7, 8
LATE_CHANGES = (0, 1)   # enterprises that then report a change of CQO late ...
ON_TIME_CHANGE = 2      # ... and one on time
CROSS_COUNTY = ("130921", 5, "130922")  # a 沧县 enterprise, once filed, files again in 青县
# art. 6 at the city: everyone with a certificate number attends a course (沧县's people a
# city course entered over HTTP, 青县's a county course imported from CSV) except these
UNISSUED_CERTIFICATE = ("130922", 1)     # files a number no course issued
BORROWED_CERTIFICATE = (("130921", 2), ("130921", 1))  # files a colleague's number


class People:
    def __init__(self):
        self.n = 0

    def next(self, county: str, **kw) -> Person:
        self.n += 1
        i = self.n
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)]
        birth = date(1968, 3, 1) + timedelta(days=397 * i)
        kw.setdefault("certificate", f"CZCQO-PX-{i:04d}")
        kw.setdefault("phone", f"1380317{i:04d}")
        kw.setdefault("email", f"cqo{i:03d}@qiye.cangzhou.example.cn")
        return Person(name, make_resident_id(county, birth, 100 + i), **kw)


@dataclass
class Cast:
    """Everyone who files as a CQO in the round, made before the round: the training
    courses enrol the same persons (names, ID numbers, enterprises) whose certificates
    the city then verifies."""

    firms: dict[str, list[Company]]
    first: dict[str, list[Person]]           # round one, by county, by COMPANIES index
    changes: dict[str, dict[int, Person]]    # round two: each changing enterprise's new CQO
    cross: Person                            # the duplicate establishment in the other county


def make_cast() -> Cast:
    people = People()
    firms: dict[str, list[Company]] = {}
    first: dict[str, list[Person]] = {}
    seq = 0
    for county in COUNTIES:
        firms[county] = []
        for index in range(len(COMPANIES[county])):
            seq += 1
            firms[county].append(company(county, index, seq))
        first[county] = []
        for index in range(len(COMPANIES[county])):
            kw = {}
            if index == WARN_EDUCATION:  # warning: 县局确认; a small firm without e-mail
                kw = {"education": "junior_college", "title": "none", "email": None}
            if index == WARN_TRAINING:
                kw = {"certificate": None}                             # warning: training
            if index == TOO_JUNIOR:
                kw = {"years": 2}
            first[county].append(people.next(county, **kw))
    changes = {county: {index: people.next(county) for index in (*LATE_CHANGES, ON_TIME_CHANGE)}
               for county in COUNTIES}
    cross = people.next(CROSS_COUNTY[2])
    # filed with a colleague's certificate number: the city finds it is another person's
    borrower, lender = BORROWED_CERTIFICATE
    first[borrower[0]][borrower[1]].certificate = first[lender[0]][lender[1]].certificate
    return Cast(firms, first, changes, cross)


def company(county: str, index: int, seq: int) -> Company:
    short, category = COMPANIES[county][index]
    uscc = make_uscc("9", "1", county, "MA" + f"{seq:05d}" + "X")
    return Company(f"{county_name(county)}{short}有限公司", uscc, county, category)


def bad_check_char(uscc: str) -> str:
    """The same code with a wrong last (check) character."""
    last = uscc[-1]
    return uscc[:-1] + ("1" if last != "1" else "2")


def filing_body(kind: str, firm: Company, person: Person, *, appointed_on: date,
                county: str | None = None, effective_on: date | None = None,
                letter: str = "", top_manager: bool = True, appointed_by: str = "法定代表人") -> dict:
    body = {
        "kind": kind,
        "enterprise": {"uscc": firm.uscc, "name": firm.name, "county": county or firm.county,
                       "category": firm.category},
        "cqo": {"name": person.name, "id_type": "resident_id", "id_number": person.id_number,
                "phone": person.phone, "email": person.email, "position": person.position,
                "is_decision_level": True, "education_level": person.education,
                "title_level": person.title, "years_quality_work": person.years,
                "training_certificate": person.certificate, "attests_law_knowledge": True,
                "attests_organisational_ability": True},
        "appointment": {"appointed_by": appointed_by, "appointed_by_top_manager": top_manager,
                        "appointed_on": appointed_on.isoformat(),
                        "letter_number": letter or f"{firm.name[:2]}质任〔{appointed_on.year}〕1号",
                        "letter_date": appointed_on.isoformat()},
    }
    if effective_on is not None:
        body["effective_on"] = effective_on.isoformat()
    return body


# -- results -------------------------------------------------------------------------------

@dataclass
class CountyRow:
    county: str
    name: str
    submitted: int = 0          # filings the county holds + refusals at intake
    refused_at_intake: int = 0  # 4xx at POST /filings: nothing was stored
    returned: int = 0           # filings returned at least once by the county officer
    accepted: int = 0
    rejected: int = 0
    late: int = 0
    pending: int = 0
    city_accepted: int = 0
    city_rejected: int = 0
    city_late: int = 0

    @property
    def consistent(self) -> bool:
        return (self.accepted, self.rejected, self.late) == (
            self.city_accepted, self.city_rejected, self.city_late)


@dataclass
class DemoResult:
    year: int
    vhost: str | None
    port_offset: int
    rows: list[CountyRow] = field(default_factory=list)
    city_totals: dict = field(default_factory=dict)
    consistent: bool = False
    elapsed_s: float = 0.0
    training: dict = field(default_factory=dict)       # the courses and the CSV import
    certificates: dict = field(default_factory=dict)   # verified at the city, and flagged
    pool_members: int = 0
    draw: dict = field(default_factory=dict)           # the panel, its verification, public view
    notices: dict = field(default_factory=dict)        # per party and channel, from notify's log

    def to_json(self) -> str:
        data = asdict(self)
        for row, out in zip(self.rows, data["rows"]):
            out["consistent"] = row.consistent
        return json.dumps(data, ensure_ascii=False, indent=2)


# -- the run ---------------------------------------------------------------------------

class RunningStack:
    """A stack someone else runs (compose): its services' URLs, nothing to stop."""

    def __init__(self, urls: dict[str, str]):
        self.urls = urls
        self.specs: list = []

    def spec(self, name: str):
        if name not in self.urls:
            raise DemoError(f"compose 文件中没有服务 {name}", EXIT_ENVIRONMENT)
        return type("Running", (), {"name": name, "base_url": self.urls[name], "pid": None})()


class Demo:
    def __init__(self, options: DemoOptions, console: Console):
        self.o, self.console = options, console
        self.secret = secrets.token_urlsafe(32)  # this run's token secret, given to the services
        self.stack: Stack | None = None
        self.channels: DemoChannels | None = None   # the SMTP server and SMS gateway notify uses
        self.notify: NotifySteps | None = None
        self.vhost: Vhost | None = None
        self.workdir: Path | None = None
        self.refused: dict[str, int] = {c: 0 for c in COUNTIES}
        self.cast = make_cast()
        self.cross_filing: dict | None = None  # the duplicate establishment in the other county
        self.today = clock.today()
        self.started = time.monotonic()

    def say(self, text: str = "") -> None:
        self.console.print(text, highlight=False)

    def step(self, title: str) -> None:
        self.say(f"\n[bold cyan]{title}[/]  [dim]（{time.monotonic() - self.started:4.1f} 秒）[/]")

    # tokens
    def token(self, role: str, **claims) -> str:
        return issue_token(self.secret, role, ttl=timedelta(hours=1), **claims)

    def run(self) -> int:
        """The whole demo; always stops what it started."""
        try:
            result = self._run()
        except KeyboardInterrupt:
            self.say("\n[yellow]已中断，正在停止所有服务…[/]")
            return EXIT_INTERRUPTED
        except DemoError as exc:
            self.say(f"\n[red]演示失败：{escape(exc.message)}[/]")
            self._log_hint()
            return exc.exit_code
        except Exception as exc:  # noqa: BLE001 - an unexpected error still cleans up
            self.console.print_exception(max_frames=8)
            self.say(f"[red]演示失败：意外错误 {type(exc).__name__}：{escape(str(exc))}[/]")
            self._log_hint()
            return EXIT_FAILED
        finally:
            self._cleanup()
        return EXIT_OK if result.consistent else EXIT_FAILED

    def _log_hint(self) -> None:
        if self.workdir is not None and self.stack is not None:
            self.say(f"各服务日志：{self.workdir}/*.log")

    def _cleanup(self) -> None:
        # a second Ctrl-C (or SIGTERM) must not leave processes behind half-way through stopping
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.stack is not None and not isinstance(self.stack, RunningStack):
                with self.console.status("正在停止服务…"):
                    killed = self.stack.stop()
                for name in killed:
                    self.say(f"[yellow]{name} 未在时限内退出，已强制终止（SIGKILL）[/]")
                self.say("[green]✓[/] 所有服务已停止")
            if self.channels is not None:
                self.channels.stop()
            if self.vhost is not None and self.vhost.name:
                name = self.vhost.name
                if self.vhost.delete():
                    self.say(f"[green]✓[/] 已删除演示虚拟主机 {name}")
                else:
                    self.say(f"[yellow]未能删除虚拟主机 {name}，可在 RabbitMQ 管理界面手工删除[/]")
            if self.workdir is not None:
                (self.workdir / STATE_FILE).unlink(missing_ok=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- the steps -------------------------------------------------------------------------
    def _run(self) -> DemoResult:
        o = self.o
        year = o.year or self.today.year
        self.say("[bold]沧州市企业首席质量官（CQO）备案管理系统 · 任职培训、年度集中备案与专家抽取演示[/]")

        if o.compose_file:
            city, officers, offset = self._attach_compose()
        else:
            city, officers, offset = self._start_own()

        if self.channels is not None:
            self.notify = NotifySteps(self, self.stack.spec("notify").base_url, self.channels)
            self.notify.contacts(COUNTIES)
        talent = TalentSteps(self, self.stack.spec("talent").base_url)
        training = talent.training()
        self._open_campaign(city, officers, year)
        firms, people = self._round_one(officers)
        self._round_two(officers, firms, people)
        certificates = talent.certificates(city, expected_unverified=1)  # UNISSUED_CERTIFICATE
        members = talent.pool(accepted=city.total("/filings", outcome="accepted", page_size=1),
                              changes=city.total("/filings", kind="change", outcome="accepted",
                                                 page_size=1))
        draw = talent.draw(talent.experts(members))

        self.step("汇总：按县区统计（数据来自各县备案服务与市局备案台账接口）")
        result = DemoResult(year=year, vhost=self.vhost.name if self.vhost else None,
                            port_offset=offset, training=training, certificates=certificates,
                            pool_members=len(members), draw=draw)
        result.rows = [self._county_row(officers[c], city, c) for c in COUNTIES]
        result.city_totals = {"accepted": city.total("/filings", outcome="accepted", page_size=1),
                              "rejected": city.total("/filings", outcome="rejected", page_size=1),
                              "late": city.total("/filings", late="true", page_size=1),
                              "ledger": city.total("/filings", page_size=1)}
        self._print_table(result)
        result.consistent = self._print_checks(result)
        if self.notify is not None:
            result.notices = self.notify.report(COUNTIES)
            result.consistent = result.consistent and result.notices["consistent"]
        else:  # compose: its notify sends to the stack's own servers, which the demo cannot read
            self.say("[dim]compose 服务栈的通知由其自身配置的邮件服务器和短信网关发送，演示不统计[/]")
        result.elapsed_s = round(time.monotonic() - self.started, 1)
        (self.workdir / RESULT_FILE).write_text(result.to_json(), encoding="utf-8")
        self.say(f"\n演示用时 {result.elapsed_s:.1f} 秒；数据库与日志保留在 {self._shown(self.workdir)}"
                 "（下次运行演示时清空）" if not o.compose_file else
                 f"\n演示用时 {result.elapsed_s:.1f} 秒；数据保留在 compose 服务栈的数据卷中")
        return result

    def _officers(self) -> tuple[Api, dict[str, Api]]:
        city = Api(self.stack.spec("registry").base_url, self.token("city_officer"), "市局备案登记服务")
        officers = {c: Api(self.stack.spec(f"filing_{c}").base_url,
                           self.token("county_officer", county=c), f"{county_name(c)}备案服务")
                    for c in COUNTIES}
        return city, officers

    def _attach_compose(self) -> tuple[Api, dict[str, Api], int]:
        """The round through a running compose stack's published ports, with the token
        secret its services read; it must be healthy (`cqo stack health`)."""
        from cqo.compose_health import endpoints, probe

        o = self.o
        self.step(f"准备：连接 compose 服务栈（{o.compose_file}）")
        try:
            self.secret = o.secret_file.read_text(encoding="utf-8").strip()
            found = endpoints(o.compose_file)
        except (OSError, ValueError) as exc:
            raise DemoError(f"无法读取 compose 服务栈的配置：{exc}", EXIT_ENVIRONMENT) from None
        for endpoint in found:
            if not probe(endpoint):
                raise DemoError(f"服务 {endpoint.name} 未就绪（{endpoint.last}）：请先运行 "
                                "podman-compose up -d 与 cqo stack health", EXIT_ENVIRONMENT)
            self.say(f"  [green]✓[/] {endpoint.name} 已就绪 {endpoint.shown}")
        self.stack = RunningStack({e.name: e.url.removesuffix("/api/v1/health")
                                   for e in found if e.kind == "http"})
        self.workdir = Path(o.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        return (*self._officers(), 0)

    def _start_own(self) -> tuple[Api, dict[str, Api], int]:
        o = self.o
        self.step("准备：检查消息服务器")
        check_broker(o.amqp_uri, o.broker_timeout)
        self.say(f"[green]✓[/] RabbitMQ 可以连接：{redact(o.amqp_uri)}")
        self.workdir, stale_vhost = prepare_workdir(Path(o.workdir), self.say)
        self.vhost = Vhost(o.amqp_uri, o.management_url)
        uri = self.vhost.create()
        if self.vhost.warning:
            self.say(f"[yellow]注意：{escape(self.vhost.warning)}[/]")
        else:
            write_state(self.workdir, vhost=self.vhost.name)
            self.say(f"[green]✓[/] 本次演示使用独立的虚拟主机 [bold]{self.vhost.name}[/]（结束时删除）")
            if stale_vhost and stale_vhost.startswith("cqo_demo_"):
                old = Vhost(o.amqp_uri, o.management_url)
                old.name = stale_vhost
                if old.delete():
                    self.say(f"  已删除上次中断的演示遗留的虚拟主机 {stale_vhost}")
        offset = choose_port_offset(o.port_offset)
        self.step(f"启动服务（目录 {self._shown(self.workdir)}，端口偏移 {offset}）")
        self.stack = Stack(self.workdir, amqp_uri=uri, counties=COUNTIES, services=CITY_SERVICES,
                           port_offset=offset,
                           extra_env={"CQO_AUTH_SECRET": self.secret, "LOG_LEVEL": "INFO"})
        try:
            self.channels = DemoChannels(self.workdir).start()
        except RuntimeError as exc:
            raise DemoError(f"演示用邮件服务器无法启动：{exc}", EXIT_ENVIRONMENT) from None
        self.stack.spec("notify").env.update(self.channels.notify_env())
        self.say(f"  [green]✓[/] 演示用邮件服务器（SMTP 127.0.0.1:{self.channels.smtp.port}，收到的邮件写入 "
                 f"{self._shown(self.channels.mail_dir)}）与短信网关（{self.channels.sms.url}）已启动")
        labels = {"registry": "市局备案登记服务（registry）", "talent": "市局人才服务（talent：培训、人才库、专家抽取）",
                  "notify": "市局通知服务（notify：站内信、邮件、短信）",
                  **{f"filing_{c}": f"{county_name(c)}备案服务（filing_{c}）" for c in COUNTIES}}
        try:
            with self.console.status(f"正在启动 {len(self.stack.specs)} 个服务进程（首次启动会建库）…"):
                self.stack.start(wait=60, on_ready=lambda s: self.say(
                    f"  [green]✓[/] {labels[s.name]} 已就绪 {s.base_url}  [dim]进程 {s.pid}[/]"))
        except (StackError, PortInUse) as exc:
            raise DemoError(f"服务启动失败：{exc}{self._log_tail()}") from None
        return (*self._officers(), offset)

    @staticmethod
    def _shown(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def _log_tail(self, lines: int = 12) -> str:
        out = []
        for spec in self.stack.specs if self.stack else []:
            log = self.workdir / f"{spec.name}.log"
            if log.exists():
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                out.append(f"\n--- {log} 的最后 {len(tail)} 行 ---\n" + "\n".join(tail))
        return "".join(out)

    # 4. the campaign
    def _open_campaign(self, city: Api, officers: dict[str, Api], year: int) -> None:
        self.step(f"二、市局发布 {year} 年度首席质量官集中备案通告（第十三条）")
        closes = max(date(year, 12, 31), self.today + timedelta(days=30))
        body = {"year": year, "notice_number": f"沧市监质〔{year}〕1号",
                "title": f"关于开展{year}年度企业首席质量官岗位设立和变更备案工作的通告",
                "notice_text": "各县（市、区）市场监督管理局、各有关企业：请规模以上工业企业和规模以上服务业企业"
                               "通过所在县（市、区）市场监管部门集中申报首席质量官岗位设立和变更备案。",
                "opens_on": self.today.isoformat(), "closes_on": closes.isoformat()}
        campaign = city.call("POST", "/campaigns", json=body).json()
        self.say(f"  市局发布《{escape(campaign['title'])}》（{campaign['notice_number']}），"
                 f"申报期 {campaign['opens_on']} 至 {campaign['closes_on']}")
        deadline = time.monotonic() + 30
        seen: set[str] = set()
        with self.console.status("等待各县收到通告…"):
            while len(seen) < len(officers):
                for county, api in officers.items():
                    if county in seen:
                        continue
                    resp = api.call("GET", "/campaign", expect=(200, 404))
                    if resp.status_code == 200 and resp.json()["year"] == year:
                        seen.add(county)
                        self.say(f"  [green]✓[/] {county_name(county)}已收到通告（经消息服务器 cqo.notices）")
                if len(seen) < len(officers):
                    if time.monotonic() > deadline:
                        missing = "、".join(county_name(c) for c in officers if c not in seen)
                        raise DemoError(f"30 秒内{missing}未收到市局的集中备案通告：请检查消息服务器"
                                        f"和日志 {self.workdir}/registry.log")
                    time.sleep(0.2)

    # 5-6. establishments, review, batch, decisions
    def _file(self, county: str, api_base: str, firm: Company, body: dict, *,
              method: str = "POST", path: str = "/filings", note: str = "") -> dict | None:
        api = Api(api_base, self.token("enterprise", uscc=firm.uscc), f"{county_name(county)}备案服务")
        resp = api.call(method, path, json=body, expect=(200, 201, 409, 422))
        if resp.status_code in (200, 201):
            return resp.json()
        self.refused[county] += 1
        self.say(f"  [red]✗ 受理失败[/] {firm.name}{note}\n"
                 f"      企业经办人看到的提示：[italic]{escape(problem_text(resp))}[/]")
        return None

    def _base(self, county: str) -> str:
        return self.stack.spec(f"filing_{county}").base_url

    def _round_one(self, officers: dict[str, Api]):
        self.step("三、企业向所在县（市、区）提交岗位设立备案（第十三条）")
        firms, people = self.cast.firms, self.cast.first
        filed: dict[str, list[dict]] = {}
        appointed = self.today - timedelta(days=400)
        for county in COUNTIES:
            filed[county] = []
            for index, firm in enumerate(firms[county]):
                person = people[county][index]
                body_firm = firm
                note = ""
                if index == BAD_USCC:
                    body_firm = Company(firm.name, bad_check_char(firm.uscc), county, firm.category)
                    note = f"（统一社会信用代码 {body_firm.uscc} 的校验位填错）"
                if index == TOO_JUNIOR:
                    note = f"（拟任首席质量官{person.name}从事质量管理工作仅 2 年）"
                options = {}
                if index == RETURNED:  # appointed by a deputy: art. 5 warning; the county returns it
                    options = {"top_manager": False, "appointed_by": "分管副总经理"}
                body = filing_body("establishment", body_firm, person, appointed_on=appointed, **options)
                got = self._file(county, self._base(county), body_firm, body, note=note)
                if got is not None:
                    filed[county].append(got)
            ok = len(filed[county])
            self.say(f"  {county_name(county)}：{len(firms[county])} 家企业提交，受理 {ok} 件，"
                     f"受理失败 {self.refused[county]} 件")
            warned = [f for f in filed[county] if f["findings"]]
            for f in warned[:2]:
                self.say(f"    [yellow]提示项[/] {f['enterprise_name']}："
                         + escape("；".join(x["message"] for x in f["findings"])))

        self.step("四、县局预审（第十二条）：通过或退回")
        for county, api in officers.items():
            firm = firms[county][RETURNED]
            for f in filed[county]:
                if f["uscc"] == firm.uscc:
                    comment = "任命书应由企业最高管理者（法定代表人）签发（第五条），请重新签发任命书后修改重报"
                    api.call("POST", f"/filings/{f['id']}/review",
                             json={"decision": "return", "comment": comment})
                    self.say(f"  {county_name(county)}退回 {f['enterprise_name']}：{escape(comment)}")
                    body = filing_body("establishment", firm, people[county][RETURNED],
                                       appointed_on=appointed,
                                       letter=f"{firm.name[:2]}质任〔{appointed.year}〕2号")
                    again = self._file(county, self._base(county), firm, body, method="PUT",
                                       path=f"/filings/{f['id']}")
                    if again is None:
                        raise DemoError(f"{firm.name} 改正后重报未被受理")
                    self.say(f"  {firm.name} 改正后重新提交（第 {again['version']} 版）")
            pending = api.call("GET", "/filings", params={"status": "submitted", "page_size": 200}).json()
            for f in pending["items"]:
                api.call("POST", f"/filings/{f['id']}/review", json={"decision": "approve"})
            self.say(f"  {county_name(county)}预审通过 {pending['total']} 件")

        self._batch_and_wait(officers, "五、县局集中报送，市局审核备案（经消息服务器异步往返）")
        return firms, people

    def _round_two(self, officers: dict[str, Api], firms, people) -> None:
        self.step("六、变更备案（第十四条：变更后一个月内向县局报告）与跨县重复备案")
        for county in COUNTIES:
            for index, days in [(i, 45 + 30 * n) for n, i in enumerate(LATE_CHANGES)] + [(ON_TIME_CHANGE, 10)]:
                firm = firms[county][index]
                effective = self.today - timedelta(days=days)
                person = self.cast.changes[county][index]
                body = filing_body("change", firm, person, appointed_on=effective,
                                   effective_on=effective,
                                   letter=f"{firm.name[:2]}质任〔{effective.year}〕9号")
                got = self._file(county, self._base(county), firm, body)
                if got is not None:
                    self.say(f"  {firm.name}：首席质量官变更为{person.name}，"
                             f"变更生效日 {effective.isoformat()}（{days} 天前）")
        origin, index, other = CROSS_COUNTY
        firm = firms[origin][index]
        person = self.cast.cross
        body = filing_body("establishment", firm, person, appointed_on=self.today - timedelta(days=20),
                           county=other)
        got = self._file(other, self._base(other), firm, body)
        if got is not None:
            self.say(f"  {firm.name}（已在{county_name(origin)}备案）在{county_name(other)}设厂后，"
                     f"又向{county_name(other)}提交岗位设立备案；{county_name(other)}没有其备案记录，予以受理")
            self.cross_filing = got
        for county, api in officers.items():
            pending = api.call("GET", "/filings", params={"status": "submitted", "page_size": 200}).json()
            for f in pending["items"]:
                api.call("POST", f"/filings/{f['id']}/review", json={"decision": "approve"})
            self.say(f"  {county_name(county)}预审通过 {pending['total']} 件")
        self._batch_and_wait(officers, "七、县局再次集中报送，等待市局决定")
        self._show_decisions(officers)

    def _batch_and_wait(self, officers: dict[str, Api], title: str) -> None:
        self.step(title)
        for county, api in officers.items():
            batch = api.call("POST", "/batches", json={}).json()
            self.say(f"  {county_name(county)}集中报送 {batch['count']} 件"
                     f"（批次 {batch['batch_id'][:8]}，{batch['chunks']} 条消息）")
        begin = time.monotonic()
        deadline = begin + self.o.decision_timeout
        with self.console.status("等待市局决定…") as status:
            while True:
                left = {c: api.total("/filings", status="forwarded,waiting", page_size=1)
                        for c, api in officers.items()}
                if not any(left.values()):
                    break
                if time.monotonic() > deadline:
                    missing = "，".join(f"{county_name(c)} {n} 件" for c, n in left.items() if n)
                    raise DemoError(
                        f"等待市局决定超时（{self.o.decision_timeout:.0f} 秒）：仍未收到决定的备案：{missing}。"
                        f"请检查消息服务器是否正常，以及日志 {self.workdir}/registry.log、"
                        f"{self.workdir}/filing_*.log；可用 --timeout 延长等待")
                status.update("等待市局决定：" + "，".join(
                    f"{county_name(c)}剩余 {n} 件" for c, n in left.items()))
                time.sleep(0.25)
        self.say(f"  [green]✓[/] 各县已收到全部市局决定（用时 {time.monotonic() - begin:.1f} 秒）")

    def _show_decisions(self, officers: dict[str, Api]) -> None:
        """A few decisions as the county sees them: the city's reasons in its words."""
        if self.cross_filing is not None:
            county = self.cross_filing["county"]
            detail = officers[county].call("GET", f"/filings/{self.cross_filing['id']}").json()
            decision = detail.get("decision") or {}
            reasons = "；".join(r["message"] for r in decision.get("reasons", []))
            self.say(f"  市局对{detail['enterprise_name']}在{county_name(county)}的岗位设立备案："
                     f"[red]{decision.get('outcome_name', detail['status_name'])}[/]\n"
                     f"      市局理由：{escape(reasons)}")
        for county, api in officers.items():
            late = api.call("GET", "/filings", params={"late": "true", "page_size": 1}).json()["items"]
            if late:
                detail = api.call("GET", f"/filings/{late[0]['id']}").json()
                reasons = "；".join(r["message"] for r in (detail.get("decision") or {}).get("reasons", [])
                                   if r.get("code") == "LATE_CHANGE")
                self.say(f"  {detail['enterprise_name']}的变更备案：[yellow]{detail['status_name']}，"
                         f"逾期 {detail['days_late']} 天[/]\n      市局理由：{escape(reasons)}")

    # 7. the table
    def _county_row(self, api: Api, city: Api, county: str) -> CountyRow:
        row = CountyRow(county, county_name(county))
        items, page = [], 1
        while True:
            body = api.call("GET", "/filings", params={"page": page, "page_size": 200}).json()
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                break
            page += 1
        row.refused_at_intake = self.refused[county]
        row.submitted = len(items) + row.refused_at_intake
        row.accepted = api.total("/filings", status="accepted", page_size=1)
        row.rejected = api.total("/filings", status="rejected", page_size=1)
        row.late = api.total("/filings", late="true", status="accepted", page_size=1)
        row.pending = len(items) - row.accepted - row.rejected
        for f in items:
            detail = api.call("GET", f"/filings/{f['id']}").json()
            if any(r["decision"] == "return" for r in detail["reviews"]):
                row.returned += 1
        row.city_accepted = city.total("/filings", county=county, outcome="accepted", page_size=1)
        row.city_rejected = city.total("/filings", county=county, outcome="rejected", page_size=1)
        row.city_late = city.total("/filings", county=county, late="true", page_size=1)
        return row

    def _print_table(self, result: DemoResult) -> None:
        table = Table(title=f"{result.year} 年度首席质量官备案情况（按县区）", title_style="bold",
                      show_lines=False)
        columns = ("县区", "提交", "受理失败", "县局退回", "市局通过", "不予备案", "逾期变更")
        for i, name in enumerate(columns):
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
        keys = ("submitted", "refused_at_intake", "returned", "accepted", "rejected", "late")
        for row in result.rows:
            table.add_row(f"{row.name}（{row.county}）", *(str(getattr(row, k)) for k in keys))
        table.add_section()
        table.add_row("[bold]全市合计[/]", *(f"[bold]{sum(getattr(r, k) for r in result.rows)}[/]"
                                           for k in keys))
        self.console.print(table)
        self.say("[dim]提交：企业提交的备案件数（含受理失败；改正重报不重复计）。受理失败：县局受理时因校验或任职条件"
                 "不符被拒绝、未保存的件数。县局退回：预审时被退回过的件数。市局通过、不予备案、逾期变更：市局决定"
                 "（逾期变更为予以备案但标记逾期的变更）。[/]")

    def _print_checks(self, result: DemoResult) -> bool:
        ok = True
        for row in result.rows:
            if row.pending:
                ok = False
                self.say(f"[red]✗ {row.name}仍有 {row.pending} 件备案未办结[/]")
            if not row.consistent:
                ok = False
                self.say(f"[red]✗ {row.name}与市局台账不一致：县局 通过/不予/逾期 = "
                         f"{row.accepted}/{row.rejected}/{row.late}，市局台账 = "
                         f"{row.city_accepted}/{row.city_rejected}/{row.city_late}[/]")
        sums = {k: sum(getattr(r, k) for r in result.rows) for k in ("accepted", "rejected", "late")}
        city = result.city_totals
        if sums != {k: city[k] for k in sums} or city["ledger"] != sums["accepted"] + sums["rejected"]:
            ok = False
            self.say(f"[red]✗ 全市合计与市局台账不一致：各县合计 {sums}，市局台账 {city}[/]")
        if ok:
            self.say(f"[green]✓[/] 核对一致：各县的市局通过、不予备案、逾期变更件数与市局备案台账逐县相符"
                     f"（市局台账共 {city['ledger']} 条决定）")
        return ok


def run(options: DemoOptions, console: Console | None = None) -> int:
    return Demo(options, console or Console()).run()
