"""Every variable of README.md's configuration table reaches the services that read it,
through their config.yaml as shared.config loads it; structured settings are JSON text
or @file, and a bad value names its setting (and the service does not start)."""
from __future__ import annotations

import json
import logging
import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from services.filing.settings import progress_interval
from services.registry import active_cqo
from services.registry import trust
from services.registry.service import check_settings, counties_on_this_broker, waiting_timeout
from services.registry.oversight.terms import OversightSettings
from services.talent.experiences.attachments import Limits
from services.notify.settings import Settings as NotifySettings
from shared.config import SettingError, structured
from shared.domain.qualification import RuleSet, rules_from_config
from cqo.service_support import load_service_config

README = Path(__file__).resolve().parents[2] / "README.md"
ALL = ("registry", "filing", "talent", "notify")


def documented_variables() -> list[str]:
    """The variable names of the table under README's `## Configuration`."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names += re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell)
    return names


def notify(config):
    return NotifySettings.from_config(config)


def key(name):
    return lambda config: config.get(name)


# variable -> (services that read it, value set, how the service reads it, expected, other env)
READERS = {
    "AMQP_URI": (ALL, "amqp://cqo:pw@mq.example:5672/cqo", key("AMQP_URI"), None),
    "WEB_SERVER_ADDRESS": (ALL, "0.0.0.0:9123", key("WEB_SERVER_ADDRESS"), None),
    "DATABASE_URL": (ALL, "postgresql://cqo@db.example:5432/cqo", key("DATABASE_URL"), None),
    "DATABASE_SCHEMA": (ALL, "instance_7", key("DATABASE_SCHEMA"), None),
    "DATABASE_POOL_SIZE": (ALL, "7", key("DATABASE_POOL_SIZE"), 7),
    "MAX_WORKERS": (ALL, "3", key("max_workers"), 3),
    "INTAKE_PREFETCH": (("registry",), "5", key("INTAKE_PREFETCH"), 5),
    "COUNTY_CODE": (("filing",), "130922", key("COUNTY_CODE"), None),
    "LOG_LEVEL": (ALL, "DEBUG", lambda c: c["LOGGING"]["root"]["level"], None),
    "LOG_FORMAT": (ALL, "plain", lambda c: c["LOGGING"]["formatters"]["default"]["style"], None),
    "CQO_AUTH_SECRET": (ALL, "s3cret-" * 6, key("AUTH_SECRET"), None),
    "ID_HMAC_KEY": (ALL, "hmac-key-from-env", key("ID_HMAC_KEY"), None),
    "ID_ENCRYPTION_KEYS": (ALL, "k1,k2", key("ID_ENCRYPTION_KEYS"), None),
    "CITY_PUBLIC_KEY": (("filing",), "@/run/secrets/city_public_key", key("CITY_PUBLIC_KEY"), None),
    "CITY_PRIVATE_KEY": (("registry",), "@/run/secrets/city_private_key", key("CITY_PRIVATE_KEY"), None),
    "DEV_KEYS_DIR": (ALL, "/srv/cqo/keys", key("DEV_KEYS_DIR"), None),
    "CQO_START_WAIT_S": (ALL, "7", key("START_WAIT_S"), 7),
    "METRICS_MANAGEMENT_URL": (ALL, "http://monitor:pw@mq.example:15672", key("METRICS_MANAGEMENT_URL"), None),
    "BATCH_CHUNK_SIZE": (("filing",), "250", key("BATCH_CHUNK_SIZE"), 250),
    "WAITING_TIMEOUT_HOURS": (("registry",), "36", waiting_timeout, timedelta(hours=36)),
    "JURISDICTION_CSV": (("filing", "registry"), "/srv/cqo/divisions.csv", key("JURISDICTION_CSV"), None),
    "QUALIFICATION_RULES": (("filing", "registry"), '{"min_years": 5, "severities": {"QUAL_TRAINING": "blocking"}}',
                            lambda c: (rules_from_config(c).min_years,
                                       rules_from_config(c).severities["QUAL_TRAINING"]), (5, "blocking")),
    "BROKER_TRUST": (("registry",), "per-county", trust.mode_of, None),
    "COUNTY_BROKER_USERS": (("registry",), '{"cqo_130922": "130922"}',
                            lambda c: dict(trust.from_config(c).county_of_user), {"cqo_130922": "130922"},
                            {"BROKER_TRUST": "per-county"}),
    "PROGRESS_INTERVAL_S": (("filing",), "2.5", progress_interval, 2.5),
    "TERM_CHECK_INTERVAL_S": (("registry",), "60", lambda c: OversightSettings.from_config(c).check_interval_s, 60),
    "TERM_REMINDER_DAYS": (("registry",), "60,7", lambda c: OversightSettings.from_config(c).reminder_days, (60, 7)),
    "RECOMMENDATION_RESPONSE_DAYS": (("registry",), "45",
                                     lambda c: OversightSettings.from_config(c).response_days, 45),
    "LAPSED_COUNTS_AS_COVERAGE": (("registry",), "true", active_cqo.policy_from_config, True),
    "TALENT_TIMEOUT": (("registry",), "2.5", key("TALENT_TIMEOUT"), 2.5),
    "TRAINING_MAX_UPLOAD_BYTES": (("talent",), "1048576", key("TRAINING_MAX_UPLOAD_BYTES"), 1048576),
    "POOL_BACKFILL": (("talent",), "false", key("POOL_BACKFILL"), False),
    "RPC_TIMEOUT_S": (("talent",), "12", key("RPC_TIMEOUT_S"), 12),
    "EXPERTISE_CSV": (("talent",), "/srv/cqo/expertise.csv", key("EXPERTISE_CSV"), None),
    "EXPERIENCE_ATTACHMENT_MAX_BYTES": (("talent",), "1048576", lambda c: Limits.from_config(c).max_bytes,
                                        1048576),
    "EXPERIENCE_ATTACHMENT_MAX_COUNT": (("talent",), "3", lambda c: Limits.from_config(c).max_count, 3),
    "SMTP_HOST": (("notify",), "smtp.example", lambda c: notify(c).smtp.host, None),
    "SMTP_PORT": (("notify",), "2525", lambda c: notify(c).smtp.port, 2525),
    "SMTP_SECURITY": (("notify",), "starttls", lambda c: notify(c).smtp.security, None),
    "SMTP_USER": (("notify",), "cqo-mailer", lambda c: notify(c).smtp.user, None),
    "SMTP_PASSWORD": (("notify",), "mail-pass", lambda c: notify(c).smtp.password, None),
    "SMTP_FROM": (("notify",), "cqo@scjg.example", lambda c: notify(c).smtp.sender, None),
    "SMTP_TIMEOUT_S": (("notify",), "12", lambda c: notify(c).smtp.timeout_s, 12),
    "SMS_GATEWAY_URL": (("notify",), "https://sms.example/send", lambda c: notify(c).sms.url, None),
    "SMS_APP_KEY": (("notify",), "app-key", lambda c: notify(c).sms.app_key, None),
    "SMS_SIGN_NAME": (("notify",), "沧州质量", lambda c: notify(c).sms.sign_name, None),
    "SMS_TEMPLATES": (("notify",), '{"register.filing.decided": "SMS_1001"}', lambda c: notify(c).sms.templates,
                      {"register.filing.decided": "SMS_1001"}),
    "SMS_TIMEOUT_S": (("notify",), "4", lambda c: notify(c).sms.timeout_s, 4),
    "SMS_QUIET_HOURS": (("notify",), "21:30-07:30",
                        lambda c: (notify(c).quiet_hours.start, notify(c).quiet_hours.end), (time(21, 30), time(7, 30))),
    "RETRY_BASE_S": (("notify",), "15", lambda c: notify(c).backoff.base_s, 15),
    "RETRY_MAX_S": (("notify",), "900", lambda c: notify(c).backoff.max_s, 900),
    "RETRY_MAX_ATTEMPTS": (("notify",), "6", lambda c: notify(c).backoff.max_attempts, 6),
    "DELIVERY_INTERVAL_S": (("notify",), "2", lambda c: notify(c).interval_s, 2),
    "DELIVERY_BATCH": (("notify",), "50", lambda c: notify(c).batch, 50),
    "DELIVERY_CONNECTIONS": (("notify",), "2", lambda c: notify(c).connections, 2),
}


def test_the_readme_table_is_read():
    assert {"WAITING_TIMEOUT_HOURS", "QUALIFICATION_RULES", "COUNTY_BROKER_USERS",
            "BROKER_TRUST", "CITY_PRIVATE_KEY", "TERM_REMINDER_DAYS"} <= set(documented_variables())


@pytest.mark.parametrize("variable", documented_variables())
def test_every_documented_variable_reaches_its_services(variable):
    assert variable in READERS, (
        f"README documents {variable} but no service is declared to read it: add it to the "
        "reading services' config.yaml and to READERS here")
    services, value, read, expected, *extra = READERS[variable]
    expected = value if expected is None else expected
    env = {**(extra[0] if extra else {}), variable: value}
    for service in services:
        configured = load_service_config(service, environ=env)
        assert read(configured) == expected, f"{variable} does not reach {service}"
        default = load_service_config(service, environ={k: v for k, v in env.items() if k != variable})
        try:
            unset = read(default)
        except SettingError:
            unset = None  # e.g. the map alone: per-county without it does not start
        assert unset != expected, f"{variable}: the value under test is the default of {service}"


# -- structured values ------------------------------------------------------------------

RULES = {"min_years": 4, "accepted_education": ["master", "doctor"]}


@pytest.mark.parametrize("form", ["json", "json-file", "yaml-file", "yaml-in-config"])
def test_qualification_rules_from_json_or_a_file(form, tmp_path):
    if form == "json":
        value = json.dumps(RULES)
    elif form == "json-file":
        (tmp_path / "rules.json").write_text(json.dumps(RULES), encoding="utf-8")
        value = f"@{tmp_path / 'rules.json'}"
    elif form == "yaml-file":
        (tmp_path / "rules.yaml").write_text(
            "min_years: 4\naccepted_education:\n  - master\n  - doctor\n", encoding="utf-8")
        value = f"@{tmp_path / 'rules.yaml'}"
    else:
        value = RULES  # a mapping written in a --config file
    for service in ("filing", "registry"):
        config = load_service_config(service, environ={}, overrides={"QUALIFICATION_RULES": value}) \
            if form == "yaml-in-config" else \
            load_service_config(service, environ={"QUALIFICATION_RULES": value})
        assert rules_from_config(config) == RuleSet(min_years=4, accepted_education=("master", "doctor"))


def test_empty_rules_are_the_defaults():
    assert rules_from_config(load_service_config("filing", environ={})) == RuleSet()
    assert rules_from_config(load_service_config("registry", environ={})) == RuleSet()


def test_broker_users_from_a_yaml_file_keep_county_codes(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("cqo_130921: 130921\ncqo_130922: '130922'\n", encoding="utf-8")
    config = load_service_config("registry", environ={
        "BROKER_TRUST": "per-county", "COUNTY_BROKER_USERS": f"@{path}"})
    assert trust.from_config(config) == trust.BrokerTrust(
        "per-county", {"cqo_130921": "130921", "cqo_130922": "130922"})
    assert counties_on_this_broker(config) == []


BAD = [
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"min_years": 5'}, "JSON"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"min_year": 5}'}, "min_year"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"accepted_titles": "senior"}'}, "accepted_titles"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"accepted_titles": ["professor"]}'}, "professor"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"severities": {"QUAL_YEAR": "warning"}}'}, "QUAL_YEAR"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": '{"min_years": "three"}'}, "min_years"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": "[3]"}, "mapping"),
    ("QUALIFICATION_RULES", {"QUALIFICATION_RULES": "@/nonexistent/rules.yaml"}, "/nonexistent/rules.yaml"),
    ("BROKER_TRUST", {"BROKER_TRUST": "per_county"}, "per_county"),
    ("COUNTY_BROKER_USERS", {"BROKER_TRUST": "per-county"}, "per-county"),
    ("COUNTY_BROKER_USERS", {"BROKER_TRUST": "per-county", "COUNTY_BROKER_USERS": "{}"}, "per-county"),
    ("COUNTY_BROKER_USERS", {"COUNTY_BROKER_USERS": '{"cqo_130921": "130921"}'}, "shared"),
    ("COUNTY_BROKER_USERS", {"BROKER_TRUST": "per-county", "COUNTY_BROKER_USERS": '{"u": "999999"}'},
     "999999"),
    ("COUNTY_BROKER_USERS", {"BROKER_TRUST": "per-county", "COUNTY_BROKER_USERS": "cqo_130921=130921"},
     "JSON"),
    ("WAITING_TIMEOUT_HOURS", {"WAITING_TIMEOUT_HOURS": "one week"}, "one week"),
    ("WAITING_TIMEOUT_HOURS", {"WAITING_TIMEOUT_HOURS": "0"}, "positive"),
]


@pytest.mark.parametrize("setting,env,detail", BAD, ids=[f"{s}:{d}" for s, _, d in BAD])
def test_a_bad_setting_stops_the_start_and_names_itself(setting, env, detail, caplog):
    services = ("filing", "registry") if setting == "QUALIFICATION_RULES" else ("registry",)
    for service in services:
        config = load_service_config(service, environ=env)
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(SettingError) as raised:
            check_settings(config) if service == "registry" else rules_from_config(config)
        message = str(raised.value)
        assert raised.value.key == setting
        assert message.startswith(f"配置项 {setting} 无效：") and f"invalid setting {setting}:" in message
        assert detail in message
        english = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert english and english[-1].startswith(f"invalid setting {setting}: ")
        assert "will not start" in english[-1]
        assert not re.search(r"[\u4e00-\u9fff]", english[-1].split(": ", 1)[0])


def test_structured_rejects_a_scalar():
    with pytest.raises(SettingError, match="COUNTY_BROKER_USERS"):
        structured({"COUNTY_BROKER_USERS": 5}, "COUNTY_BROKER_USERS")


# -- the one trust check ----------------------------------------------------------------

PER_COUNTY = trust.BrokerTrust("per-county", {"cqo_130921": "130921"})


@pytest.mark.parametrize("user,routing_key,claimed,refused", [
    ("cqo_130921", "filing.130921.change", {"130921"}, False),
    ("cqo_130921", "filing.130921.batch", {"130921"}, False),
    ("cqo_130921", "filing.130922.change", {"130922"}, True),     # forged: route and body
    ("cqo_130921", "filing.130922.change", {"130921"}, True),     # route only
    ("cqo_130921", "filing.130921.batch", {"130921", "130922"}, True),  # one filing of a batch
    ("cqo_130922", "filing.130922.change", {"130922"}, True),     # user not mapped
    (None, "filing.130921.change", {"130921"}, True),              # no validated user
    ("cqo_130921", "filing.x", {"130921"}, True),                  # no county in the route
])
def test_per_county_refusal(user, routing_key, claimed, refused):
    reason = PER_COUNTY.refusal(user, routing_key, claimed)
    assert (reason is not None) == refused
    assert trust.BrokerTrust().refusal(user, routing_key, claimed) is None  # shared: all trusted


def test_claimed_counties_of_a_batch_and_a_snapshot():
    batch = {"county": "130921", "filings": [{"county": "130921"}, {"county": 130922}, "junk", {}]}
    assert trust.claimed_counties(batch) == {"130921", "130922"}
    assert trust.claimed_counties({"type": "campaign.progress", "county": "130923"}) == {"130923"}
    assert trust.claimed_counties(["not", "an", "object"]) == set()
