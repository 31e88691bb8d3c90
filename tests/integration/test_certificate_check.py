"""The art. 6 training certificate verified at the city (issue 10), on the real broker,
SQLite and PostgreSQL: the registry's read model fed by `talent.certificate.*` events on
cqo.events, the check inside the decision without calling talent, and the filings
decided while talent was silent completed when the certificate arrives, without a new
decision to the county."""
from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from kombu import Connection, Producer
from sqlalchemy import func, select

from services.registry.models import AuditEntry, CertificateRecheck, LedgerEntry, TrainingCertificate
from services.registry.register import certificates
from shared import clock
from shared.contracts import events
from shared.domain.qualification import RuleSet
from shared.messaging import topology

pytestmark = pytest.mark.integration

UNVERIFIED = "TRAINING_CERTIFICATE_UNVERIFIED"


class TalentEvents:
    """Certificates announced on cqo.events as talent's outbox relay publishes them."""

    def __init__(self, amqp_uri: str, db):
        self.connection = Connection(amqp_uri)
        self.producer = Producer(self.connection.channel())
        self.db = db

    def issued(self, number: str, filing: dict, *, kind="appointment", passed=True,
               occurred_at: datetime | None = None) -> dict:
        cqo = filing["cqo"]
        return events.build("talent.certificate.issued", number, {
            "certificate_no": number, "course_id": 7, "course_kind": kind, "county": "130921",
            "person_name": cqo["name"], "id_type": cqo["id_type"], "id_hmac": cqo["id_hmac"],
            "id_masked": cqo["id_masked"], "passed": passed, "issued_on": date(2026, 1, 2)},
            source="talent", occurred_at=occurred_at, event_id=f"event:certificate:{number}:issued")

    def publish(self, event: dict, *, wait=True) -> None:
        self.producer.publish(json.dumps(event, ensure_ascii=False).encode(),
                              exchange=topology.EVENTS, routing_key=event["type"],
                              content_type="application/json", content_encoding="utf-8",
                              message_id=event["event_id"], delivery_mode=2)
        if wait:
            self.applied(event)

    def applied(self, event: dict, timeout=15.0) -> None:
        number = event["data"]["certificate_no"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.unit_of_work() as uow:
                row = uow.session.get(TrainingCertificate, number)
                if row is not None and row.last_event_id == event["event_id"]:
                    return
            time.sleep(0.05)
        raise AssertionError(f"event {event['event_id']} not applied by the registry")

    def close(self):
        self.connection.release()


@pytest.fixture
def talent_events(registry, amqp_uri):
    _, _, db = registry
    probe = TalentEvents(amqp_uri, db)
    yield probe
    probe.close()


def number() -> str:
    return f"CZ-RZ-{uuid.uuid4().hex[:10].upper()}"


def filing_with(county, n, certificate, **kw):
    return county.filing(n=n, cqo_overrides={"training_certificate": certificate}, **kw)


def ledger_findings(db, filing) -> list[dict]:
    with db.unit_of_work() as uow:
        row = uow.session.scalars(select(LedgerEntry).where(
            LedgerEntry.filing_id == filing["filing_id"])).one()
        return json.loads(row.findings)


def codes(findings) -> list[str]:
    return [f["code"] for f in findings if f["code"].startswith("TRAINING_CERTIFICATE")]


def certificate_audits(db, filing=None) -> list[dict]:
    with db.unit_of_work() as uow:
        query = select(AuditEntry).where(AuditEntry.action == "filing.certificate_checked")
        if filing is not None:
            query = query.where(AuditEntry.filing_id == filing["filing_id"])
        return [json.loads(a.detail) for a in uow.session.scalars(query.order_by(AuditEntry.id))]


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.05)


def test_an_unknown_certificate_is_unverified_at_the_city_then_unknown_once_talent_has_spoken(
        registry, talent_events):
    county, _, db = registry
    filing = filing_with(county, 1, number())
    county.publish(filing)
    decision = county.decision_of(filing)
    assert decision["outcome"] == "accepted"
    assert codes(decision["findings"]) == [UNVERIFIED]
    [finding] = [f for f in decision["findings"] if f["code"] == UNVERIFIED]
    assert finding["severity"] == "warning" and "暂未核验" in finding["message"]
    assert codes(ledger_findings(db, filing)) == [UNVERIFIED]
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(CertificateRecheck)) == 1

    # talent speaks of other certificates only, long after the grace period: unknown
    later = clock.now_utc() + timedelta(days=15)
    talent_events.publish(talent_events.issued(number(), county.filing(n=2), occurred_at=later))
    with db.unit_of_work() as uow:
        assert certificates.sweep(uow, RuleSet(), clock.now_utc()) == 1
        uow.commit()
    assert codes(ledger_findings(db, filing)) == [UNVERIFIED, "TRAINING_CERTIFICATE_UNKNOWN"]
    assert [a["findings"] for a in certificate_audits(db, filing)] == [["TRAINING_CERTIFICATE_UNKNOWN"]]
    with db.unit_of_work() as uow:  # said once; still waiting in case it turns up
        assert certificates.sweep(uow, RuleSet(), clock.now_utc()) == 0
        uow.commit()
        assert uow.session.scalar(select(func.count()).select_from(CertificateRecheck)) == 1


