"""Helpers of the terms / recommendations / overdue tests (registry in-process)."""
from __future__ import annotations

import json
import time
from datetime import date

import requests

from tests.integration.filing_support import Probe, body_text
from tests.integration.registry_support import token


def post(base, path, body=None, role="city_officer", **claims):
    return requests.post(base + path, json=body, timeout=15,
                         headers={"Authorization": token(role, **claims)})


def get(base, path, role="city_officer", params=None, **claims):
    return requests.get(base + path, params=params, timeout=15,
                        headers={"Authorization": token(role, **claims)})


def establish(county_side, county="130921", n=1, appointed_on=date(2026, 1, 5), **kw) -> dict:
    """An accepted establishment at the registry; returns the filing message."""
    filing = county_side.filing(county, n=n, appointed_on=appointed_on,
                                submitted=kw.pop("submitted", appointed_on), **kw)
    county_side.publish(filing)
    decision = county_side.decision_of(filing, county=county)
    assert decision["outcome"] == "accepted", decision
    return filing


class Notices:
    """What the registry published on cqo.notices (a probe queue bound to notice.*)."""

    def __init__(self, amqp_uri: str):
        self.probe = Probe(amqp_uri, "cqo.notices", "notice.*")
        self.seen: list[dict] = []

    def _pull(self) -> None:
        for message in self.probe.get_all():
            self.seen.append({"message_id": message.properties.get("message_id"),
                              "routing_key": message.delivery_info["routing_key"],
                              "body": json.loads(body_text(message))})

    def wait(self, predicate, timeout: float = 15.0) -> list[dict]:
        """All notices so far, once `predicate(notices)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            self._pull()
            if predicate(self.seen):
                return self.seen
            if time.monotonic() > deadline:
                raise AssertionError(f"notices: condition not met in {timeout}s; got "
                                     f"{[n['message_id'] for n in self.seen]}")
            time.sleep(0.05)

    def settle(self, seconds: float = 1.0) -> list[dict]:
        """Whatever else arrives within `seconds` (to show nothing more does)."""
        time.sleep(seconds)
        self._pull()
        return self.seen

    def of_type(self, kind: str) -> list[dict]:
        self._pull()
        return [n for n in self.seen if n["body"].get("type") == kind]

    def close(self) -> None:
        self.probe.close()
