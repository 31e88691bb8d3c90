"""Multi-site forwarding (issue 13): 5,000 proactive filings at county 130921, each
forwarded on its own as its approval leaves it (one outbox row, one message), until every
decision is recorded back at the county, through the shovels between the county's vhost
and the city's: the layout `cqo topology apply` makes (run as the operator runs it, with
a prefix of this run's own, torn down afterwards), each service as its own broker user,
the registry in BROKER_TRUST=per-county.

Baseline, in the same run: the same services (registry and county filing service on
PostgreSQL), the same process counts and prefetch, the same filings, all on one shared
vhost as one broker user. ratio = shovel_filings_per_s / shared_filings_per_s (goal at
least 0.7). Then the layout of 50 counties (a generated jurisdiction, JURISDICTION_CSV,
as bench.roster generates county codes) applied, its shovels running, applied again (no
change) and torn down, each timed.

    python -m bench.multisite [--filings 5000] [--registry-processes 2] [--counties 50]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from sqlalchemy import text

from bench.common import (ROOT, SECRET, cqo_args, free_port, isolated_infra, serve_args, spawn, stop,
                          wait_http)
from bench.forwarding import (COUNTY, broker_cpu_seconds, cpu_seconds, phase_times, seed_county,
                              wait_decided)
from bench.roster import county_codes, write_jurisdiction
from services.filing.domain import filing_message_id
from services.registry import trust
from shared.contracts import FILINGS_EXCHANGE, filing_routing_key
from shared.db import Database
from shared.keys import Keys
from shared.messaging import management, sites
from shared.messaging.outbox import Outbox
from shared.migrate import upgrade
from tests.support import infra

console = Console(stderr=True)


@dataclass
class Run:
    label: str
    filings: int
    seconds: float
    accepted: int
    cpu: dict[str, float]  # registry, county, broker
    phases: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.filings / self.seconds

    def report(self) -> str:
        t, cpu = self.phases, self.cpu
        return (f"{self.label}：{self.filings:,} 条备案逐条报送并收到决定 {self.seconds:.2f} 秒，"
                f"{self.per_s:,.0f} 条/秒（通过 {self.accepted:,} 条）\n"
                f"  阶段（秒）：县局发出末条 {t['published']:.2f}，市局收到首条 {t['first_in']:.2f}、"
                f"末条 {t['last_in']:.2f}，末条决定 {t['last_decided']:.2f}，决定发出 {t['last_sent']:.2f}，"
                f"县局收齐决定 {t['back']:.2f}\n"
                f"  CPU（秒）：市局 {cpu['registry']:.2f}，县局 {cpu['county']:.2f}，"
                f"消息代理 {cpu['broker']:.2f}（含 Shovel；与同机其他任务共用）")


# -- the topology, through `cqo topology` ---------------------------------------------------

def topology(action: str, *options: str, env: dict) -> float:
    """`cqo topology <action>` as the operator runs it; seconds it took. A failure ends
    the benchmark with the command's own (Chinese, password-free) message."""
    started = time.perf_counter()
    result = subprocess.run(cqo_args("topology", action, *options), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"cqo topology {action} 失败：{(result.stderr or result.stdout).strip()}")
    return time.perf_counter() - started


def wait_running(api: management.Management, lay: sites.Layout, timeout: float = 300) -> None:
    """Until every shovel of the layout runs (what `cqo topology status` checks)."""
    deadline = time.monotonic() + timeout
    while True:
        states = management.shovel_states(api, lay)
        if all(state == "running" for state in states.values()):
            return
        if time.monotonic() > deadline:
            stuck = {name: state for name, state in states.items() if state != "running"}
            raise SystemExit(f"Shovel 未能在 {timeout:.0f} 秒内全部运行：{stuck}")
        time.sleep(0.3)


@dataclass
class Applied:
    """A layout as `cqo topology apply` made it: the layout, the broker users' passwords
    (the secrets file it wrote), the command's options and environment, and how long
    each step took."""

    layout: sites.Layout
    passwords: dict[str, str]
    address: str  # host:port of AMQP
    apply_options: list[str]
    env: dict
    timings: dict[str, float]

    def uri(self, site: str) -> str:
        """AMQP URI of `site`'s vhost as its own broker user."""
        names = self.layout.names
        return sites.amqp_uri(self.address, names.user(site), self.passwords[names.user(site)],
                              names.vhost(site))


