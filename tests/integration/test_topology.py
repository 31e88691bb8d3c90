"""`cqo topology apply` on the local RabbitMQ (issue 13, first part): a city vhost and two
county vhosts of this run's own prefix (users too: they are global on a broker), each
site spoken to as its own user. Filings cross the shovels to the city with forward
headers; a decision comes back to its county only; the broker itself refuses a county
publishing for another and a forged `user_id`; a second apply changes nothing; a
rotated password takes effect. Torn down at the end.
"""
from __future__ import annotations

import json
import uuid

import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection

from shared.messaging import management, sites, topology
from tests.integration.topology_support import (COUNTY, OTHER, applied, connection, count, get,
                                                layout_of, publish, site_for, wait_for_shovels)


@pytest.fixture(scope="module")
def site(broker, run_id, tmp_path_factory):
    made = site_for(broker, f"cqotopo_{run_id}", tmp_path_factory.mktemp("topology") / "broker.json")
    with applied(made):
        yield made


def test_a_filing_crosses_to_the_city_with_its_user_and_forward_headers(site):
    user = site.names.user(COUNTY)
    body = {"county": COUNTY, "filing_id": str(uuid.uuid4())}
    message_id = publish(site.uri(COUNTY), topology.FILINGS.name, f"filing.{COUNTY}.x", body,
                         user_id=user)
    message = get(site.uri(site.names.city), topology.REGISTRY_INTAKE, message_id)
    assert json.loads(message.body) == body
    assert message.delivery_info["routing_key"] == f"filing.{COUNTY}.x"
    # the county's validated user travels on (the shovel user impersonates it): the
    # registry's per-county trust maps it to the county (COUNTY_BROKER_USERS)
    assert message.properties["user_id"] == user
    assert layout_of(site).county_broker_users()[user] == COUNTY
    headers = message.properties["application_headers"]
    (hop,) = headers["x-shovelled"]
    assert hop["shovel-name"] == f"cqo-filings-{COUNTY}"
    assert hop["shovel-vhost"] == site.names.vhost(COUNTY)
    assert hop["src-queue"] == f"shovel.{COUNTY}.filings"
    assert isinstance(headers["x-shovelled-timestamp"], int)
    shovel_password = site.passwords()[site.names.shovel_user]
    assert shovel_password not in repr(headers)  # the URIs in the headers are redacted


def test_a_county_event_crosses_to_the_city_subscribers(site):
    message_id = publish(site.uri(COUNTY), topology.EVENTS.name, f"filing.{COUNTY}.returned",
                         {"county": COUNTY}, user_id=site.names.user(COUNTY))
    message = get(site.uri(site.names.city), "notify.events", message_id)
    assert message.delivery_info["routing_key"] == f"filing.{COUNTY}.returned"


def test_a_decision_reaches_its_county_only_and_a_notice_to_all_reaches_both(site):
    city = site.uri(site.names.city)
    decision = publish(city, topology.DECISIONS.name, f"decision.{COUNTY}", {"county": COUNTY})
    message = get(site.uri(COUNTY), f"filing.{COUNTY}.decisions", decision)
    assert message.delivery_info["routing_key"] == f"decision.{COUNTY}"
    notice = publish(city, topology.NOTICES.name, topology.NOTICE_ALL, {"all": True})
    for county in (COUNTY, OTHER):
        get(site.uri(county), f"filing.{county}.notices", notice)
    # the notice to all went the same way and has arrived at the other county: the
    # decision would have too, had it been routed there
    assert count(site, OTHER, f"filing.{OTHER}.decisions") == 0
    assert count(site, site.names.city, f"shovel.{OTHER}.decisions") == 0


@pytest.mark.parametrize("who, exchange, routing_key", [
    ("county", topology.FILINGS.name, f"filing.{OTHER}.x"),  # topic permission
    ("county", topology.EVENTS.name, f"filing.{OTHER}.returned"),  # topic permission
    ("county", topology.DECISIONS.name, f"decision.{COUNTY}"),  # no write on decisions
    ("city", topology.FILINGS.name, f"filing.{COUNTY}.x"),  # filings come by shovel only
])
def test_the_broker_refuses_what_a_user_may_not_publish(site, who, exchange, routing_key):
    uri = site.uri(COUNTY if who == "county" else site.names.city)
    with pytest.raises(AccessRefused, match="ACCESS_REFUSED"):
        publish(uri, exchange, routing_key, {"county": OTHER})


def test_a_county_reads_only_its_own_queues(site):
    with connection(site.uri(COUNTY)) as conn:
        with pytest.raises(AccessRefused):
            conn.default_channel.basic_get(f"shovel.{COUNTY}.filings", no_ack=False)


def test_the_broker_refuses_a_forged_user_id(site):
    with pytest.raises(PreconditionFailed, match="user_id"):
        publish(site.uri(COUNTY), topology.FILINGS.name, f"filing.{COUNTY}.x",
                {"county": COUNTY}, user_id=site.names.user(OTHER))


