"""`cqo demo` (= `make demo`, docs/architecture.md, "The outside contract") as a user
runs it: a subprocess that starts real service processes, shows the training courses,
the certificates verified at the city and a verified panel draw, prints the per-county
table and the notices each party received per channel, and stops everything."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cqo.demo import RESULT_FILE, STATE_FILE, demo_ports, make_cast, service_processes
from cqo.demo_channels import SmtpSink
from tests.support.pii import IdCase, assert_not_shown

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HEADERS = ("县区", "提交", "受理失败", "县局退回", "市局通过", "不予备案", "逾期变更")
KEYS = ("submitted", "refused_at_intake", "returned", "accepted", "rejected", "late")
PARTIES = {"企业": ("enterprise", None), "县局·沧县": ("county", "130921"), "县局·青县": ("county", "130922"),
           "市局": ("city", None), "专家": ("expert", None)}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_offset() -> int:
    """Ports away from the defaults (a developer's `make demo` or `cqo stack up`)."""
    for _ in range(50):
        offset = random.randrange(3000, 9000, 10)
        if all(_port_free(p) for p in demo_ports(offset)):
            return offset
    pytest.fail("no free port range for the demo")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def run_demo(workdir: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "CQO_DEMO_PORT_OFFSET"}
    full_env.update({"COLUMNS": "140", "PYTHONUNBUFFERED": "1", **env})
    return subprocess.run([sys.executable, "-m", "cqo.cli", "demo", "--dir", str(workdir)],
                          cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


def _numbers(line: str) -> list[int]:
    """The figures of one table row (the cells after the county's name)."""
    cells = [c.strip() for c in line.split("│")[1:-1]]
    return [int(c) for c in cells[1:]]


def test_demo_runs_a_round_end_to_end_and_stops_everything(broker, tmp_path):
    workdir = tmp_path / "demo"
    started = time.monotonic()
    proc = run_demo(workdir, {"AMQP_URI": broker.amqp_uri,
                              "RABBITMQ_MANAGEMENT_URL": broker.management_url,
                              "CQO_DEMO_PORT_OFFSET": str(_free_offset())})
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-4000:]}\n{proc.stderr[-2000:]}"

    # nothing is left running, and the run's vhost is gone
    assert service_processes(workdir) == [], "service processes left running"
    assert not (workdir / STATE_FILE).exists()
    result = json.loads((workdir / RESULT_FILE).read_text(encoding="utf-8"))
    if result["vhost"]:
        mgmt = requests.utils.urlparse(broker.management_url)
        resp = requests.get(f"http://{mgmt.hostname}:{mgmt.port or 15672}/api/vhosts/{result['vhost']}",
                            auth=(mgmt.username or "guest", mgmt.password or "guest"), timeout=10)
        assert resp.status_code == 404, f"vhost {result['vhost']} not deleted"

    # the table, in Chinese, with a row per county and the city-wide total
    for header in HEADERS:
        assert header in out
    assert "沧县（130921）" in out and "青县（130922）" in out
    # the filing table's lines (8 borders); the certificate and pool tables have fewer
    filing_lines = [line for line in out.splitlines() if line.count("│") == len(HEADERS) + 1]
    total_line = next(line for line in filing_lines if "全市合计" in line)
    rows = {r["county"]: r for r in result["rows"]}
    assert set(rows) == {"130921", "130922"}
    sums = [sum(r[k] for r in rows.values()) for k in KEYS]
    assert _numbers(total_line) == sums, total_line
    for county, r in rows.items():
        line = next(line for line in filing_lines if f"（{county}）" in line)
        assert _numbers(line) == [r[k] for k in KEYS], line

    # plausible numbers: what the scenario does, as the services counted it
    for county, r in rows.items():
        assert 8 <= r["submitted"] <= 20, r
        assert r["refused_at_intake"] >= 2, r        # bad USCC check character, 2 years
        assert r["returned"] >= 1, r                 # returned, corrected, resubmitted
        assert r["accepted"] >= 6, r
        assert 1 <= r["late"] <= r["accepted"], r    # late changes: accepted and flagged
        assert r["pending"] == 0, r
        assert r["submitted"] == r["refused_at_intake"] + r["accepted"] + r["rejected"], r
        assert r["consistent"], r                    # county == city ledger
    assert sums[KEYS.index("rejected")] >= 1         # the second county's duplicate establishment
    city = result["city_totals"]
    assert city["accepted"] == sums[KEYS.index("accepted")]
    assert city["rejected"] == sums[KEYS.index("rejected")]
    assert city["late"] == sums[KEYS.index("late")]
    assert result["consistent"] is True

    # the clerk's Chinese messages and the city's reasons are shown
    assert "校验码" in out                            # bad USCC check character
    assert "不少于3年" in out                          # under 3 years: blocking finding
    assert "请提交变更备案" in out                      # already filed in another county
    assert "逾期" in out and "所有服务已停止" in out

    # 任职培训: a city course entered over HTTP, a county course imported from CSV
    courses = {c["entered"]: c for c in result["training"]["courses"]}
    assert courses["http"]["level"] == "city" and courses["http"]["attendees"] >= 8
    assert courses["csv"]["level"] == "county" and courses["csv"]["county"] == "130922"
    assert courses["csv"]["passed"] == courses["csv"]["attendees"] - 1     # one failed
    assert result["training"]["import"]["rejected"] == 1                  # a mistyped ID number
    for title in ("任职培训课程", courses["http"]["title"], courses["csv"]["title"], "县局导入 CSV"):
        assert title in out
    assert "校验码" in out.split("任职培训课程")[0]                        # the import's row report

    # the certificates verified at the city: the trained verified, the two others flagged
    certs = result["certificates"]
    assert certs["checked"] == certs["verified"] + len(certs["flagged"]) and certs["verified"] >= 12
    assert sorted(f["certificate"] for f in certs["flagged"]) == [
        "TRAINING_CERTIFICATE_OTHER_PERSON", "TRAINING_CERTIFICATE_UNVERIFIED"]
    total_line = next(line for line in out.splitlines() if "全市合计" in line
                      and line.count("│") == 5)
    assert _numbers(total_line) == [certs["checked"], certs["verified"], len(certs["flagged"])]
    assert "持证人不是申报的首席质量官" in out and "暂无证书编号" in out

    # the pool from the appointment events, experts, a draw verified and published
    assert result["pool_members"] == city["accepted"]
    draw = result["draw"]
    assert draw["verified"] is True and all(draw["checks"].values()), draw
    assert set(draw["checks"]) == {"snapshot", "snapshot_hash", "order", "result", "chain"}
    assert len(draw["panel"]) == 3 and len(draw["members"]) == 4
    assert draw["excluded"] and not set(draw["excluded"]) & set(draw["members"])
    assert draw["public_before_publish"] == 404
    assert draw["public_panel"] == draw["panel"]
    assert draw["public_fields"] == ["expert_id", "expertise", "name", "role"]  # no contact details
    assert "市级质量专家" in out and "抽取核验通过" in out and "候选名单快照" in out
    public_part = out.split("市局公布专家组后")[1]
    assert all(name in public_part for name in draw["panel"])

    # the notices each party received (issue 11), counted from notify's delivery log
    _assert_notices(out, workdir, result, rows, sums)
    assert elapsed < 120, f"demo took {elapsed:.0f}s"