@contextmanager
def applied(broker, prefix: str, secrets: Path, counties: list[str], jurisdiction: Path | None = None):
    """The layout of `counties` under `prefix`, applied with `cqo topology apply`, its
    shovels running; torn down afterwards (`cqo topology teardown`, timed too)."""
    parts = urlsplit(broker.amqp_uri)
    address = f"{parts.hostname}:{parts.port or 5672}"
    env = {**os.environ, "RABBITMQ_MANAGEMENT_URL": broker.management_url}
    options = ["--prefix", prefix, "--amqp-address", address]
    if jurisdiction is not None:  # all the jurisdiction's counties, as an operator would
        env["JURISDICTION_CSV"] = str(jurisdiction)
    else:
        options += [arg for county in counties for arg in ("--county", county)]
    apply_options = ["--secrets", str(secrets), *options]
    timings: dict[str, float] = {}
    api = management.Management(broker.management_url)
    try:
        with console.status(f"cqo topology apply：{len(counties)} 个县区与市级站点…"):
            started = time.perf_counter()
            timings["apply"] = topology("apply", *apply_options, env=env)
            passwords = json.loads(secrets.read_text(encoding="utf-8"))
            lay = sites.layout(counties, passwords, names=sites.Names(prefix), amqp_address=address)
            wait_running(api, lay)
            timings["running"] = time.perf_counter() - started
        console.print(f"拓扑已应用（前缀 {prefix}）：{len(lay.vhosts)} 个虚拟主机、{len(lay.users)} 个用户、"
                      f"{len(lay.queues)} 个队列、{len(lay.shovels)} 个 Shovel；应用 {timings['apply']:.1f} 秒，"
                      f"Shovel 全部运行 {timings['running']:.1f} 秒")
        yield Applied(lay, passwords, address, apply_options, env, timings)
    finally:
        try:
            with console.status(f"cqo topology teardown：{len(counties)} 个县区与市级站点…"):
                timings["teardown"] = topology("teardown", "--yes", *options, env=env)
        finally:
            api.close()


# -- one run ---------------------------------------------------------------------------------

def forward(county_db: Database, wires: list[dict]) -> None:
    """What approving each proactive filing writes beside its status (services/filing/
    use_cases.py, review): one outbox message per filing, here all in one transaction so
    that the county's relay finds them at once."""
    with county_db.unit_of_work() as uow:
        Outbox.add_many(uow, FILINGS_EXCHANGE, [
            (filing_routing_key(COUNTY, w["kind"]), w, filing_message_id(w["filing_id"], w["version"]))
            for w in wires])
        uow.commit()


def run(label: str, *, registry_uri: str, county_uri: str, registry_env: dict, pg_url: str,
        schema: str, schemas: list[str], keys_dir: str, logs: Path, filings: int,
        registry_processes: int) -> Run:
    county_schema, registry_schema = f"{schema}_filing", f"{schema}_registry"
    schemas += [county_schema, registry_schema]
    common = {"DATABASE_URL": pg_url, "CQO_AUTH_SECRET": SECRET, "DEV_KEYS_DIR": keys_dir,
              "LOG_LEVEL": "WARNING"}
    county_db = Database(pg_url, schema=county_schema)
    try:
        upgrade(county_db, Path("services/filing/migrations/versions"))
        wires = seed_county(county_db, Keys({"DEV_KEYS_DIR": keys_dir}), filings, channel="proactive")
        registry_port, county_port = free_port(), free_port()
        registry = spawn(serve_args("registry", "--port", str(registry_port), "--processes",
                                    str(registry_processes)),
                         {**common, **registry_env, "AMQP_URI": registry_uri,
                          "DATABASE_SCHEMA": registry_schema}, logs / f"{schema}_registry.log")
        county = spawn(serve_args("filing", "--county", COUNTY, "--port", str(county_port)),
                       {**common, "AMQP_URI": county_uri, "DATABASE_SCHEMA": county_schema},
                       logs / f"{schema}_county.log")
        try:
            with console.status(f"{label}：启动市局登记服务与县局备案服务…"):
                wait_http(f"http://127.0.0.1:{registry_port}/api/v1/health", process=registry)
                wait_http(f"http://127.0.0.1:{county_port}/api/v1/health", process=county)
            before = cpu_seconds(registry), cpu_seconds(county), broker_cpu_seconds()
            since = datetime.now(timezone.utc)
            started = time.perf_counter()
            forward(county_db, wires)
            count = wait_decided(county_db, filings)
            seconds = time.perf_counter() - started
            cpu = {"registry": cpu_seconds(registry) - before[0],
                   "county": cpu_seconds(county) - before[1], "broker": broker_cpu_seconds() - before[2]}
            if count < filings:
                raise SystemExit(f"{label}：超时，{count}/{filings} 条备案收到决定，详见 {logs} 中的日志")
        finally:
            stop(county)
            stop(registry)
        accepted = county_db.read(lambda c: c.execute(text(
            "SELECT count(*) FROM filings WHERE decision_outcome = 'accepted'")).scalar())
    finally:
        county_db.dispose()
    result = Run(label, filings, seconds, accepted, cpu,
                 phase_times(pg_url, county_schema, registry_schema, since))
    console.print(result.report())
    return result


