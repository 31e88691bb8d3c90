"""Yearly campaigns at the registry: opening and closing reach every county (art. 13)."""
import json
import time
import uuid

import pytest
import requests
from kombu import Queue

from shared.messaging import topology
from tests.integration.registry_support import token

pytestmark = pytest.mark.integration

CAMPAIGN = {"year": 2026, "notice_number": "沧市监〔2026〕12号", "title": "2026年度首席质量官集中备案通告",
            "notice_text": "各县（市、区）市场监管局：……", "opens_on": "2026-03-01", "closes_on": "2026-04-30"}


def post(base, path, body=None, role="city_officer", **kw):
    return requests.post(base + path, json=body, timeout=10,
                         headers={"Authorization": token(role, **kw)})


def test_open_list_close_and_notices(registry):
    county, base, _ = registry
    channel = county.connection.channel()
    notices = Queue(f"test.notices.{uuid.uuid4().hex[:6]}", exchange=topology.NOTICES,
                    routing_key="notice.all", durable=False)
    notices(channel).declare()

    created = post(base, "/api/v1/campaigns", CAMPAIGN)
    assert created.status_code == 201 and created.json()["status"] == "open"
    assert post(base, "/api/v1/campaigns", CAMPAIGN).json()["code"] == "CAMPAIGN_EXISTS"
    other = {**CAMPAIGN, "year": 2027}
    assert post(base, "/api/v1/campaigns", other).json()["code"] == "CAMPAIGN_ALREADY_OPEN"
    assert post(base, "/api/v1/campaigns/2026/close").json()["status"] == "closed"
    assert post(base, "/api/v1/campaigns/2026/close").status_code == 409
    listed = requests.get(base + "/api/v1/campaigns", timeout=10,
                          headers={"Authorization": token("county_officer", county="130921")}).json()
    assert [c["year"] for c in listed] == [2026]

    received = []
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        message = notices(channel).get(no_ack=True)
        if message is None:
            time.sleep(0.05)
            continue
        received.append(json.loads(message.body))
    assert [n["type"] for n in received] == ["campaign.opened", "campaign.closed"]
    assert received[0]["campaign"]["notice_number"] == CAMPAIGN["notice_number"]


def test_campaign_input_is_checked_and_scoped(registry):
    _, base, _ = registry
    bad = post(base, "/api/v1/campaigns", {**CAMPAIGN, "closes_on": "2026-01-01"})
    assert bad.status_code == 422 and bad.json()["code"] == "CAMPAIGN_DATES"
    missing = post(base, "/api/v1/campaigns", {"year": "abc"})
    assert missing.status_code == 422 and "title" in missing.json()["errors"]
    assert post(base, "/api/v1/campaigns", CAMPAIGN, role="county_officer",
                county="130921").status_code == 403
    assert requests.post(base + "/api/v1/campaigns", json=CAMPAIGN, timeout=10).status_code == 401
    assert requests.get(base + "/api/v1/campaigns", timeout=10,
                        headers={"Authorization": token("city_officer")}).json() == []
