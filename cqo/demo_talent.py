"""The talent service's part of `cqo demo` (issue 10, "Must show"): the art. 6 任职培训
before the round, the certificates the city verified after it, and the pool, the
city-level experts and a panel draw with its verification after that.

Everything is a client of the services' HTTP APIs, like the rest of the demo; the
persons trained are the demo's cast (cqo.demo.make_cast), the very CQOs who file.
"""
from __future__ import annotations

import csv
import io
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

import requests
from rich.markup import escape
from rich.table import Table

from shared.contracts import county_name
from shared.validators import make_resident_id

if TYPE_CHECKING:  # the steps are the demo's; the import would be circular at run time
    from cqo.demo import Api, Company, Demo, Person

CERTIFICATE_PREFIX = "TRAINING_CERTIFICATE_"
VERIFIED, UNVERIFIED = "TRAINING_CERTIFICATE_VERIFIED", "TRAINING_CERTIFICATE_UNVERIFIED"
WAIT_S = 30.0
# an expert's field (GB/T 4754-2017 division) by the enterprise's short name: the draw
# asks for 制造业 (C), so the two service enterprises' experts are not eligible
FIELDS = {"华鑫管道装备": "33", "宏达五金制品": "33", "金狮机械制造": "34", "瑞丰纺织": "17",
          "博远物流": "54", "顺通汽车配件": "36", "恒泰钢结构": "33", "鼎盛化工": "26",
          "永兴铸造": "33", "正元电子": "39", "海德机箱制造": "33", "利民食品": "14",
          "鑫源包装": "22", "通达仓储服务": "59", "华瑞家具": "21", "金鼎电气": "38",
          "明珠塑料制品": "29", "润德机械": "35"}
EXPERT_FIRMS = (3, 4, 5, 6)   # enterprises whose CQO does not change in the round
INVOLVED = ("130921", 5)      # the enterprise the panel is drawn for: its CQO must stand aside
NO_CONSENT = ("130922", 6)    # one expert has not agreed to be contacted
CSV_HEADER = ("姓名", "证件号码", "统一社会信用代码", "企业名称", "考核结果", "证书编号", "发证日期")