def through_shovels(broker, prefix: str, tmp: Path, **kw) -> Run:
    """The county on its vhost as its user, the registry on the city's as the city's
    user in per-county trust; everything between them crosses the shovels."""
    with applied(broker, f"{prefix}_ms", tmp / "broker.json", [COUNTY]) as site:
        lay = site.layout
        return run("经 Shovel（县局与市局各自的虚拟主机和用户）", registry_uri=site.uri(lay.names.city),
                   county_uri=site.uri(COUNTY), schema=f"{prefix}_shovel",
                   registry_env={trust.MODE_KEY: trust.PER_COUNTY,
                                 trust.USERS_KEY: json.dumps(lay.county_broker_users())}, **kw)


def topology_at_scale(broker, prefix: str, tmp: Path, counties: int) -> dict[str, float]:
    """The layout of `counties` generated counties (all of a generated jurisdiction's):
    apply, shovels running, apply again (nothing to change), teardown."""
    jurisdiction = tmp / f"jurisdiction_{counties}.csv"
    codes = county_codes(counties)
    write_jurisdiction(jurisdiction, codes)
    with applied(broker, f"{prefix}_x{counties}", tmp / f"broker_{counties}.json", codes,
                 jurisdiction) as site:
        with console.status("再次应用（应无改动）…"):
            site.timings["reapply"] = topology("apply", *site.apply_options, env=site.env)
    console.print(f"再次应用 {site.timings['reapply']:.1f} 秒，删除 {site.timings['teardown']:.1f} 秒")
    return site.timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filings", type=int, default=5_000)
    parser.add_argument("--registry-processes", type=int, default=2)
    parser.add_argument("--counties", type=int, default=50,
                        help="counties of the layout applied and torn down (0: skip)")
    args = parser.parse_args()

    with isolated_infra("multisite") as (amqp_uri, pg_url, prefix, schemas), \
            infra.broker() as broker, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        common = dict(pg_url=pg_url, schemas=schemas, keys_dir=str(tmp / "keys"), logs=tmp,
                      filings=args.filings, registry_processes=args.registry_processes)
        shovel = through_shovels(broker, prefix, tmp, **common)
        shared = run("同一虚拟主机（县局与市局共用一个用户）", registry_uri=amqp_uri, county_uri=amqp_uri,
                     registry_env={}, schema=f"{prefix}_shared", **common)
        scale = topology_at_scale(broker, prefix, tmp, args.counties) if args.counties else None

    print(shovel.report())
    print(shared.report())
    if scale is not None:
        print(f"{args.counties} 个县区的拓扑：应用 {scale['apply']:.1f} 秒（至 Shovel 全部运行 "
              f"{scale['running']:.1f} 秒），再次应用（无改动）{scale['reapply']:.1f} 秒，"
              f"删除 {scale['teardown']:.1f} 秒（均含 cqo 命令的启动）")
        print(f"RESULT counties={args.counties} topology_apply_s={scale['apply']:.1f} "
              f"shovels_running_s={scale['running']:.1f} reapply_s={scale['reapply']:.1f} "
              f"teardown_s={scale['teardown']:.1f}")
    print(f"RESULT shovel_filings_per_s={shovel.per_s:.0f} shared_filings_per_s={shared.per_s:.0f} "
          f"ratio={shovel.per_s / shared.per_s:.2f}")


if __name__ == "__main__":
    main()
