"""bench.forwarding's flow on the compose stack (containers) and on local processes, in
one run: approved filings at county 130921, POST /batches, until every decision is back
at the county.

Both sides run the same services with the same process counts (registry, talent, notify
and two counties, one process each, as docker-compose.yml runs them), the same chunk
size and the services' default prefetch; containers on their own broker and database
(podman-compose, a project of its own on free ports), local processes on the host's
broker and PostgreSQL (a vhost and schemas of their own). Needs podman (or Docker) and
`make images`.

    python -m bench.stack [--filings 10000] [--chunk-size 500]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import isolated_infra
from bench.forwarding import COUNTY, console, seed_county, submit_and_wait
from cqo.stack import Stack
from shared.db import Database
from shared.keys import Keys
from tests.e2e.compose_stack import ComposeStack
from tests.e2e.support import SECRET, free_port_offset

SERVICES = ("registry", "talent", "notify")
COUNTIES = (COUNTY, "130922")


def in_containers(workdir: Path, filings: int, chunk: int) -> float:
    stack = ComposeStack(workdir, env={"BATCH_CHUNK_SIZE": chunk, "LOG_LEVEL": "WARNING"},
                         prefix="cqobench")
    try:
        with console.status("podman-compose up -d，等待全部服务就绪…"):
            healthy = stack.up()
        console.print(f"容器服务栈就绪：{healthy:.1f} 秒（项目 {stack.project}）")
        secrets = workdir / "secrets"
        keys = Keys({"ID_HMAC_KEY": f"@{secrets / 'id_hmac_key'}",
                     "CITY_PUBLIC_KEY": f"@{secrets / 'city_public_key.pem'}"})
        return measure(Database(stack.postgres_url, schema=f"filing_{COUNTY}"), keys,
                       stack.base_url(f"filing_{COUNTY}"), filings, "容器")
    finally:
        with console.status("podman-compose down…"):
            stack.down()


def local_processes(workdir: Path, filings: int, chunk: int) -> float:
    with isolated_infra("stack") as (amqp_uri, pg_url, prefix, schemas):
        schemas += [f"{prefix}_{name}" for name in (*SERVICES, *(f"filing_{c}" for c in COUNTIES))]
        stack = Stack(workdir, amqp_uri=amqp_uri, counties=COUNTIES, services=SERVICES,
                      database_url=pg_url, schema_prefix=prefix,
                      port_offset=free_port_offset(len(COUNTIES), SERVICES),
                      extra_env={"CQO_AUTH_SECRET": SECRET, "LOG_LEVEL": "WARNING",
                                 "BATCH_CHUNK_SIZE": str(chunk)})
        try:
            with console.status("启动本地服务进程…"):
                stack.start(wait=90)
            keys = Keys({"DEV_KEYS_DIR": str(stack.workdir / "keys")})
            return measure(Database(pg_url, schema=f"{prefix}_filing_{COUNTY}"), keys,
                           stack.spec(f"filing_{COUNTY}").base_url, filings, "本地进程")
        finally:
            stack.stop()


def measure(county_db: Database, keys: Keys, county_url: str, filings: int, label: str) -> float:
    try:
        seed_county(county_db, keys, filings)
        elapsed, submitted_in, count = submit_and_wait(county_db, county_url, SECRET, filings)
    finally:
        county_db.dispose()
    if count < filings:
        raise SystemExit(f"{label}：超时，{count}/{filings} 条备案收到决定")
    console.print(f"{label}：{filings:,} 条备案报送并收到决定 {elapsed:.2f} 秒"
                  f"（报送请求 {submitted_in:.2f} 秒），{filings / elapsed:,.0f} 条/秒")
    return filings / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filings", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        containers = in_containers(Path(tmp) / "compose", args.filings, args.chunk_size)
        local = local_processes(Path(tmp) / "local", args.filings, args.chunk_size)
    print(f"RESULT containers_filings_per_s={containers:.0f} local_filings_per_s={local:.0f} "
          f"ratio={containers / local:.2f}")


if __name__ == "__main__":
    main()