def test_apply_again_changes_nothing_and_plan_and_export_show_no_password(site):
    result = site.cli("apply", "--secrets", str(site.secrets), *site.options)
    assert result.exit_code == 0, result.output
    assert "与现有拓扑一致，未作改动" in result.output
    api = management.Management(site.management_url)
    try:
        report = management.apply(api, layout_of(site), site.passwords())
    finally:
        api.close()
    assert not report.changed
    assert report.count(management.UNCHANGED) == len(report.changes) > 50

    plan = site.cli("plan", *site.options)
    export = site.cli("export", "--secrets", str(site.secrets), *site.options)
    assert plan.exit_code == export.exit_code == 0, plan.output + export.output
    for password in site.passwords().values():
        assert password not in plan.output and password not in export.output
    assert f'COUNTY_BROKER_USERS=\'{{"{site.names.user(COUNTY)}": "{COUNTY}"' in plan.output
    definitions = json.loads(export.output)
    shovel = {u["name"]: u for u in definitions["users"]}[site.names.shovel_user]
    assert shovel["tags"] == "impersonator"
    assert sites.password_matches(site.passwords()[site.names.shovel_user], shovel["password_hash"])
    assert {p["value"]["ack-mode"] for p in definitions["parameters"]} == {"on-confirm"}
    on_screen = site.cli("export", "--secrets", str(site.secrets), "--include-secrets", *site.options)
    assert on_screen.exit_code == 2 and "SECRETS_ON_SCREEN" in on_screen.output


def test_rotate_password(site):
    user = site.names.user(OTHER)
    old = site.passwords()[user]
    result = site.cli("rotate-password", user, "--secrets", str(site.secrets), *site.options)
    assert result.exit_code == 0, result.output
    new = site.passwords()[user]
    assert new != old and new not in result.output
    with pytest.raises(AccessRefused):
        with Connection(site.uri(OTHER, password=old), connect_timeout=5) as conn:
            conn.connect()
    with Connection(site.uri(OTHER, password=new), connect_timeout=5) as conn:
        conn.connect()

    # the shovel user's password lives in the shovels' URIs too: they are put again
    # and filings still cross
    result = site.cli("rotate-password", site.names.shovel_user, "--secrets", str(site.secrets),
                      *site.options)
    assert result.exit_code == 0, result.output
    assert "更新了 8 个 Shovel" in result.output
    wait_for_shovels(site)
    message_id = publish(site.uri(COUNTY), topology.FILINGS.name, f"filing.{COUNTY}.x",
                         {"county": COUNTY}, user_id=site.names.user(COUNTY))
    get(site.uri(site.names.city), topology.REGISTRY_INTAKE, message_id)


def test_bad_input_is_a_clear_error(site):
    result = site.cli("plan", "--county", "999999", "--prefix", site.prefix)
    assert result.exit_code == 2 and "TOPOLOGY_INVALID" in result.output and "999999" in result.output
    result = site.cli("rotate-password", "nobody", "--secrets", str(site.secrets), *site.options)
    assert result.exit_code == 2 and "nobody" in result.output


def test_exported_definitions_load_at_boot_and_match_apply(broker, run_id, tmp_path):
    """What an operator loads at boot (POST /api/definitions here) is what apply makes:
    after loading it, apply finds nothing to change and the shovels run."""
    other = site_for(broker, f"cqoexport_{run_id}", tmp_path / "broker.json")
    out = tmp_path / "definitions.json"
    result = other.cli("export", "--secrets", str(other.secrets), "--include-secrets",
                       "--out", str(out), *other.options)
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o077 == 0  # it holds the shovel user's password
    api = management.Management(broker.management_url)
    try:
        api.send("POST", "/definitions", json.loads(out.read_text(encoding="utf-8")))
        wait_for_shovels(other)
        report = management.apply(api, layout_of(other), other.passwords())
        assert not report.changed, [c for c in report.changes if c.action != management.UNCHANGED]
    finally:
        management.teardown(api, layout_of(other))
        api.close()


def test_the_county_service_runs_as_its_least_privileged_user(site, tmp_path):
    """The real filing service of 130921, on its own vhost as its own user: it declares
    what it needs, its approved filing crosses to the city, the city's decision comes
    back through the shovel and is applied."""
    from tests.integration import filing_support as fs

    with fs.FilingStack(site.uri(COUNTY), {"DATABASE_URL": f"sqlite:///{tmp_path / 'county.db'}"},
                        tmp_path / "keys", county=COUNTY) as stack:
        filing = stack.file(kind="change")
        assert stack.review(filing["id"])["status"] == "forwarded"
        message = get(site.uri(site.names.city), topology.REGISTRY_INTAKE,
                      f"filing:{filing['id']}:v1")
        assert message.delivery_info["routing_key"] == f"filing.{COUNTY}.change"
        assert message.properties["application_headers"]["x-shovelled"][0]["shovel-name"] == \
            f"cqo-filings-{COUNTY}"
        publish(site.uri(site.names.city), topology.DECISIONS.name, f"decision.{COUNTY}",
                {"county": COUNTY, "decisions": [fs.decision(filing, "accepted")]})
        fs.wait_for(lambda: stack.get(f"/filings/{filing['id']}", fs.officer()).json()["status"]
                    == "accepted", timeout=20, message="the city's decision applied at the county")
