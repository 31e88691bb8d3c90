"""The multi-site layout is data (shared/messaging/sites.py): checked without a broker.
The regexes are RabbitMQ's (PCRE); the ones here mean the same in Python's `re`."""
import re

import pytest

from services.registry import trust
from shared.contracts import jurisdiction
from shared.messaging import sites

COUNTIES = ("130921", "130922")
PASSWORDS = {"cqo_city": "city-Pw-0123456789", "cqo_130921": "county-Pw-0123456789",
             "cqo_130922": "other-Pw-0123456789", "cqo_shovel": "s3cret-pw"}


def _layout(**kw):
    return sites.layout(COUNTIES, PASSWORDS, **kw)


def _permission(lay, user, vhost):
    (found,) = [p for p in lay.permissions if p.user == user and p.vhost == vhost]
    return found


def _topic(lay, user, vhost, exchange):
    (found,) = [t for t in lay.topic_permissions
                if (t.user, t.vhost, t.exchange) == (user, vhost, exchange)]
    return found


def test_sites_users_and_the_registry_trust_map():
    lay = _layout()
    assert lay.vhosts == ("cqo-city", "cqo-130921", "cqo-130922")
    assert [(u.name, u.role, u.tags) for u in lay.users] == [
        ("cqo_city", "city", ()), ("cqo_130921", "county", ()), ("cqo_130922", "county", ()),
        ("cqo_shovel", "shovel", ("impersonator",))]
    # the registry in per-county trust takes the map as it is
    users = lay.county_broker_users()
    assert users == {"cqo_130921": "130921", "cqo_130922": "130922"}
    assert trust.from_config({"BROKER_TRUST": "per-county",
                              "COUNTY_BROKER_USERS": users}).county_of_user == users
    # each user has permissions on its own site only (the shovel user on every site)
    assert {(p.user, p.vhost) for p in lay.permissions if p.user != "cqo_shovel"} == {
        ("cqo_city", "cqo-city"), ("cqo_130921", "cqo-130921"), ("cqo_130922", "cqo-130922")}
    assert {p.vhost for p in lay.permissions if p.user == "cqo_shovel"} == set(lay.vhosts)


def test_a_county_user_publishes_and_reads_only_for_its_county():
    lay = _layout()
    p = _permission(lay, "cqo_130921", "cqo-130921")
    can = lambda pattern, name: re.match(pattern, name) is not None  # noqa: E731
    for name in ("cqo.filings", "cqo.events", "cqo.dead", "filing.130921.decisions",
                 "nameko-rpc", "filing_130921.events", "rpc-filing_130921"):
        assert can(p.write, name), name
    for name in ("cqo.decisions", "cqo.notices", "shovel.130921.filings",
                 "filing.130922.decisions", "rpc-registry", "registry.events"):
        assert not can(p.write, name), name
    for name in ("filing.130921.decisions", "filing.130921.notices", "cqo.decisions"):
        assert can(p.read, name), name
    for name in ("shovel.130921.filings", "registry.intake", "filing.130922.notices",
                 "rpc-filing_130922", "cqo.filings"):
        assert not can(p.read, name), name
    assert not can(p.configure, "shovel.130921.filings")

    filings = _topic(lay, "cqo_130921", "cqo-130921", "cqo.filings")
    assert can(filings.write, "filing.130921.appointment")
    for key in ("filing.130922.appointment", "filing.130921", "filing.130921.a.b", "filing.*.x"):
        assert not can(filings.write, key), key
    events = _topic(lay, "cqo_130921", "cqo-130921", "cqo.events")
    assert can(events.write, "filing.130921.returned")
    assert not can(events.write, "register.filing.decided")
    decisions = _topic(lay, "cqo_130921", "cqo-130921", "cqo.decisions")
    assert (can(decisions.read, "decision.130921"), can(decisions.read, "decision.#")) == (True, False)
    notices = _topic(lay, "cqo_130921", "cqo-130921", "cqo.notices")
    assert can(notices.read, "notice.all") and not can(notices.read, "notice.130922")


def test_the_city_never_publishes_filings_nor_touches_the_staging_queues():
    lay = _layout()
    p = _permission(lay, "cqo_city", "cqo-city")
    for pattern in (p.configure, p.write, p.read):
        assert re.match(pattern, "registry.intake") and re.match(pattern, "cqo.decisions")
        assert not re.match(pattern, "shovel.130921.decisions")
    assert _topic(lay, "cqo_city", "cqo-city", "cqo.filings").write == sites.NOTHING
    events = _topic(lay, "cqo_city", "cqo-city", "cqo.events")
    assert re.match(events.write, "register.filing.decided")
    assert not re.match(events.write, "filing.130921.returned")


