"""A filing's trace without a broker or database (shared/tracing.py): the shovel's forward
headers read defensively, the two sites' hops merged in time order with the
whole-second shovel time placed inside its second, clock differences reported, and
`cqo trace`'s choice of county service and its incomplete answers."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import typer

from cqo import cli_trace
from shared import tracing
from shared.tracing import Hop, SiteResult

T0 = datetime(2026, 12, 3, 8, 0, 0, 250_000, tzinfo=timezone.utc)
FILING = "filing:f1:v1"
DECISIONS = "decisions:filing:f1:v1:130921"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def county_hops(version=1, start=0.0) -> list[Hop]:
    message = f"filing:f1:v{version}"
    return [Hop("submitted", version, at(start), site="130921"),
            Hop("reviewed", version, at(start + 1), detail="预审通过", site="130921"),
            Hop("outbox_written", version, at(start + 1), message, site="130921"),
            Hop("published", version, at(start + 1.5), message, site="130921")]


def city_hops(shovelled: datetime, version=1, start=1.6) -> list[Hop]:
    message = f"filing:f1:v{version}"
    return [Hop("shovelled", version, shovelled, message, by="cqo-filings-130921@cqo-130921",
                precision_s=1, site="city"),
            Hop("received", version, at(start), message, site="city"),
            Hop("decided", version, at(start + 0.1), detail="备案通过", site="city"),
            Hop("decision_published", version, at(start + 0.2), DECISIONS, site="city")]


def test_forward_headers_of_a_shovelled_delivery():
    headers = {"x-shovelled": [{"shovel-name": "cqo-filings-130921", "shovel-vhost": "cqo-130921",
                                "shovel-type": "dynamic", "src-queue": "shovel.130921.filings"}],
               "x-shovelled-timestamp": int(at(0).timestamp())}
    found = tracing.forwarded(headers)
    assert found.at == at(0).replace(microsecond=0)
    assert found.by == "cqo-filings-130921@cqo-130921"
    # py-amqp may hand table strings over as bytes
    headers["x-shovelled"] = [{"shovel-name": b"cqo-filings-130921"}]
    assert tracing.forwarded(headers).by == "cqo-filings-130921"


@pytest.mark.parametrize("headers", [
    None, {}, "x", {"x-cqo-type": "filing"},
    {"x-shovelled-timestamp": "1733212800"}, {"x-shovelled-timestamp": True},
    {"x-shovelled-timestamp": -5}, {"x-shovelled-timestamp": 10 ** 12},
    {"x-shovelled": "cqo"}, {"x-shovelled": []}, {"x-shovelled": [7]},
])
def test_headers_that_tell_no_shovel_hop(headers):
    assert tracing.forwarded(headers) is None


def test_only_a_timestamp_or_only_a_shovel_is_still_a_hop():
    assert tracing.forwarded({"x-shovelled-timestamp": 1_764_748_800}).by is None
    assert tracing.forwarded({"x-shovelled": [{"shovel-name": "s" * 500}]}).by == "s" * 200


def test_whole_second_shovel_time_is_placed_after_its_publication():
    # published at .750 of second 1; the header says second 1 (truncated): without the
    # placement the shovel hop would sort before the publication
    shovelled = at(1).replace(microsecond=0)
    hops = tracing.order(city_hops(shovelled) + county_hops())
    assert [h.hop for h in hops] == list(tracing.HOPS)[:8]


def test_a_shovel_second_is_never_moved_out_of_its_second():
    # published long before (a shovel was down): the header's own second stands
    shovelled = at(30).replace(microsecond=0)
    hops = tracing.order(county_hops() + city_hops(shovelled, start=30.5))
    assert [h.hop for h in hops][3:6] == ["published", "shovelled", "received"]
    assert tracing.clock_notes(hops) == []


def test_versions_in_turn_and_each_in_time_order():
    v1 = county_hops(1) + city_hops(at(1).replace(microsecond=0))
    v1 += [Hop("decision_applied", 1, at(1.9), DECISIONS, detail="不予备案", site="130921")]
    v2 = county_hops(2, start=100) + city_hops(at(101).replace(microsecond=0), version=2, start=101.6)
    merged = tracing.order(list(reversed(v2)) + v1)
    assert [(h.version, h.hop) for h in merged][:9] == [(1, code) for code in
                                                        list(tracing.HOPS)[:8] + ["decision_applied"]]
    assert [h.version for h in merged[9:]] == [2] * 8


def test_a_waiting_decision_comes_back_before_the_final_one():
    waiting = "decisions:m1:130921"
    hops = [Hop("received", 1, at(0), FILING, site="city"),
            Hop("decision_applied", 1, at(0.5), waiting, detail="等待前序备案", site="130921"),
            Hop("decided", 1, at(10), detail="备案通过", site="city"),
            Hop("decision_published", 1, at(10.1), DECISIONS, site="city"),
            Hop("decision_shovelled", 1, at(10).replace(microsecond=0), DECISIONS, precision_s=1,
                site="130921"),
            Hop("decision_applied", 1, at(10.3), DECISIONS, detail="备案通过", site="130921")]
    merged = tracing.order(reversed(hops))
    assert [h.hop for h in merged] == ["received", "decision_applied", "decided", "decision_published",
                                       "decision_shovelled", "decision_applied"]


def test_a_hop_reported_twice_is_shown_once():
    hops = county_hops()
    assert tracing.order(hops + hops) == tracing.order(hops)


def test_clocks_that_disagree_are_reported():
    # the city's clock 5 s behind: it received the message before the county published it
    hops = county_hops() + [Hop("received", 1, at(-3.5), FILING, site="city")]
    notes = tracing.clock_notes(hops)
    assert len(notes) == 1 and "市局接收" in notes[0] and "报送消息已发布" in notes[0]
    assert "时钟可能不一致" in notes[0]
    # within the shovel's second it is truncation, not a clock difference
    assert tracing.clock_notes(county_hops() + city_hops(at(1).replace(microsecond=0))) == []


def test_a_site_answer_round_trips_through_json():
    body = tracing.answer("f1", site=tracing.COUNTY, county="130921", hops=county_hops())
    assert body["site"] == "county" and body["county"] == "130921"
    assert [h["name"] for h in body["hops"]] == ["县局受理", "县局预审", "报送消息写入发件箱", "报送消息已发布"]
    assert body["hops"][0]["at"] == "2026-12-03T08:00:00.250000+00:00"
    back = tracing.hops_of(json.loads(json.dumps(body)))
    assert back == tracing.order(county_hops())


def test_merge_of_an_incomplete_trace():
    city = SiteResult("city", "http://city", error="市局服务 http://city 无应答（ConnectionError）")
    county = SiteResult("county", "http://county", hops=county_hops(), county="130921", found=True)
    trace = tracing.merge("f1", [city, county])
    assert trace.found and not trace.complete
    assert [h.hop for h in trace.hops] == ["submitted", "reviewed", "outbox_written", "published"]
    nowhere = tracing.merge("f1", [SiteResult("city", "a"), SiteResult("county", "b")])
    assert nowhere.complete and not nowhere.found


def test_which_county_service_is_asked():
    mapped, plain = cli_trace.county_urls(["130921=http://a:8011", "130922=http://b:8012"])
    assert cli_trace.county_candidates("130922", mapped, plain) == ["http://b:8012"]
    # the city does not know the filing (or did not answer): every county given
    assert cli_trace.county_candidates(None, mapped, plain) == ["http://a:8011", "http://b:8012"]
    mapped, plain = cli_trace.county_urls(["http://c:9000", "130921=http://a:8011"])
    assert cli_trace.county_candidates("130922", mapped, plain) == ["http://c:9000"]
    assert cli_trace.county_candidates("130921", mapped, plain) == ["http://a:8011"]
    assert cli_trace.county_candidates(None, {}, None) == [cli_trace.DEFAULT_COUNTY_URL]
    with pytest.raises(typer.BadParameter):
        cli_trace.county_urls(["county=http://x"])
