"""The notify service's settings: read from config.yaml and the environment, a bad
value names itself and stops the start."""
from datetime import time

import pytest

from shared import config
from shared.config import SettingError
from services.notify.settings import Settings
from services.notify.service import build_service

CONFIG = "services/notify/config.yaml"


def test_the_defaults_of_config_yaml():
    s = Settings.from_config(config.load(CONFIG, environ={}))
    assert s.smtp.host is None and s.smtp.port == 25 and s.smtp.security == "none"
    assert s.sms.url is None and s.sms.templates == {}
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
