"""SMS through an HTTP gateway, the way Chinese SMS gateways work: a registered sign name
and template code with parameters (never free text), the delivery id as the gateway's
idempotency key (a resend after a lost answer is not a second SMS at the gateway),
and the gateway's answer kept.

The request: POST <SMS_GATEWAY_URL> JSON {"phone", "sign_name", "template_code",
"params", "out_id"}, headers `Idempotency-Key` and `Authorization: Bearer <SMS_APP_KEY>`.
The answer: 2xx with {"code": "OK", ...} is sent; 2xx with another code, or a 4xx, is a
refusal; 408, 429, 5xx and no connection are retried; a time-out after the request left
is `unknown`."""
from __future__ import annotations

import requests
from requests.exceptions import ConnectionError as RequestsConnectionError, ConnectTimeout, ReadTimeout

from services.notify.channels import FAILED, RETRY, SENT, UNKNOWN, Outcome
from services.notify.settings import SmsSettings

ANSWER_MAX = 1000


def idempotency_key(delivery_id: int) -> str:
    return f"cqo-notify-{delivery_id}"


class SmsChannel:
    def __init__(self, settings: SmsSettings):
        self.settings = settings
        self._session = requests.Session()  # keep-alive across a batch

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

    def template(self, event_type: str) -> str | None:
        return self.settings.templates.get(event_type)

    def close(self) -> None:
        self._session.close()

    def send(self, *, delivery_id: int, phone: str, template_code: str, params: dict) -> Outcome:
        s = self.settings
        headers = {"Idempotency-Key": idempotency_key(delivery_id)}
        if s.app_key:
            headers["Authorization"] = f"Bearer {s.app_key}"
        body = {"phone": phone, "sign_name": s.sign_name, "template_code": template_code,
                "params": params, "out_id": idempotency_key(delivery_id)}
        try:
            resp = self._session.post(s.url, json=body, headers=headers, timeout=s.timeout_s)
        except ConnectTimeout as exc:
            return Outcome(RETRY, f"gateway unreachable: {type(exc).__name__}")
        except ReadTimeout:
            return Outcome(UNKNOWN, f"gateway did not answer within {s.timeout_s}s")
        except RequestsConnectionError as exc:
            # refused or unresolvable: nothing was sent; a reset mid-answer may have been
            text = str(exc)
            before = any(m in text for m in ("NewConnectionError", "NameResolutionError",
                                              "Connection refused"))
            return Outcome(RETRY if before else UNKNOWN, f"gateway connection: {text}"[:500])
        except requests.RequestException as exc:
            return Outcome(UNKNOWN, f"gateway: {type(exc).__name__}: {exc}"[:500])
        answer = f"{resp.status_code} {resp.text}"[:ANSWER_MAX]
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            return Outcome(RETRY, f"gateway answered {resp.status_code}", answer)
        if not 200 <= resp.status_code < 300:
            return Outcome(FAILED, f"gateway refused: {resp.status_code}", answer)
        try:
            code = (resp.json() or {}).get("code")
        except ValueError:
            return Outcome(UNKNOWN, "gateway answer is not JSON", answer)
        if str(code).upper() == "OK":
            return Outcome(SENT, None, answer)
        return Outcome(FAILED, f"gateway refused: {code}", answer)
