"""The notify service's settings, read and checked when its container starts: a bad
value stops the start with a message naming the setting (shared.config.SettingError).

SMTP: SMTP_HOST (empty: e-mail off, deliveries stay pending), SMTP_PORT, SMTP_SECURITY
(none | starttls | tls), SMTP_USER / SMTP_PASSWORD (a value or @/path), SMTP_FROM,
SMTP_TIMEOUT_S. SMS: SMS_GATEWAY_URL (empty: SMS off), SMS_APP_KEY (sent as a bearer
token), SMS_SIGN_NAME, SMS_TEMPLATES (event type -> registered template code: JSON,
@file or a mapping in config.yaml; empty: config.yaml's SMS_DEFAULT_TEMPLATES; a key that
is no event type stops the start), SMS_TIMEOUT_S, SMS_QUIET_HOURS (default 22:00-08:00,
Asia/Shanghai; `off` for none). Retries: RETRY_BASE_S, RETRY_MAX_S,
RETRY_MAX_ATTEMPTS. The timer: DELIVERY_INTERVAL_S, DELIVERY_BATCH, DELIVERY_CONNECTIONS
(SMTP connections, each reused, and gateway sessions used at once; default 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from shared.config import invalid_setting, structured
from shared.contracts import events
from services.notify.domain.schedule import Backoff, QuietHours, parse_window

SECURITIES = ("none", "starttls", "tls")


def _secret(value) -> str | None:
    if value and str(value).startswith("@"):
        return Path(str(value)[1:]).read_text(encoding="utf-8").strip()
    return str(value) if value not in (None, "") else None


def _number(config: Mapping, key: str, default: float, low: float, high: float) -> float:
    raw = config.get(key)
    try:
        value = float(default if raw in (None, "") else raw)
    except (TypeError, ValueError):
        raise invalid_setting(key, f"应为数字，而不是 {raw!r}", f"expected a number, not {raw!r}") from None
    if not low <= value <= high:
        raise invalid_setting(key, f"应在{low}到{high}之间", f"must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 25
    security: str = "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "noreply@localhost"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class SmsSettings:
    url: str | None
    app_key: str | None = field(default=None, repr=False)
    sign_name: str = "沧州市场监管"
    templates: dict = field(default_factory=dict)  # event type -> template code
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Settings:
    smtp: SmtpSettings
    sms: SmsSettings
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    backoff: Backoff = field(default_factory=Backoff)
    interval_s: float = 5.0
    batch: int = 100
    connections: int = 4

    @classmethod
    def from_config(cls, config: Mapping) -> "Settings":
        security = str(config.get("SMTP_SECURITY") or "none").lower()
        if security not in SECURITIES:
            raise invalid_setting("SMTP_SECURITY", "应为 none、starttls 或 tls",
                                  "must be none, starttls or tls")
        default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        smtp = SmtpSettings(
            host=str(config.get("SMTP_HOST") or "").strip() or None,
            port=int(_number(config, "SMTP_PORT", default_port, 1, 65535)), security=security,
            user=_secret(config.get("SMTP_USER")), password=_secret(config.get("SMTP_PASSWORD")),
            sender=str(config.get("SMTP_FROM") or "noreply@localhost"),
            timeout_s=_number(config, "SMTP_TIMEOUT_S", 30, 0.1, 600))

        def templates(raw):
            raw = raw or {}
            if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
                raise ValueError("应为“事件类型: 模板编号”的映射", "expected a mapping of event type to template code")
            # a mistyped type (or a routing key such as filing.130921.returned) would
            # skip its SMS in silence
            unknown = sorted(str(k) for k in raw if k not in events.TYPES)
            if unknown:
                raise ValueError(f"未定义的事件类型：{'、'.join(unknown)}", f"unknown event types: {', '.join(unknown)}")
            return {str(k): v for k, v in raw.items()}

        sms = SmsSettings(
            url=str(config.get("SMS_GATEWAY_URL") or "").strip() or None,
            app_key=_secret(config.get("SMS_APP_KEY")),
            sign_name=str(config.get("SMS_SIGN_NAME") or "沧州市场监管"),
            templates=structured(config, "SMS_TEMPLATES", templates,
                                 default=structured(config, "SMS_DEFAULT_TEMPLATES", templates, default={})),
            timeout_s=_number(config, "SMS_TIMEOUT_S", 10, 0.1, 120))
        quiet = config.get("SMS_QUIET_HOURS")
        quiet = "off" if quiet is False else quiet  # YAML reads a plain `off` as false
        try:
            quiet_hours = parse_window("22:00-08:00" if quiet in (None, "") else str(quiet),
                                       str(config.get("SMS_QUIET_TZ") or "Asia/Shanghai"))
        except (ValueError, KeyError):
            raise invalid_setting("SMS_QUIET_HOURS", "应形如 22:00-08:00，或 off",
                                  "must look like 22:00-08:00, or off") from None
        backoff = Backoff(base_s=_number(config, "RETRY_BASE_S", 30, 0.01, 86400),
                          max_s=_number(config, "RETRY_MAX_S", 3600, 0.01, 7 * 86400),
                          max_attempts=int(_number(config, "RETRY_MAX_ATTEMPTS", 10, 1, 1000)))
        return cls(smtp=smtp, sms=sms, quiet_hours=quiet_hours, backoff=backoff,
                   interval_s=_number(config, "DELIVERY_INTERVAL_S", 5, 0.05, 3600),
                   batch=int(_number(config, "DELIVERY_BATCH", 100, 1, 10000)),
                   connections=int(_number(config, "DELIVERY_CONNECTIONS", 4, 1, 64)))
