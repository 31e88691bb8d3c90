"""The notify service's part of `cqo demo` (issue 11: "`make demo` ends with the notices
each party received, counted per channel").

The demo starts a local SMTP server (cqo.demo_channels.SmtpSink, its own process) that
writes every mail it receives into the demo's folder, and a local SMS gateway that keeps
every SMS it receives; notify sends to both. The offices' contacts are created over
notify's HTTP API before the round; at the end the demo waits until notify has nothing
pending and counts its delivery log (GET /deliveries, as the city officer) per party and
channel, cross-checked with what the two servers received.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from shared.contracts import county_name
from cqo.demo_channels import SmsGateway, SmtpSink, free_port

if TYPE_CHECKING:  # the steps are the demo's; the import would be circular at run time
    from cqo.demo import Api, Demo

MAIL_DIR, SMS_FILE = "mail", "sms.jsonl"
SENDER = "noreply@scjg.cangzhou.example.cn"
SETTLE_S = 30.0
STABLE_S = 1.0        # no new delivery for this long, nothing pending: notify has settled
# the events the round causes that tell someone: all of them must have reached notify
EXPECTED_EVENTS = frozenset({"register.campaign.opened", "register.filing.decided", "filing.returned",
                             "register.filing.late", "talent.draw.invited", "talent.draw.published"})
CITY_OFFICE = {"level": "city", "name": "沧州市市场监督管理局质量发展科", "person": "刘科长",
               "email": "zhiliang@scjg.cangzhou.example.cn", "phone": "13900139001"}
COUNTY_OFFICES = {
    "130921": {"person": "张科长", "email": "cangxian@scjg.cangzhou.example.cn", "phone": "13900139021"},
    "130922": {"person": "王科长", "email": "qingxian@scjg.cangzhou.example.cn", "phone": "13900139022"},
}
CHANNELS = (("inbox", "站内信"), ("email", "邮件"), ("sms", "短信"))
COUNTED = (("sent", "已发送"), ("skipped", "跳过"), ("failed", "失败"))


@dataclass
class PartyRow:
    party: str              # enterprise | county | city | expert
    name: str
    county: str | None = None
    recipients: int = 0
    notices: int = 0
    counts: dict = field(default_factory=lambda: {c: dict.fromkeys(("sent", "skipped", "failed"), 0)
                                                  for c, _ in CHANNELS})


class DemoChannels:
    """The SMTP server and the SMS gateway notify sends to during the demo."""

    def __init__(self, workdir: Path):
        self.mail_dir, self.sms_file = workdir / MAIL_DIR, workdir / SMS_FILE
        self.smtp = SmtpSink(free_port(), self.mail_dir, cwd=workdir)
        self.sms = SmsGateway(record=self.sms_file)

    def start(self) -> "DemoChannels":
        self.smtp.start()
        self.sms.start()
        return self

    def stop(self) -> None:
        self.smtp.stop()
        self.sms.stop()

    def notify_env(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp.port), "SMTP_FROM": SENDER,
                "SMS_GATEWAY_URL": self.sms.url, "SMS_APP_KEY": "cqo-demo",
                # the demo runs at any hour: no SMS may wait for the morning
                "SMS_QUIET_HOURS": "off",
                # the round takes seconds: look for due deliveries often, retry soon
                "DELIVERY_INTERVAL_S": "0.3", "RETRY_BASE_S": "0.5", "RETRY_MAX_S": "2"}


class NotifySteps:
    def __init__(self, demo: "Demo", base_url: str, channels: DemoChannels):
        from cqo.demo import Api

        self.demo, self.channels = demo, channels
        self.city = Api(base_url, demo.token("city_officer"), "市局通知服务")
        self.offices: dict[int, tuple[str, str | None]] = {}  # contact id -> (level, county)

    def contacts(self, counties) -> None:
        """The offices' contacts, as the city officer enters them (POST /contacts)."""
        shown = []
        for county in counties:
            body = {"level": "county", "county": county, "name": f"{county_name(county)}市场监督管理局",
                    **COUNTY_OFFICES[county]}
            got = self.city.call("POST", "/contacts", json=body).json()
            self.offices[got["id"]] = ("county", county)
            shown.append(f"{got['name']}（{got['email_masked']}，{got['phone_masked']}）")
        got = self.city.call("POST", "/contacts", json=CITY_OFFICE).json()
        self.offices[got["id"]] = ("city", None)
        shown.append(f"{got['name']}（{got['email_masked']}，{got['phone_masked']}）")
        self.demo.say("  市局在通知服务登记各级市场监管部门的通知联系人（POST /contacts）：\n      "
                      + escape("；".join(shown)))

    def _log(self) -> list[dict]:
        items, page = [], 1
        while True:
            body = self.city.call("GET", "/deliveries", params={"page": page, "page_size": 500}).json()
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    def settle(self) -> list[dict]:
        """The delivery log once notify has settled: every expected event heard, nothing
        pending or sending, and no new delivery for STABLE_S."""
        from cqo.demo import DemoError

        begin = time.monotonic()
        deadline = begin + SETTLE_S
        last, since = -1, time.monotonic()
        with self.demo.console.status("等待通知服务投递完毕…") as status:
            while True:
                items = self._log()
                busy = sum(i["status"] in ("pending", "sending") for i in items)
                missing = EXPECTED_EVENTS - {i["event_type"] for i in items}
                if len(items) != last or busy or missing:
                    last, since = len(items), time.monotonic()
                elif time.monotonic() - since >= STABLE_S:
                    self.demo.say(f"  [green]✓[/] 通知服务已投递完毕：{len(items)} 条投递记录，无待发送"
                                  f"（用时 {time.monotonic() - begin:.1f} 秒）")
                    return items
                if time.monotonic() > deadline:
                    raise DemoError(f"{SETTLE_S:.0f} 秒内通知服务仍未投递完毕（{busy} 条待发送，"
                                    f"未收到的事件：{'、'.join(sorted(missing)) or '无'}）：请检查日志 "
                                    f"{self.demo.workdir}/notify.log")
                status.update(f"等待通知服务投递完毕：已记录 {len(items)} 条投递，待发送 {busy} 条")
                time.sleep(0.3)

    def _party(self, item: dict) -> tuple[str, str | None]:
        kind, _, ident = item["recipient"].partition(":")
        if kind == "office":
            return self.offices.get(int(ident), ("county", item["county"]))
        return kind, None

    def rows(self, items: list[dict], counties) -> list[PartyRow]:
        rows = {("enterprise", None): PartyRow("enterprise", "企业"),
                **{("county", c): PartyRow("county", f"县局·{county_name(c)}", c) for c in counties},
                ("city", None): PartyRow("city", "市局"),
                ("expert", None): PartyRow("expert", "专家")}
        recipients, notices = defaultdict(set), defaultdict(set)
        for item in items:
            key = self._party(item)
            row = rows.setdefault(key, PartyRow(key[0], key[0], key[1]))
            recipients[key].add(item["recipient"])
            notices[key].add(item["notice_id"])
            counts = row.counts[item["channel"]]
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        for key, row in rows.items():
            row.recipients, row.notices = len(recipients[key]), len(notices[key])
        return list(rows.values())

    def report(self, counties) -> dict:
        """Wait for notify, print the table and the cross-checks; the figures for the
        result file (`consistent`: the servers received what notify recorded sent)."""
        self.demo.step("十二、各方收到的通知：站内信、邮件、短信（数据来自通知服务的投递记录接口 GET /deliveries）")
        items = self.settle()
        rows = self.rows(items, counties)
        table = Table(title="各方收到的通知（按渠道计：已发送/跳过/失败）", title_style="bold")
        table.add_column("接收方", no_wrap=True)
        for name in ("接收方数", "通知", "站内信"):
            table.add_column(name, justify="right")
        for channel, label in CHANNELS[1:]:
            for _, what in COUNTED:
                table.add_column(f"{label}{what}", justify="right")

        def cells(counts_of) -> list[str]:
            out = [str(counts_of("inbox", "sent"))]
            for channel, _ in CHANNELS[1:]:
                out += [str(counts_of(channel, status)) for status, _ in COUNTED]
            return out

        for row in rows:
            table.add_row(row.name, str(row.recipients), str(row.notices),
                          *cells(lambda c, s, row=row: row.counts[c].get(s, 0)))
        table.add_section()
        table.add_row("[bold]合计[/]", str(sum(r.recipients for r in rows)), str(sum(r.notices for r in rows)),
                      *cells(lambda c, s: sum(r.counts[c].get(s, 0) for r in rows)))
        self.demo.console.print(table)
        self.demo.say("[dim]接收方数：收到通知的企业、县局、市局或专家的个数。通知：通知条数（一条通知经其各渠道投递）。"
                      "站内信：企业和专家在系统内收到的。跳过：没有该渠道的地址（或专家未同意被联系），按通知服务的"
                      "投递记录如实计入。失败：被拒收或多次重试仍未成功。[/]")

        totals = {c: Counter() for c, _ in CHANNELS}
        for item in items:
            totals[item["channel"]][item["status"]] += 1
        reasons = Counter(i["last_error"] or "" for i in items if i["status"] == "skipped")
        if reasons:
            self.demo.say("  [dim]跳过原因：" + escape("；".join(f"{r or '未说明'} {n} 条"
                                                         for r, n in reasons.most_common())) + "[/]")
        other = {f"{c}:{s}": n for c, counter in totals.items() for s, n in counter.items()
                 if s not in ("sent", "skipped", "failed")}
        if other:
            self.demo.say(f"  [yellow]其他状态的投递：{other}[/]")

        mails = len(self.channels.smtp.files())
        sms = len(self.channels.sms.delivered)
        self.demo.say(f"  收到的邮件保存在 [bold]{self.demo._shown(self.channels.mail_dir)}[/]"
                      f"（{mails} 封 .eml 文件，可用邮件客户端打开）\n"
                      f"  短信网关收到的短信记录在 {self.demo._shown(self.channels.sms_file)}（{sms} 条）")
        consistent = mails == totals["email"]["sent"] and sms == totals["sms"]["sent"] and not other
        if consistent:
            self.demo.say(f"[green]✓[/] 核对一致：邮件服务器收到 {mails} 封、短信网关收到 {sms} 条，"
                          "与通知服务记录的已发送件数相符")
        else:
            self.demo.say(f"[red]✗ 通知核对不一致：邮件服务器收到 {mails} 封（记录已发送 {totals['email']['sent']}），"
                          f"短信网关收到 {sms} 条（记录已发送 {totals['sms']['sent']}）[/]")
        return {"rows": [{"party": r.party, "name": r.name, "county": r.county, "recipients": r.recipients,
                          "notices": r.notices, **{c: dict(r.counts[c]) for c, _ in CHANNELS}} for r in rows],
                "totals": {c: dict(counter) for c, counter in totals.items()},
                "skipped_reasons": dict(reasons), "mail_dir": str(self.channels.mail_dir),
                "sms_file": str(self.channels.sms_file), "mails_received": mails, "sms_received": sms,
                "consistent": consistent}