def test_shovels_run_at_their_source_with_the_shovel_users_uri():
    lay = _layout(amqp_address="broker:5672")
    by_name = {s.name: s for s in lay.shovels}
    assert len(by_name) == 8
    up, down = by_name["cqo-filings-130921"], by_name["cqo-decisions-130921"]
    assert (up.vhost, up.direction, down.vhost, down.direction) == (
        "cqo-130921", "up", "cqo-city", "down")
    assert up.value["src-uri"] == "amqp://cqo_shovel:s3cret-pw@broker:5672/cqo-130921"
    assert up.value["dest-uri"] == "amqp://cqo_shovel:s3cret-pw@broker:5672/cqo-city"
    # the shovel user may read the queues it drains and write where it delivers, only
    p = _permission(lay, "cqo_shovel", "cqo-130921")
    assert re.match(p.read, "shovel.130921.filings") and not re.match(p.read, "filing.130921.decisions")
    assert re.match(p.write, "cqo.decisions") and not re.match(p.write, "cqo.filings")
    down_topic = _topic(lay, "cqo_shovel", "cqo-130921", "cqo.decisions")
    assert re.match(down_topic.write, "decision.130921") and not re.match(down_topic.write, "decision.130922")


def test_plan_and_export_redact_the_passwords():
    lay = _layout().redacted()
    text = repr(lay)
    assert "s3cret-pw" not in text
    assert lay.shovels[0].value["src-uri"] == "amqp://cqo_shovel:******@127.0.0.1:5672/cqo-130921"
    assert "s3cret-pw" not in repr(sites.layout(COUNTIES).shovels)  # no passwords given
    document = sites.definitions(lay, PASSWORDS)
    assert not any(p in repr(document) for p in PASSWORDS.values())
    (shovel_user,) = [u for u in document["users"] if u["name"] == "cqo_shovel"]
    assert shovel_user["tags"] == "impersonator"
    assert sites.password_matches("s3cret-pw", shovel_user["password_hash"])
    assert not sites.password_matches("other", shovel_user["password_hash"])
    assert set(document) == {"vhosts", "users", "permissions", "topic_permissions", "exchanges",
                             "queues", "bindings", "policies", "parameters"}


def test_passwords_in_uris_are_redacted_anywhere_in_a_text():
    text = "Validation failed: bad src-uri amqp://u:p%40ss@h:5672/v and 'amqps://x:y@z/'"
    assert sites.redact_uri(text) == ("Validation failed: bad src-uri amqp://u:******@h:5672/v "
                                      "and 'amqps://x:******@z/'")
    assert sites.redact_uri("amqp://h:5672/v") == "amqp://h:5672/v"


def test_password_hash_is_rabbitmqs():
    # RabbitMQ's documented example: salt 908D C60A, password "test12"
    assert sites.password_hash("test12", bytes.fromhex("908DC60A")) == \
        "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"


def test_every_county_of_the_jurisdiction_by_default():
    known = jurisdiction().filing_counties()
    lay = sites.layout(known, known_counties=known)
    assert len(lay.vhosts) == len(known) + 1 == 20
    assert len(lay.shovels) == 4 * len(known)


@pytest.mark.parametrize("counties, names, message", [
    (["999999"], sites.Names(), "不是本辖区"),
    (["1309.21"], sites.Names(), "路由键"),
    ([], sites.Names(), "至少需要一个县区"),
    (COUNTIES, sites.Names(prefix="Bad-Prefix"), "前缀"),
    (COUNTIES, sites.Names(city="shovel"), "shovel"),
])
def test_bad_layouts_are_refused_in_chinese(counties, names, message):
    with pytest.raises(sites.LayoutError) as caught:
        sites.layout(counties, names=names, known_counties=jurisdiction().filing_counties())
    assert message in caught.value.message


def test_the_city_site_is_not_a_county():
    with pytest.raises(sites.LayoutError) as caught:
        sites.layout(["city", "130921"])
    assert "重复" in caught.value.message


def test_missing_passwords_for_export():
    with pytest.raises(sites.LayoutError, match="no password"):
        sites.definitions(_layout(), {"cqo_city": "x"})