def test_demo_without_a_broker_says_what_to_run(tmp_path):
    workdir = tmp_path / "demo"
    started = time.monotonic()
    proc = run_demo(workdir, {"AMQP_URI": f"amqp://guest:guest@127.0.0.1:{_closed_port()}/"},
                    timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "无法连接消息服务器" in out
    assert "rabbitmq-server -detached" in out
    assert "AMQP_URI" in out
    assert time.monotonic() - started < 30
    assert service_processes(workdir) == []
    assert not workdir.exists()  # nothing was started or written


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(broker, tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me", encoding="utf-8")
    proc = run_demo(tmp_path, {"AMQP_URI": broker.amqp_uri,
                               "RABBITMQ_MANAGEMENT_URL": broker.management_url}, timeout=60)
    assert proc.returncode != 0
    assert "非空且不是演示目录" in proc.stdout
    assert precious.read_text(encoding="utf-8") == "keep me"


def _assert_notices(out: str, workdir: Path, result: dict, rows: dict, sums: list[int]) -> None:
    notices = result["notices"]
    parties = {(r["party"], r["county"]): r for r in notices["rows"]}
    assert set(parties) == set(PARTIES.values()), parties
    # what the servers received is what notify recorded sent
    mails = sorted((workdir / "mail").glob("*.eml"))
    sms = (workdir / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    totals = notices["totals"]
    assert len(mails) == notices["mails_received"] == totals["email"]["sent"] \
        == sum(p["email"]["sent"] for p in parties.values()) > 0
    assert len(sms) == notices["sms_received"] == totals["sms"]["sent"] \
        == sum(p["sms"]["sent"] for p in parties.values()) > 0
    assert notices["consistent"] is True
    assert set(totals["email"]) | set(totals["sms"]) | set(totals["inbox"]) <= {"sent", "skipped"}, totals

    # the enterprise: every decision, return and late record in its inbox and by e-mail
    # (the firm that gave no e-mail address: skipped); an SMS for decisions and returns
    decided = {c: r["accepted"] + r["rejected"] for c, r in rows.items()}
    returned, late = sums[KEYS.index("returned")], sums[KEYS.index("late")]
    firm = parties[("enterprise", None)]
    assert firm["notices"] == firm["inbox"]["sent"] == sum(decided.values()) + returned + late, firm
    assert firm["email"]["sent"] + firm["email"]["skipped"] == firm["notices"] and firm["email"]["skipped"] >= 1
    assert firm["sms"]["sent"] == sum(decided.values()) + returned, firm
    # a county office: the campaign, its county's decisions and late records, by e-mail
    for county, r in rows.items():
        office = parties[("county", county)]
        assert office["recipients"] == 1
        assert office["notices"] == office["email"]["sent"] == 1 + decided[county] + r["late"], office
        assert office["inbox"]["sent"] == office["sms"]["sent"] == 0
    # the city office: the published panel; the experts: their invitation to the panel
    city = parties[("city", None)]
    assert city["notices"] == city["email"]["sent"] == 1 and city["inbox"]["sent"] == city["sms"]["sent"] == 0
    expert = parties[("expert", None)]
    panel = len(result["draw"]["panel"])
    assert expert["recipients"] == expert["notices"] == expert["inbox"]["sent"] == panel
    for channel in ("email", "sms"):  # skipped for an expert who did not consent to contact
        assert expert[channel]["sent"] + expert[channel]["skipped"] == panel, expert

    # the table as printed: a row per party kind, the figures of the result file
    lines = [line for line in out.splitlines() if line.count("│") == 11]
    for label, key in PARTIES.items():
        p = parties[key]
        line = next(line for line in lines if line.split("│")[1].strip() == label)
        assert _numbers(line) == [p["recipients"], p["notices"], p["inbox"]["sent"],
                                  *(p[c][s] for c in ("email", "sms") for s in ("sent", "skipped", "failed"))], line
    assert str(workdir / "mail") in out.replace("\n", "")

    # no ID number of the round's CQOs in any mail or SMS
    cast = make_cast()
    people = [p for county in cast.first.values() for p in county] + [
        p for county in cast.changes.values() for p in county.values()] + [cast.cross]
    cases = [IdCase("resident_id", p.id_number, p.name, True) for p in people]
    for name, text in SmtpSink(0, workdir / "mail").texts():
        assert_not_shown(text, cases, f"the mail {name}")
    assert_not_shown("\n".join(sms), cases, "the SMS received")