class TalentSteps:
    """The demo's talent steps; `demo` gives the output, the tokens and the cast."""

    def __init__(self, demo: "Demo", base_url: str):
        from cqo.demo import Api

        self.demo, self.base = demo, base_url
        self.city = Api(base_url, demo.token("city_officer"), "市局人才服务")
        self.county_api = lambda county: Api(base_url, demo.token("county_officer", county=county),
                                             f"{county_name(county)}（人才服务）")
        self.today: date = demo.today
        self.issued: set[str] = set()   # certificate numbers the courses issued

    def say(self, text: str = "") -> None:
        self.demo.say(text)

    # -- training (art. 6, art. 15 教育培训) ---------------------------------------------------
    def trainees(self, county: str) -> list[tuple["Person", "Company"]]:
        """The county's cast with a certificate number of their own: the round's first
        CQOs, the new CQOs of the changes and (青县) the duplicate establishment's."""
        from cqo.demo import BORROWED_CERTIFICATE, CROSS_COUNTY, UNISSUED_CERTIFICATE

        cast, skip = self.demo.cast, {UNISSUED_CERTIFICATE, BORROWED_CERTIFICATE[0]}
        out = [(p, cast.firms[county][i]) for i, p in enumerate(cast.first[county])
               if p.certificate and (county, i) not in skip]
        out += [(p, cast.firms[county][i]) for i, p in cast.changes[county].items()]
        origin, index, other = CROSS_COUNTY
        if county == other:
            out.append((cast.cross, cast.firms[origin][index]))
        return out

    def training(self) -> dict:
        from cqo.demo import COUNTIES

        self.demo.step("一、首席质量官任职培训（第六条、第十五条）：市级培训逐人登记，县级培训导入名单")
        starts = self.today - timedelta(days=90)
        ends, issued_on = starts + timedelta(days=1), (starts + timedelta(days=1)).isoformat()
        city_county, county = COUNTIES
        course = {"kind": "appointment", "starts_on": starts.isoformat(), "ends_on": ends.isoformat(),
                  "hours": 16}
        city_course = self.city.call("POST", "/courses", json={
            **course, "title": f"{starts.year}年度沧州市企业首席质量官任职培训班（第一期）",
            "level": "city", "county": None, "capacity": 60}).json()
        entered = self.trainees(city_county)
        for person, firm in entered:
            self.city.call("POST", f"/courses/{city_course['id']}/attendance", json={
                "person_name": person.name, "id_type": "resident_id", "id_number": person.id_number,
                "uscc": firm.uscc, "enterprise_name": firm.name, "passed": True,
                "certificate_no": person.certificate, "issued_on": issued_on})
            self.issued.add(person.certificate)
        self.say(f"  市局举办《{escape(city_course['title'])}》，逐人登记{county_name(city_county)}"
                 f" {len(entered)} 名学员的考核结果和证书编号（POST /courses/{{id}}/attendance）")

        officer = self.county_api(county)
        county_course = officer.call("POST", "/courses", json={
            **course, "title": f"{starts.year}年度{county_name(county)}企业首席质量官任职培训班",
            "level": "county", "county": county, "capacity": 40}).json()
        imported = self.trainees(county)
        report = officer.call(
            "POST", f"/courses/{county_course['id']}/attendance/import",
            params={"filename": f"{county_name(county)}任职培训学员名单.csv"},
            data=self._csv(imported, issued_on), headers={"Content-Type": "text/csv"}).json()
        self.issued.update(p.certificate for p, _ in imported)
        self.say(f"  {county_name(county)}市场监管局举办《{escape(county_course['title'])}》，"
                 f"县局经办人导入学员名单 CSV（列：{'、'.join(CSV_HEADER)}）：\n"
                 f"      {escape(report['summary'])}；发布证书事件 {report['certificates_announced']} 个")
        for row in report["rejected_rows"]:
            self.say(f"      [red]第 {row['line']} 行[/] {escape(row['person_name'])}"
                     f"（{row['id_masked']}）：{escape('；'.join(row['reasons']))}")

        table = Table(title="任职培训课程", title_style="bold")
        for name, right in (("课程", False), ("组织", False), ("学时", True), ("学员", True),
                            ("合格", True), ("录入方式", False)):
            table.add_column(name, justify="right" if right else "left")
        courses = []
        for got, how in ((city_course, "市局逐人登记"), (county_course, "县局导入 CSV")):
            c = self.city.call("GET", f"/courses/{got['id']}").json()
            organiser = c["level_name"] + (f"·{c['county_name']}" if c.get("county_name") else "")
            table.add_row(escape(c["title"]), organiser, f"{c['hours']:g}", str(c["attendees"]),
                          str(c["passed"]), how)
            courses.append({"id": c["id"], "title": c["title"], "level": c["level"],
                            "county": c["county"], "attendees": c["attendees"], "passed": c["passed"],
                            "entered": "http" if got is city_course else "csv"})
        self.demo.console.print(table)
        self.say("  [dim]证书事件 talent.certificate.issued 经消息服务器 cqo.events 送达市局备案登记服务，"
                 "市局据此核验企业申报的证书编号（市局决定时不调用人才服务）[/]")
        return {"courses": courses, "import": {k: report[k] for k in (
            "total_rows", "accepted", "inserted", "rejected", "certificates_announced")}}

    def _csv(self, rows: list, issued_on: str) -> bytes:
        """The county's attendance list as a clerk exports it from Excel (UTF-8 with BOM),
        with one attendee who failed and one row with a mistyped ID number."""
        county = rows[0][1].county if rows else "130922"
        firm = self.demo.cast.firms[county][0]
        failed = make_resident_id(county, date(1983, 6, 14), 901)
        mistyped = make_resident_id(county, date(1979, 2, 3), 902)
        mistyped = mistyped[:-1] + ("1" if mistyped[-1] != "1" else "2")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        for person, enterprise in rows:
            writer.writerow((person.name, person.id_number, enterprise.uscc, enterprise.name,
                             "合格", person.certificate, issued_on))
        writer.writerow(("孙立新", failed, firm.uscc, firm.name, "不合格", "", ""))
        writer.writerow(("周海波", mistyped, firm.uscc, firm.name, "合格", "CZCQO-PX-QX-0099", issued_on))
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    # -- the certificates the city verified --------------------------------------------------
    def certificates(self, registry: "Api", expected_unverified: int) -> dict:
        """The city's ledger once every issued certificate has reached its filing's record
        (a filing decided before its certificate's event has it added afterwards)."""
        from cqo.demo import DemoError

        self.demo.step("八、市局核验任职培训证书（第六条）：依据人才服务的证书事件，核对证书编号、持证人和考核结果")
        deadline = time.monotonic() + WAIT_S
        with self.demo.console.status("等待市局核验培训证书…"):
            while True:
                rows = self._ledger(registry)
                waiting = [r for r in rows if r["certificate"] == UNVERIFIED]
                if len(waiting) <= expected_unverified:
                    break
                if time.monotonic() > deadline:
                    raise DemoError(f"{WAIT_S:.0f} 秒内仍有 {len(waiting)} 件备案的培训证书未核验：请检查"
                                    f"日志 {self.demo.workdir}/talent.log、registry.log")
                time.sleep(0.3)
        checked = [r for r in rows if r["certificate"]]
        flagged = [r for r in checked if r["certificate"] != VERIFIED]

        table = Table(title="市局核验任职培训证书（按县区）", title_style="bold")
        for i, name in enumerate(("县区", "申报证书编号", "核验通过", "标记问题")):
            table.add_column(name, justify="left" if i == 0 else "right")
        counties = sorted({r["county"] for r in checked})
        for county in counties:
            mine = [r for r in checked if r["county"] == county]
            table.add_row(f"{county_name(county)}（{county}）", str(len(mine)),
                          str(sum(r["certificate"] == VERIFIED for r in mine)),
                          str(sum(r["certificate"] != VERIFIED for r in mine)))
        table.add_section()
        table.add_row("[bold]全市合计[/]", f"[bold]{len(checked)}[/]",
                      f"[bold]{len(checked) - len(flagged)}[/]", f"[bold]{len(flagged)}[/]")
        self.demo.console.print(table)
        for r in flagged:
            self.say(f"  [yellow]市局标记[/] {escape(r['name'])}的{r['kind_name']}备案（证书编号 {r['certificate_no']}）："
                     f"{r['certificate']}\n      {escape(r['message'])}")
        self.say("  [dim]申报证书编号：市局予以备案的任命中填写了任职培训证书编号的件数（未填写的另有“未填写证书”提示）。"
                 "核验通过：证书存在、持证人即申报人、任职培训考核合格。暂未核验的证书编号在收到证书事件后自动补记"
                 "结果，决定后 14 日仍不存在的补记 TRAINING_CERTIFICATE_UNKNOWN。证书提示项不影响备案决定。[/]")
        return {"checked": len(checked), "verified": len(checked) - len(flagged),
                "flagged": [{k: r[k] for k in ("county", "uscc", "kind", "certificate_no", "certificate", "message")}
                            for r in flagged]}

    def _ledger(self, registry: "Api") -> list[dict]:
        """Each filing the city decided, from the enterprises' records at the registry:
        the certificate number its appointment carries and its last certificate finding.
        A certificate in order at the decision adds no finding; one that arrives after
        the decision adds TRAINING_CERTIFICATE_VERIFIED (or what is wrong with it)."""
        out = []
        for firms in self.demo.cast.firms.values():
            for firm in firms:
                resp = registry.call("GET", f"/enterprises/{firm.uscc}", expect=(200, 404))
                if resp.status_code == 404:
                    continue  # refused at intake: the city never saw it
                doc = resp.json()
                numbers = {a["filing_id"]: a["training_certificate"] for a in doc["history"]}
                for item in doc["filings"]:
                    found = [f for f in item.get("findings") or []
                             if f["code"].startswith(CERTIFICATE_PREFIX)]
                    number = numbers.get(item["filing_id"])
                    state = found[-1]["code"] if found else (VERIFIED if number else None)
                    out.append({"county": item["county"], "uscc": item["uscc"], "name": firm.name,
                                "kind": item["kind"], "kind_name": item["kind_name"],
                                "certificate_no": number, "certificate": state,
                                "message": found[-1]["message"] if found else ""})
        return out

    # -- the pool, the experts and a draw (art. 15 人才建设, DESIGN.md section 5) ---------------
    def pool(self, accepted: int, changes: int) -> list[dict]:
        """Wait until the register's appointment events have filled the pool: one member
        per accepted filing, the CQOs replaced by a change ended."""
        from cqo.demo import DemoError

        self.demo.step("九、质量人才库（第十五条）：由市局备案登记的任命事件自动入库")
        deadline = time.monotonic() + WAIT_S
        with self.demo.console.status("等待任命事件进入人才库…"):
            while True:
                members = self.city.call("GET", "/pool", params={"page_size": 200}).json()["items"]
                ended = sum(m["status"] == "ended" for m in members)
                if len(members) >= accepted and ended >= changes:
                    break
                if time.monotonic() > deadline:
                    raise DemoError(f"{WAIT_S:.0f} 秒内人才库只收到 {len(members)} 名成员（应为 {accepted} 名，"
                                    f"其中离任 {changes} 名）：请检查日志 {self.demo.workdir}/talent.log")
                time.sleep(0.3)
        table = Table(title="质量人才库成员（按县区）", title_style="bold")
        for i, name in enumerate(("县区", "成员", "在任", "已离任")):
            table.add_column(name, justify="left" if i == 0 else "right")
        for county in sorted({m["county"] for m in members}):
            mine = [m for m in members if m["county"] == county]
            table.add_row(f"{county_name(county)}（{county}）", str(len(mine)),
                          str(sum(m["status"] == "active" for m in mine)),
                          str(sum(m["status"] == "ended" for m in mine)))
        self.demo.console.print(table)
        self.say("  [dim]来源：register.appointment.accepted / ended 事件（备案通过即入库，变更后原首席质量官离任）[/]")
        return members

    def experts(self, members: list[dict]) -> list[dict]:
        from cqo.demo import COUNTIES

        self.demo.step("十、市局聘任市级质量专家（第十五条）：专业领域按 GB/T 4754 国民经济行业分类")
        active = {m["uscc"]: m for m in members if m["status"] == "active"}
        designated = []
        for county in COUNTIES:
            for index in EXPERT_FIRMS:
                firm = self.demo.cast.firms[county][index]
                member = active.get(firm.uscc)
                if member is None:
                    continue
                n = len(designated) + 1
                designated.append(self.city.call("POST", "/experts", json={
                    "member_id": member["id"], "expertise": [FIELDS[_short(firm)]],
                    "term_start": self.today.isoformat(),
                    "term_end": (self.today + timedelta(days=3 * 365)).isoformat(),
                    "phone": f"1393170{n:04d}", "email": f"cqo.expert{n}@example.com",
                    "consent_to_contact": (county, index) != NO_CONSENT}).json())
        table = Table(title="市级质量专家", title_style="bold")
        for name in ("姓名", "县区", "所在企业", "专业领域", "电话（遮蔽）", "同意联系"):
            table.add_column(name)
        for e in designated:
            table.add_row(e["name"], e["county_name"], escape(e["employer_name"] or e["employer_uscc"]),
                          "、".join(f"{x['code']} {x['name']}" for x in e["expertise"]),
                          e["phone_masked"] or "", "是" if e["consent_to_contact"] else "否")
        self.demo.console.print(table)
        return designated

    def draw(self, experts: list[dict]) -> dict:
        from cqo.demo import DemoError

        self.demo.step("十一、随机抽取专家组（第十条回避）：抽取、核验、公布")
        county, index = INVOLVED
        firm = self.demo.cast.firms[county][index]
        body = {"purpose": f"{firm.name}质量管理诊断专家组", "size": 3, "alternates": 1,
                "expertise": ["C"], "enterprises": [firm.uscc], "counties": [county]}
        drawn = self.city.call("POST", "/draws", json=body).json()
        run = drawn["draws"][0]
        standing_aside = [e["name"] for e in experts if e["employer_uscc"] == firm.uscc]
        self.say(f"  事由：{escape(drawn['purpose'])}；需要专业领域 C 制造业，专家 {body['size']} 名、"
                 f"备选 {body['alternates']} 名\n"
                 f"  回避：涉及企业{escape(firm.name)}的员工"
                 f"（{'、'.join(standing_aside) or '无'}）；专业不符的专家不入选\n"
                 f"  候选专家 {run['eligible_count']} 名，快照散列 {run['snapshot_hash'][:16]}…，"
                 f"随机种子 {run['seed'][:16]}…（secrets 生成），审计链第 {run['chain_seq']} 条")
        table = Table(title="抽取结果（公布前仅市级监管人员可见）", title_style="bold")
        for name in ("顺序", "姓名", "县区", "专业领域", "身份"):
            table.add_column(name, justify="right" if name == "顺序" else "left")
        for m in drawn["members"]:
            table.add_row(str(m["position"]), m["name"] or "", county_name(m["county"]) if m["county"] else "",
                          "、".join(x["name"] or x["code"] for x in m["expertise"]),
                          "抽中专家" if m["role"] == "member" else "备选专家")
        self.demo.console.print(table)

        report = self.city.call("GET", f"/draws/{drawn['id']}/verification").json()
        table = Table(title="核验抽取（按抽取时的专家库历史重建候选名单、用存储的种子重新抽取）", title_style="bold")
        for name in ("核验项", "结果", "说明"):
            table.add_column(name)
        for c in report["checks"]:
            table.add_row(c["label"], "[green]✓ 一致[/]" if c["ok"] else "[red]✗ 不一致[/]", escape(c["message"]))
        self.demo.console.print(table)
        if not report["ok"]:
            raise DemoError("抽取核验未通过：" + "；".join(c["message"] for c in report["checks"] if not c["ok"]))
        self.say("  [green]✓[/] 抽取核验通过（同 cqo draw verify）")

        public_url = f"{self.base}/api/v1/public/draws/{drawn['id']}"
        session = requests.Session()
        session.trust_env = False
        before = session.get(public_url, timeout=15).status_code
        self.city.call("POST", f"/draws/{drawn['id']}/publish")
        resp = session.get(public_url, timeout=15)
        if resp.status_code != 200:
            raise DemoError(f"公布后无法公开查询专家组（HTTP {resp.status_code}）")
        public = resp.json()
        self.say(f"  公布前，无令牌查询 /api/v1/public/draws/{{id}}：HTTP {before}（未公布不可见）\n"
                 f"  市局公布专家组后，无令牌查询（仅姓名和专业领域，不含联系方式）：")
        for m in public["panel"]:
            self.say(f"    · {m['name']}（{'、'.join(x['name'] or x['code'] for x in m['expertise'])}）")
        return {"id": drawn["id"], "eligible": run["eligible_count"], "verified": report["ok"],
                "checks": {c["name"]: c["ok"] for c in report["checks"]},
                "panel": [m["name"] for m in drawn["panel"]],
                "members": [m["name"] for m in drawn["members"]], "excluded": standing_aside,
                "public_before_publish": before, "public_panel": [m["name"] for m in public["panel"]],
                "public_fields": sorted({k for m in public["panel"] for k in m})}


def _short(firm: "Company") -> str:
    """The enterprise's short name: its full name without the county and 有限公司."""
    name = firm.name.removesuffix("有限公司")
    return name.removeprefix(county_name(firm.county))
