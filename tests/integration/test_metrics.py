"""GET /metrics of a running registry (in-process, real broker, SQLite and PostgreSQL):
the counted figures move by what was done, the scrape-time ones read the database, the
broker and the management API (a real shovel), and only an admin may scrape."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.registry_support import running_registry, token
from tests.support import polling

pytestmark = pytest.mark.integration

INTAKE = "registry.intake"


def scrape(base: str, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    resp = requests.get(base + "/metrics", headers=headers or {"Authorization": token("admin")},
                        timeout=15)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """The sample's value; 0 when absent (a counter not yet touched)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def shovel(broker, amqp_uri):
    """A real dynamic shovel between two queues of the test's vhost."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    name = f"metrics-test-{uuid.uuid4().hex[:6]}"
    local = f"amqp:///{vhost}"  # the broker's own node, this vhost
    broker._api("PUT", f"/parameters/shovel/{vhost}/{quote(name, safe='')}", json={"value": {
        "src-uri": local, "src-queue": name + ".from", "dest-uri": local, "dest-queue": name + ".to"}})
    path = f"/parameters/shovel/{vhost}/{quote(name, safe='')}"  # vhost: quoted already
    yield name, lambda: broker._api("DELETE", path)
    try:
        broker._api("DELETE", path)
    except requests.HTTPError:
        pass  # the test deleted it


def test_a_scrape_shows_decisions_backlog_queues_dead_letters_and_latency(
        amqp_uri, db_config, tmp_path, free_port, broker):
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port(),
                          METRICS_MANAGEMENT_URL=broker.management_url) as (county, base, db):
        before = scrape(base)
        accepted = [county.filing(n=n) for n in (1, 2)]
        refused = county.filing(n=1, person=77)  # a second establishment: rejected
        for filing in accepted:
            county.publish(filing)
        county.drain(until=lambda d: len(d) == 2)
        county.publish(refused)
        assert county.decision_of(refused)["outcome"] == "rejected"
        county.publish({}, raw=b"not json")  # dead-lettered by the intake's failure wrapper
        for _ in range(3):
            assert requests.get(base + "/api/v1/filings", timeout=10,
                                headers={"Authorization": token("city_officer")}).status_code == 200
        requests.get(base + "/api/v1/filings/../nothing/12345678", timeout=10)  # no route

        acked = value(before, "cqo_messages_consumed_total", queue=INTAKE, result="acked")

        def settled():
            # the dead letter is recorded before its message is acked: wait for both
            now = scrape(base)
            return now if (value(now, "cqo_outbox_backlog") == 0
                           and value(now, "cqo_dead_letters", consumer=INTAKE,
                                     error_code="MALFORMED_MESSAGE") == 1
                           and value(now, "cqo_messages_consumed_total", queue=INTAKE,
                                     result="acked") - acked >= 4) else None

        after = polling.wait_for(settled, 20, "outbox drained, the dead letter recorded, 4 messages acked")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    decisions = "cqo_registry_decisions_total"
    assert (delta(decisions, outcome="accepted"), delta(decisions, outcome="rejected")) == (2, 1)
    assert value(after, "cqo_outbox_oldest_pending_age_seconds") == 0
    assert delta("cqo_outbox_published_total", exchange="cqo.decisions") == 3
    assert delta("cqo_messages_consumed_total", queue=INTAKE, result="acked") == 4
    assert delta("cqo_messages_dead_lettered_total", queue=INTAKE, code="MALFORMED_MESSAGE") == 1
    route = dict(service="registry", method="GET", route="/api/v1/filings", status="200")
    assert delta("cqo_http_request_duration_seconds_count", **route) == 3
    assert delta("cqo_http_request_duration_seconds_bucket", **route, le="+Inf") == 3
    assert delta("cqo_http_request_duration_seconds_sum", **route) > 0
    # a path no route matches is counted under one label, never its own path
    assert total(after, "cqo_http_request_duration_seconds_count", route="(unmatched)") >= 1
    assert not any("12345678" in dict(labels).get("route", "") for _, labels in after)
    # read at scrape time: this service's queues on the broker and the management API
    assert value(after, "cqo_queue_messages_ready", queue=INTAKE) == 0
    assert value(after, "cqo_queue_consumers", queue=INTAKE) >= 1
    assert ("cqo_queue_messages_unacked", (("queue", INTAKE),)) in after
    for source in ("database", "broker", "management"):
        assert value(after, "cqo_metrics_source_up", source=source) == 1
    assert value(after, "cqo_service_process", service="registry") == 1


def test_shovel_state_comes_from_the_management_api(amqp_uri, db_config, tmp_path, free_port,
                                                    broker, shovel):
    name, delete = shovel
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port(),
                          METRICS_MANAGEMENT_URL=broker.management_url) as (_, base, _db):
        def running():
            samples = scrape(base)
            found = {dict(labels)["state"]: v for (n, labels), v in samples.items()
                     if n == "cqo_shovel_running" and dict(labels)["shovel"] == name}
            return found if found.get("running") == 1 else None

        assert polling.wait_for(running, 20, f"shovel {name} running") == {"running": 1}
        delete()

        def gone():
            samples = scrape(base)
            return not any(n == "cqo_shovel_running" and dict(labels)["shovel"] == name
                           for n, labels in samples)

        polling.wait_for(gone, 20, f"shovel {name} gone from the scrape")


def test_without_a_management_url_the_scrape_leaves_its_figures_out(
        amqp_uri, db_config, tmp_path, free_port):
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port()) as (_, base, _db):
        samples = scrape(base)
        assert ("cqo_metrics_source_up", (("source", "management"),)) not in samples
        assert value(samples, "cqo_metrics_source_up", source="database") == 1


@pytest.mark.parametrize("role, status, code", [(None, 401, "AUTH_MISSING"),
                                                ("city_officer", 403, "AUTH_FORBIDDEN")])
def test_only_an_admin_may_scrape(registry, role, status, code):
    _, base, _ = registry
    headers = {"Authorization": token(role)} if role else {}
    resp = requests.get(base + "/metrics", headers=headers, timeout=10)
    assert resp.status_code == status
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["instance"] == "/metrics"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["title"] + body.get("detail", ""))


def test_the_endpoint_is_in_the_openapi_document(registry):
    _, base, _ = registry
    operation = requests.get(base + "/api/v1/openapi.json", timeout=10).json()["paths"]["/metrics"]["get"]
    assert operation["x-cqo-roles"] == ["admin"] and operation["security"] == [{"bearerAuth": []}]
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert {"401", "403"} <= set(operation["responses"])


def test_a_county_labels_requests_by_route_template_never_by_id(broker, db_config, tmp_path, run_id):
    from tests.integration import filing_support as fs

    with fs.vhost(broker, f"cqo_test_{run_id}_metrics_{uuid.uuid4().hex[:6]}") as uri, \
            fs.FilingStack(uri, db_config, tmp_path / "keys") as stack:
        sink = fs.Probe(uri, "cqo.filings", "filing.#")  # the forwarded filing is routable
        try:
            base, admin = stack.url.removesuffix("/api/v1"), fs.bearer("admin")
            before = scrape(base, admin)
            filed = stack.file()
            stack.review(filed["id"])
            for _ in range(2):
                assert stack.get(f"/filings/{filed['id']}", fs.officer()).status_code == 200
            sink.collect(lambda seen: len(seen) >= 1)
            after = polling.wait_for(
                lambda: (lambda s: s if value(s, "cqo_outbox_backlog") == 0 else None)(scrape(base, admin)),
                20, "the county's outbox drained")
        finally:
            sink.close()
    service = stack.service_cls.name
    route = dict(service=service, method="GET", route="/api/v1/filings/<uuid:filing_id>", status="200")
    assert value(after, "cqo_http_request_duration_seconds_count", **route) \
        - value(before, "cqo_http_request_duration_seconds_count", **route) == 2
    assert not any(filed["id"] in v for _, labels in after for _, v in labels)
    assert value(after, "cqo_outbox_published_total", exchange="cqo.filings") \
        - value(before, "cqo_outbox_published_total", exchange="cqo.filings") >= 1
    assert any(n == "cqo_queue_consumers" and dict(labels)["queue"].endswith(".decisions")
               for n, labels in after), "the county's decisions queue is not reported"