def test_a_certificate_announced_before_the_filing_gives_no_finding(registry, talent_events):
    county, _, db = registry
    certificate = number()
    filing = filing_with(county, 3, certificate)
    talent_events.publish(talent_events.issued(certificate, filing))
    county.publish(filing)
    decision = county.decision_of(filing)
    assert decision["outcome"] == "accepted" and codes(decision["findings"]) == []
    assert codes(ledger_findings(db, filing)) == []
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(CertificateRecheck)) == 0


def test_another_persons_certificate_is_flagged_with_its_code(registry, talent_events):
    county, _, db = registry
    certificate = number()
    talent_events.publish(talent_events.issued(certificate, county.filing(n=40)))  # person 40's
    filing = filing_with(county, 4, certificate)
    county.publish(filing)
    decision = county.decision_of(filing)
    assert decision["outcome"] == "accepted"  # a warning by default (art. 6 rule set)
    assert codes(decision["findings"]) == ["TRAINING_CERTIFICATE_OTHER_PERSON"]
    assert codes(ledger_findings(db, filing)) == ["TRAINING_CERTIFICATE_OTHER_PERSON"]


def test_a_batch_decided_while_talent_is_silent_is_completed_when_the_certificates_arrive(
        registry, talent_events):
    county, _, db = registry
    numbers = [number() for _ in range(12)]
    filings = [filing_with(county, 100 + i, numbers[i], channel="campaign") for i in range(12)]
    started = time.monotonic()
    county.publish(county.batch(filings))
    decisions = county.drain(until=lambda d: all((f["filing_id"], 1) in d for f in filings))
    decided_in = time.monotonic() - started
    assert decided_in < 15  # decided at once: nothing waits for talent
    assert [d["outcome"] for d in decisions.values()] == ["accepted"] * 12
    assert all(codes(d["findings"]) == [UNVERIFIED] for d in decisions.values())
    messages_before = len(county.messages)

    # talent is back: the certificates arrive (one of them another person's, one failed)
    talent_events.publish(talent_events.issued(numbers[0], county.filing(n=999)))
    talent_events.publish(talent_events.issued(numbers[1], filings[1], passed=False))
    for i in range(2, 12):
        talent_events.publish(talent_events.issued(numbers[i], filings[i]))
    wait_for(lambda: len(certificate_audits(db)) == 12)
    assert codes(ledger_findings(db, filings[0])) == [UNVERIFIED, "TRAINING_CERTIFICATE_OTHER_PERSON"]
    assert codes(ledger_findings(db, filings[1])) == [UNVERIFIED, "TRAINING_CERTIFICATE_NOT_PASSED"]
    for filing in filings[2:]:
        found = ledger_findings(db, filing)
        assert codes(found) == [UNVERIFIED, "TRAINING_CERTIFICATE_VERIFIED"]
        assert found[-1]["added_on"] == clock.today().isoformat()
    assert [a["findings"] for a in certificate_audits(db, filings[0])] == [["TRAINING_CERTIFICATE_OTHER_PERSON"]]
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(CertificateRecheck)) == 0

    # the same event again (a relay's resend), and the same fact as a new event: once
    talent_events.publish(talent_events.issued(numbers[2], filings[2]), wait=False)
    again = talent_events.issued(numbers[3], filings[3])
    again["event_id"] += ":again"
    talent_events.publish(again)
    time.sleep(1.0)
    assert len(certificate_audits(db)) == 12
    assert codes(ledger_findings(db, filings[2])) == [UNVERIFIED, "TRAINING_CERTIFICATE_VERIFIED"]
    assert codes(ledger_findings(db, filings[3])) == [UNVERIFIED, "TRAINING_CERTIFICATE_VERIFIED"]

    # no new decision went to the county; a repeated filing is answered with the decision
    # as made (the note added later is the city's record, not a finding of the decision)
    county.drain(timeout=2.0)
    assert len(county.messages) == messages_before
    county.publish(filings[5])
    county.drain(until=lambda d: len(county.messages) > messages_before)
    [repeated] = county.messages[-1]["decisions"]
    assert codes(repeated["findings"]) == [UNVERIFIED]
    assert any(r["code"] == "DUPLICATE_DELIVERY" for r in repeated["reasons"])


def test_a_revocation_before_its_issue_stays_revoked(registry, talent_events):
    county, _, db = registry
    certificate = number()
    filing = filing_with(county, 5, certificate)
    now = datetime.now(timezone.utc)
    revoked = events.build("talent.certificate.revoked", certificate, {
        "certificate_no": certificate, "id_hmac": filing["cqo"]["id_hmac"], "revoked_on": date(2026, 3, 1),
        "reason": "培训考核舞弊"}, source="talent", occurred_at=now,
        event_id=f"event:certificate:{certificate}:revoked")
    talent_events.publish(revoked)
    issued = talent_events.issued(certificate, filing, occurred_at=now - timedelta(hours=1))
    talent_events.publish(issued, wait=False)
    wait_for(lambda: _certificate(db, certificate).course_kind == "appointment")
    assert _certificate(db, certificate).revoked_on is not None
    county.publish(filing)
    decision = county.decision_of(filing)
    assert codes(decision["findings"]) == ["TRAINING_CERTIFICATE_REVOKED"]
    assert "培训考核舞弊" in decision["findings"][-1]["message"]


def _certificate(db, certificate):
    with db.unit_of_work() as uow:
        row = uow.session.get(TrainingCertificate, certificate)
        uow.session.expunge_all()
        return row
