"""The register's domain events on cqo.events (docs/events.md), on the real broker,
SQLite and PostgreSQL: what the talent service's queue receives, checked against the
contract, with no ID number in clear."""
from __future__ import annotations

import json
import time
from datetime import date

import pytest

from services.registry.oversight import terms
from shared.contracts import events
from tests.integration.filing_support import Probe, body_text
from tests.integration.oversight_support import establish, post

pytestmark = pytest.mark.integration

INCIDENT = {"incident": "发生批次性产品质量安全事件", "incident_on": "2026-10-08",
            "reason": "首席质量官未履行质量安全一票否决职责（第十条）"}


class Events:
    """Everything published on cqo.events (a probe queue bound to #), loaded with the
    contract: a body that does not match it fails the test."""

    def __init__(self, amqp_uri: str):
        self.probe = Probe(amqp_uri, "cqo.events", "#")
        self.seen: list[tuple[dict, dict, dict]] = []  # (envelope, data, properties)

    def wait(self, predicate, timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.probe.get_all():
                raw = body_text(message)
                body = json.loads(raw)
                received = events.load_all(body)  # one event, or a batch of one type
                for envelope, data in received:
                    assert message.delivery_info["routing_key"] == envelope["type"]
                    self.seen.append((envelope, data, raw))
                if "events" not in body:
                    assert message.properties.get("message_id") == received[0][0]["event_id"]
            if predicate(self.seen):
                return self.seen
            if time.monotonic() > deadline:
                raise AssertionError(f"events: condition not met; got {self.types()}")
            time.sleep(0.05)

    def types(self) -> list[str]:
        return [e["type"] for e, _, _ in self.seen]

    def of(self, event_type: str) -> list[tuple[dict, dict]]:
        return [(e, d) for e, d, _ in self.seen if e["type"] == event_type]

    def close(self) -> None:
        self.probe.close()


@pytest.fixture
def published(amqp_uri):
    probe = Events(amqp_uri)
    yield probe
    probe.close()


def test_an_accepted_filing_and_a_change_announce_appointments_and_decisions(registry, published):
    county, _, _ = registry
    first = establish(county, n=1)
    change = county.filing("130921", n=1, kind="change", person=77, effective_on=date(2026, 3, 1),
                           submitted=date(2026, 3, 2), cqo_overrides={"name": "新质量官"})
    county.publish(change)
    assert county.decision_of(change)["outcome"] == "accepted"
    published.wait(lambda seen: "register.appointment.ended" in [e["type"] for e, _, _ in seen]
                   and len([e for e, _, _ in seen if e["type"] == "register.filing.decided"]) == 2)

    accepted = published.of("register.appointment.accepted")
    assert len(accepted) == 2
    (env1, old), (env2, new) = accepted
    assert env1["source"] == "registry" and env1["subject"] == {"kind": "appointment",
                                                                "id": str(old["appointment_id"])}
    assert old["uscc"] == first["enterprise"]["uscc"] and old["county"] == "130921"
    assert old["id_hmac"] == first["cqo"]["id_hmac"] and "*" in old["id_masked"]
    assert (old["kind"], new["kind"], new["cqo_name"]) == ("establishment", "change", "新质量官")
    [(_, ended)] = published.of("register.appointment.ended")
    assert ended["appointment_id"] == old["appointment_id"] and ended["ended_on"] == date(2026, 3, 1)
    assert ended["by_filing_id"] == change["filing_id"]
    decided = [d for _, d in published.of("register.filing.decided")]
    assert [(d["filing_id"], d["outcome"]) for d in decided] == [
        (first["filing_id"], "accepted"), (change["filing_id"], "accepted")]
    assert decided[1]["appointment_id"] == new["appointment_id"]
    assert decided[0]["enterprise_name"] == first["enterprise"]["name"]
    # the filing's contact, for the notification service (never more of the person)
    assert (decided[1]["contact_name"], decided[1]["contact_phone"], decided[1]["contact_email"]) == (
        "新质量官", change["cqo"].get("phone"), change["cqo"].get("email"))
    for _, _, raw in published.seen:  # never an ID number, only its keyed hash and mask
        events.refuse_id_numbers(raw)


def test_a_redelivered_filing_announces_nothing_twice(registry, published):
    county, _, _ = registry
    filing = county.filing("130921", n=2)
    county.publish(filing, message_id="same")
    county.publish(filing, message_id="same")
    county.publish(filing, message_id="other")  # the same filing version in a new message
    county.drain(until=lambda d: (filing["filing_id"], 1) in d)
    county.drain(timeout=2.0)
    published.wait(lambda seen: "register.filing.decided" in [e["type"] for e, _, _ in seen])
    time.sleep(1.0)
    published.wait(lambda seen: True)
    assert published.types().count("register.appointment.accepted") == 1
    assert published.types().count("register.filing.decided") == 1


def test_a_lapsed_term_and_a_recommendation_are_announced(registry, published):
    county, base, db = registry
    filing = establish(county, n=3, appointed_on=date(2023, 1, 5))  # term ends 2026-01-05
    uscc = filing["enterprise"]["uscc"]
    terms.check_terms(db, as_of=date(2026, 1, 6))
    rec = post(base, "/api/v1/recommendations", {"uscc": uscc, **INCIDENT},
               role="county_officer", county="130921")
    assert rec.status_code == 201, rec.text
    withdrawn = post(base, f"/api/v1/recommendations/{rec.json()['id']}/withdraw",
                     {"comment": "经核实，建议撤回"}, role="county_officer", county="130921")
    assert withdrawn.status_code == 200, withdrawn.text
    published.wait(lambda seen: "register.recommendation.closed" in [e["type"] for e, _, _ in seen])
    [(_, lapsed)] = published.of("register.appointment.lapsed")
    assert (lapsed["uscc"], lapsed["term_end"], lapsed["lapsed_on"]) == (
        uscc, date(2026, 1, 5), date(2026, 1, 6))
    [(_, issued)] = published.of("register.recommendation.issued")
    assert (issued["uscc"], issued["issuer_role"], issued["issuer_county"]) == (
        uscc, "county_officer", "130921")
    assert issued["id_hmac"] == filing["cqo"]["id_hmac"]
    [(_, closed)] = published.of("register.recommendation.closed")
    assert (closed["recommendation_id"], closed["status"]) == (rec.json()["id"], "withdrawn")
