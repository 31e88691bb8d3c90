"""The notify service's settings: read from config.yaml and the environment, a bad
value names itself and stops the start."""
from datetime import time

import pytest

from shared import config
from shared.config import SettingError
from shared.contracts import events
from services.notify.domain import recipients
from services.notify.settings import Settings
from services.notify.service import build_service

CONFIG = "services/notify/config.yaml"


def test_the_defaults_of_config_yaml():
    s = Settings.from_config(config.load(CONFIG, environ={}))
    assert s.smtp.host is None and s.smtp.port == 25 and s.smtp.security == "none"
    assert s.sms.url is None and s.sms.templates == shipped_templates()
    assert (s.quiet_hours.start, s.quiet_hours.end) == (time(22), time(8))
    assert (s.backoff.base_s, s.backoff.max_s, s.backoff.max_attempts) == (30, 3600, 10)
    assert (s.interval_s, s.batch, s.connections) == (5, 100, 4)


def test_values_from_the_environment(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = Settings.from_config(config.load(CONFIG, environ={
        "SMTP_HOST": "smtp.example.cn", "SMTP_SECURITY": "starttls", "SMTP_PASSWORD": f"@{secret}",
        "SMS_GATEWAY_URL": "https://sms.example.cn/send",
        "SMS_TEMPLATES": '{"register.filing.decided": "SMS_1"}', "SMS_QUIET_HOURS": "off"}))
    assert (s.smtp.port, s.smtp.password) == (587, "s3cret") and "s3cret" not in repr(s)
    assert s.sms.templates == {"register.filing.decided": "SMS_1"}
    assert s.quiet_hours.start == s.quiet_hours.end


@pytest.mark.parametrize("key, value", [("SMTP_SECURITY", "ssl"), ("SMTP_PORT", "x"),
                                        ("SMS_QUIET_HOURS", "夜里"), ("SMS_TEMPLATES", '{"a": 1}'),
                                        ("DELIVERY_CONNECTIONS", "0")])
def test_a_bad_value_stops_the_start_naming_the_setting(key, value):
    with pytest.raises(SettingError) as caught:
        build_service(config.load(CONFIG, environ={key: value}))
    assert caught.value.key == key


def shipped_templates() -> dict:
    return Settings.from_config(config.load(CONFIG, environ={})).sms.templates


def test_every_event_kind_notify_renders_has_an_sms_template_code():
    """config.yaml's codes: one per event type notify renders (each is in
    recipients.TEMPLATES), also those told today by inbox and e-mail only, so that
    giving one an SMS in the plan never skips it as 该事件没有登记短信模板."""
    shipped = shipped_templates()
    assert set(shipped) == set(recipients.TEMPLATES)
    planned = {kind for kind, audiences in recipients.PLAN.items()
               if any(recipients.SMS in channels for _, channels in audiences)}
    assert planned <= set(shipped)
    # the newer events (issue 11) among them
    assert {"register.campaign.opened", "register.campaign.closing", "register.campaign.due",
            "register.filing.late", "register.appointment.expiring", "register.recommendation.unanswered",
            "filing.returned", "talent.draw.invited", "talent.draw.published"} <= set(shipped)
    # keys are event types, never routing keys (filing.<county>.returned); one code each
    assert set(shipped) <= set(events.TYPES)
    assert len(set(shipped.values())) == len(shipped)


@pytest.mark.parametrize("mapping", ['{"filing.130921.returned": "SMS_1"}', '{"register.filing.decide": "SMS_1"}'])
def test_a_template_for_no_event_type_stops_the_start(mapping):
    with pytest.raises(SettingError) as caught:
        Settings.from_config(config.load(CONFIG, environ={"SMS_TEMPLATES": mapping}))
    assert caught.value.key == "SMS_TEMPLATES" and "未定义的事件类型" in str(caught.value)
