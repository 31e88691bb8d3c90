"""The multi-site topology as a test sees it: a layout of this run's own prefix applied
with `cqo topology`, and each site spoken to as its own broker user (tests of
test_topology.py and test_multisite.py)."""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from kombu import Connection, Producer
from typer.testing import CliRunner

from cqo.cli import app
from shared.messaging import management, sites

COUNTY, OTHER = "130921", "130922"


@dataclass
class Site:
    prefix: str
    secrets: Path
    address: str  # host:port of AMQP
    management_url: str
    # where the shovels reach the sites (a TCP proxy that can cut the sites apart);
    # the services always use `address`
    shovel_address: str | None = None

    @property
    def names(self) -> sites.Names:
        return sites.Names(self.prefix)

    @property
    def options(self) -> list[str]:
        return ["--county", COUNTY, "--county", OTHER, "--prefix", self.prefix,
                "--amqp-address", self.shovel_address or self.address]

    def passwords(self) -> dict[str, str]:
        return json.loads(self.secrets.read_text(encoding="utf-8"))

    def uri(self, site: str, user: str | None = None, password: str | None = None) -> str:
        user = user or self.names.user(site)
        return sites.amqp_uri(self.address, user, password or self.passwords()[user],
                              self.names.vhost(site))

    def cli(self, *args: str):
        result = CliRunner().invoke(app, ["topology", *args],
                                    env={"RABBITMQ_MANAGEMENT_URL": self.management_url,
                                         "COLUMNS": "200"})
        return result


def site_for(broker, prefix: str, secrets: Path, shovel_address: str | None = None) -> Site:
    """A layout of prefix `prefix` on the local broker (`broker`: tests.support.infra.Broker)."""
    parts = urlsplit(broker.amqp_uri)
    return Site(prefix, secrets, f"{parts.hostname}:{parts.port or 5672}", broker.management_url,
                shovel_address)


@contextlib.contextmanager
def applied(site: Site) -> Iterator[Site]:
    """`cqo topology apply` with its shovels running; `teardown` at the end."""
    result = site.cli("apply", "--secrets", str(site.secrets), *site.options)
    try:
        assert result.exit_code == 0, result.output
        wait_for_shovels(site)
        yield site
    finally:
        result = site.cli("teardown", "--yes", *site.options)
        assert result.exit_code == 0, result.output


def layout_of(site: Site) -> sites.Layout:
    return sites.layout([COUNTY, OTHER], site.passwords(), names=site.names,
                        amqp_address=site.shovel_address or site.address)


def wait_for_shovels(site: Site, timeout: float = 30) -> None:
    api = management.Management(site.management_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            states = management.shovel_states(api, layout_of(site))
            if all(state == "running" for state in states.values()):
                return
            assert time.monotonic() < deadline, states
            time.sleep(0.3)
    finally:
        api.close()


def connection(uri: str) -> Connection:
    # publisher confirms: a refused publish raises here, not on some later call
    return Connection(uri, transport_options={"confirm_publish": True}, connect_timeout=5)


def publish(uri: str, exchange: str, routing_key: str, body: dict, **properties) -> str:
    message_id = properties.pop("message_id", str(uuid.uuid4()))
    with connection(uri) as conn:
        Producer(conn.channel()).publish(
            json.dumps(body), exchange=exchange, routing_key=routing_key, mandatory=True,
            content_type="application/json", delivery_mode=2, retry=False,
            message_id=message_id, **properties)
    return message_id


def get(uri: str, queue: str, message_id: str, timeout: float = 20):
    """The message `message_id` from `queue` (acked), waiting for it; others are left."""
    deadline = time.monotonic() + timeout
    with connection(uri) as conn:
        channel = conn.default_channel
        while time.monotonic() < deadline:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                time.sleep(0.1)
                continue
            if message.properties.get("message_id") == message_id:
                channel.basic_ack(message.delivery_tag)
                return message
            channel.basic_reject(message.delivery_tag, requeue=True)
    raise AssertionError(f"message {message_id} did not reach {queue} within {timeout}s")


def count(site: Site, county_or_city: str, queue: str) -> int:
    api = management.Management(site.management_url)
    try:
        found = api.get(f"/queues/{site.names.vhost(county_or_city)}/{queue}")
    finally:
        api.close()
    return found.get("messages", 0) if found else -1


