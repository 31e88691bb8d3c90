"""Notifications at scale (issue 11): 2,000 `register.filing.decided` events published on
the broker, one message each, to a notify service in its own process on PostgreSQL,
e-mailing a local aiosmtpd server (in its own process); measured from the first publish
until the last e-mail delivery is recorded as sent (`sent_at`). Each event makes one
notice for its enterprise (in-app inbox, e-mail; no SMS gateway here: skipped).

Baseline, in the same run: a bare smtplib loop sending the same 2,000 rendered messages
(the notices as stored, built by the same `build_message`) over one reused connection to
the same server. `ratio` = notices_per_s / bare_per_s (goal: at least 0.5).

    python -m bench.notify [--events 2000] [--batch 1]

`--batch N` publishes N events a message, as a source's outbox sends the events of one
transaction (a county's batch decided at once): the service then writes them in one
transaction.
"""
from __future__ import annotations

import argparse
import os
import json
import smtplib
import tempfile
import time
from datetime import timezone
from pathlib import Path

from kombu import Connection, Producer
from rich.console import Console
from sqlalchemy import func, select

from bench.common import SECRET, free_port, isolated_infra, serve_args, spawn, stop, wait_http
from services.notify.channels.email import build_message
from services.notify.models import Delivery, Notice
from shared.contracts import events
from shared.db import Database
from shared.messaging import topology
from tests.support.factories import uscc_for
from cqo.demo_channels import SmtpSink

console = Console(stderr=True)
SENDER = "noreply@cqo.example.cn"


def decided(n: int) -> dict:
    filing_id = f"9b1d2c3e-0000-4000-8000-{n:012d}"
    return events.build("register.filing.decided", f"{filing_id}/v1", {
        "filing_id": filing_id, "version": 1, "county": "130921", "uscc": uscc_for("130921", n),
        "enterprise_name": f"沧州示例企业{n}有限公司", "kind": "establishment",
        "outcome": "accepted" if n % 5 else "rejected",
        "reasons": [] if n % 5 else [{"code": "QUALIFICATION_NOT_MET", "message": "从事质量管理工作不满3年"}],
        "late": False, "days_late": 0, "appointment_id": n, "contact_name": f"联络人{n}",
        "contact_phone": f"138{n:08d}", "contact_email": f"qiye{n}@example.cn"},
        source="registry", event_id=f"event:filing:{filing_id}:v1:decided")


def publish(amqp_uri: str, built: list[dict], batch: int) -> None:
    """One message per event, or `batch` events a message as a source's outbox sends
    the events of one transaction (`{"events": [...]}`, docs/events.md)."""
    with Connection(amqp_uri) as conn:
        topology.declare(conn, topology.event_queues())
        producer = Producer(conn.channel())
        for start in range(0, len(built), batch):
            group = built[start:start + batch]
            body, message_id = ((group[0], group[0]["event_id"]) if batch == 1 else
                                (events.batch(group), f"batch:{group[0]['event_id']}+{len(group)}"))
            producer.publish(json.dumps(body, ensure_ascii=False).encode(), exchange=topology.EVENTS,
                             routing_key=group[0]["type"], content_type="application/json",
                             content_encoding="utf-8", message_id=message_id, delivery_mode=2)


def email_statuses(db: Database) -> dict[str, int]:
    with db.unit_of_work() as uow:
        return dict(uow.session.execute(select(Delivery.status, func.count()).where(
            Delivery.channel == "email").group_by(Delivery.status)).all())


def bare_loop(port: int, db: Database) -> tuple[float, int]:
    """The same rendered messages (the same bytes the service sends) over one reused
    smtplib connection."""
    with db.unit_of_work() as uow:
        rows = uow.session.execute(select(Notice.id, Notice.subject, Notice.body_text, Notice.body_html)
                                   .order_by(Notice.id)).all()
    messages = [(f"bare{n}@example.cn", build_message(sender=SENDER, to=f"bare{n}@example.cn", subject=s,
                                                      text=t, html=h, delivery_id=n))
                for n, s, t, h in rows]
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        for to, msg in messages:
            conn.sendmail(SENDER, [to], msg)
    return time.perf_counter() - started, len(messages)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the service's process used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1, choices=range(1, events.BATCH_MAX + 1),
                        metavar="1..500", help="events per message (default 1: one message each)")
    args = parser.parse_args()
    total = args.events
    with isolated_infra("notify") as (amqp_uri, pg_url, prefix, schemas), \
            tempfile.TemporaryDirectory() as work:
        work = Path(work)
        schema = f"{prefix}_notify"
        schemas.append(schema)
        smtp_port, http_port = free_port(), free_port()
        with SmtpSink(smtp_port, work / "mail") as sink:
            env = {"AMQP_URI": amqp_uri, "DATABASE_URL": pg_url, "DATABASE_SCHEMA": schema,
                   "CQO_AUTH_SECRET": SECRET, "DEV_KEYS_DIR": str(work / "keys"),
                   "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_FROM": SENDER,
                   "DELIVERY_INTERVAL_S": "0.05", "LOG_LEVEL": "WARNING"}
            process = spawn(serve_args("notify", "--port", str(http_port)), env, work / "notify.log")
            try:
                wait_http(f"http://127.0.0.1:{http_port}/api/v1/health", process=process)
                built = [decided(n) for n in range(1, total + 1)]
                db = Database(pg_url, schema=schema)
                console.print(f"publishing {total} events …")
                started_at, started = time.time(), time.perf_counter()
                publish(amqp_uri, built, args.batch)
                deadline = started + 600
                while True:  # until every e-mail is settled: sent, or failed / unknown
                    statuses = email_statuses(db)
                    if sum(statuses.values()) == total and not {"pending", "sending"} & set(statuses):
                        break
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"e-mails not settled within 600 s: {statuses}; "
                                         f"log: {(work / 'notify.log').read_text()[-3000:]}")
                    time.sleep(0.1)
                if statuses.get("sent") != total:
                    console.print(f"[red]not every e-mail was sent: {statuses}[/]")
                with db.unit_of_work() as uow:
                    last = uow.session.scalar(select(func.max(Delivery.sent_at)))
                    written = uow.session.scalar(select(func.max(Notice.created_at)))
                elapsed = last.replace(tzinfo=last.tzinfo or timezone.utc).timestamp() - started_at
                intake_s = written.replace(tzinfo=written.tzinfo or timezone.utc).timestamp() - started_at
                received = len(sink.files())
                cpu_s = process_cpu_s(process.pid)
            finally:
                stop(process)
            bare_s, bare_n = bare_loop(smtp_port, db)
            db.dispose()
    notices_per_s, bare_per_s = statuses.get("sent", 0) / elapsed, bare_n / bare_s
    console.print(f"{total} events → {received} e-mails received ({statuses}); last notice written {intake_s:.2f} s, "
                  f"last e-mail sent {elapsed:.2f} s after the first publish; "
                  f"bare smtplib: {bare_n} in {bare_s:.2f} s; the service used {cpu_s:.1f} s of CPU")
    print(f"RESULT events={total} batch={args.batch} notices_per_s={notices_per_s:.0f} bare_per_s={bare_per_s:.0f} "
          f"ratio={notices_per_s / bare_per_s:.2f}")


if __name__ == "__main__":
    main()
