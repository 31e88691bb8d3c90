"""A campaign opened while a county's filing service is down reaches that county when it
comes back, and waits for a county whose service has not started yet (art. 13; issue 4), with the services as real processes (cqo.stack.Stack):
the notice waits in the county's durable queue `filing.<county>.notices`, the county
applies it on start, tags its new filings with the campaign, and its progress snapshot
reaches the city."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from shared.clock import today
from tests.e2e.support import (HTTP_TIMEOUT, city, enterprise, filing_form, officer, wait_for)

pytestmark = pytest.mark.e2e

UP, DOWN = "130921", "130922"
NOT_YET = "130923"  # a county of the jurisdiction whose service has never started
YEAR = today().year


def campaign() -> dict:
    return {"year": YEAR, "notice_number": f"沧市监〔{YEAR}〕21号",
            "title": f"{YEAR}年度首席质量官集中备案通告", "notice_text": "各县（市、区）市场监管局：……",
            "opens_on": (today() - timedelta(days=1)).isoformat(),
            "closes_on": (today() + timedelta(days=30)).isoformat()}


def current_campaign(d, county) -> requests.Response:
    return requests.get(d.county_url(county) + "/campaign", headers=officer(county),
                        timeout=HTTP_TIMEOUT)


def test_campaign_opened_while_a_county_is_down_reaches_it_when_it_comes_back(deploy):
    d = deploy(counties=(UP, DOWN), env={"PROGRESS_INTERVAL_S": "1"})
    name = f"filing_{DOWN}"
    assert current_campaign(d, DOWN).status_code == 404
    d.stack.stop([name])
    assert not d.stack.healthy(d.stack.spec(name))

    resp = requests.post(d.registry_url + "/campaigns", json=campaign(), headers=city(),
                         timeout=HTTP_TIMEOUT)
    assert resp.status_code == 201, resp.text
    wait_for(lambda: current_campaign(d, UP).status_code == 200, 30, "campaign at the running county")
    # the notice for the stopped county waits for it in its own durable queue
    queue = f"filing.{DOWN}.notices"
    wait_for(lambda: d.queue_depth(queue) == 1, 30, lambda: f"{queue}: {d.queue_depth(queue)} ready")
    # so does the one for a county that has never started: the registry declared its queue
    later = f"filing.{NOT_YET}.notices"
    wait_for(lambda: d.queue_depth(later) == 1, 30, lambda: f"{later}: {d.queue_depth(later)} ready")

    d.stack.restart(name, wait=90)
    shown = wait_for(lambda: (r := current_campaign(d, DOWN)).status_code == 200 and r.json(), 30,
                     "campaign at the county that was down")
    assert (shown["year"], shown["notice_number"], shown["status"]) == (
        YEAR, campaign()["notice_number"], "open")
    assert d.queue_depth(queue) == 0

    # it takes filings in the campaign, and its counts reach the city
    form = filing_form(DOWN, 1)
    resp = requests.post(d.county_url(DOWN) + "/filings", json=form,
                         headers=enterprise(form["enterprise"]["uscc"]), timeout=HTTP_TIMEOUT)
    assert resp.status_code == 201, resp.text
    assert (resp.json()["channel"], resp.json()["campaign_year"]) == ("campaign", YEAR)

    def reported():
        body = requests.get(f"{d.registry_url}/campaigns/{YEAR}/progress", headers=city(),
                            timeout=HTTP_TIMEOUT).json()
        rows = {r["county"]: r for r in body["counties"]}
        return rows if rows[DOWN]["submitted"] == 1 and rows[UP]["reported_at"] else None

    rows = wait_for(reported, 30, "progress of both counties at the city")
    assert rows[DOWN]["pending"] == 1 and rows[UP]["pending"] == 0
