"""Revoking a training certificate (art. 6, issue 10) on the real broker, SQLite and
PostgreSQL, the talent service and the registry running together: an officer's
revocation (final, idempotent, scoped like the training endpoints) and a correction
from passed to failed each announce `talent.certificate.revoked` through talent's
outbox, and the registry notes TRAINING_CERTIFICATE_REVOKED on the record of the current
appointment that holds the certificate, audited, without a new decision."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from services.registry.models import AuditEntry, TrainingCertificate
from services.talent.training.models import Revocation
from shared.domain.qualification import CERT_REVOKED
from tests.integration.test_certificate_check import codes, ledger_findings, wait_for
from tests.integration.test_training import call, csv_bytes, new_course, person, upload
from tests.support.factories import resident_id_for, uscc_for

pytestmark = pytest.mark.integration

REVOKE = "/api/v1/certificates/revocations"


def number() -> str:
    return f"CZ-RZ-{uuid.uuid4().hex[:10].upper()}"


def attend(base, course_id, n, certificate, *, passed=True, **claims):
    body = {"person_name": f"质量官{n}", "id_type": "resident_id", "id_number": resident_id_for(n),
            "uscc": uscc_for("130921", n), "enterprise_name": f"测试企业{n}有限公司", "passed": passed,
            "certificate_no": certificate, "issued_on": "2026-03-05"}
    return call("POST", base, f"/api/v1/courses/{course_id}/attendance", json=body, **claims)


def certificate_at_registry(db, certificate):
    with db.unit_of_work() as uow:
        row = uow.session.get(TrainingCertificate, certificate)
        uow.session.expunge_all()
        return row


def appointed_with(county, db, n, certificate) -> dict:
    """A filing of person n naming `certificate`, accepted once the registry knows it."""
    wait_for(lambda: certificate_at_registry(db, certificate) is not None)
    filing = county.filing(n=n, cqo_overrides={"training_certificate": certificate})
    county.publish(filing)
    decision = county.decision_of(filing)
    assert decision["outcome"] == "accepted" and codes(decision["findings"]) == []
    return filing


def revocation_audits(db, filing) -> list[dict]:
    with db.unit_of_work() as uow:
        return [json.loads(a.detail) for a in uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "appointment.certificate_revoked",
                                     AuditEntry.filing_id == filing["filing_id"]).order_by(AuditEntry.id))]


def test_an_officer_revokes_a_certificate_and_the_current_appointment_records_it(registry, talent):
    county, _, registry_db = registry
    base, talent_db, _ = talent
    course = new_course(base).json()
    certificate = number()
    assert attend(base, course["id"], 301, certificate).status_code == 201
    filing = appointed_with(county, registry_db, 301, certificate)
    messages_before = len(county.messages)

    revoked = call("POST", base, REVOKE, json={"certificate_no": certificate.lower(), "reason": "培训考核舞弊"})
    assert revoked.status_code == 201, revoked.text
    body = revoked.json()
    assert (body["certificate_no"], body["cause"], body["reason"]) == (certificate, "officer", "培训考核舞弊")
    assert body["course_id"] == course["id"] and body["id_masked"].count("*") == 8
    assert resident_id_for(301) not in revoked.text

    wait_for(lambda: codes(ledger_findings(registry_db, filing)) == [CERT_REVOKED])
    [note] = ledger_findings(registry_db, filing)
    assert "培训考核舞弊" in note["message"] and note["certificate_no"] == certificate and note["added_on"]
    [audit] = revocation_audits(registry_db, filing)
    assert audit["certificate_no"] == certificate and audit["reason"] == "培训考核舞弊"
    assert certificate_at_registry(registry_db, certificate).revoked_on is not None

    # the same request again (another reason): the revocation as recorded, nothing new
    again = call("POST", base, REVOKE, json={"certificate_no": certificate, "reason": "重复提交"})
    assert again.status_code == 200 and again.json() == body
    with talent_db.unit_of_work() as uow:
        assert len(uow.session.scalars(select(Revocation)).all()) == 1
    # final: the number is never taken up again, and no new decision went to the county
    taken = attend(base, course["id"], 302, certificate)
    assert taken.status_code == 409 and taken.json()["code"] == "TRAINING_CERTIFICATE_REVOKED"
    county.drain(timeout=2.0)
    assert len(county.messages) == messages_before
    assert codes(ledger_findings(registry_db, filing)) == [CERT_REVOKED]
    assert len(revocation_audits(registry_db, filing)) == 1


def test_a_correction_from_passed_to_failed_revokes_the_certificate(registry, talent):
    county, _, registry_db = registry
    base, talent_db, _ = talent
    course = new_course(base).json()
    certificates = [number(), number()]
    rows = [person(310, certificate=certificates[0]), person(311, certificate=certificates[1])]
    assert upload(base, course["id"], csv_bytes(rows)).json()["inserted"] == 2
    filing = appointed_with(county, registry_db, 310, certificates[0])

    # the county corrects person 310's result in its file and imports it again
    rows[0] = person(310, certificate=certificates[0], passed="不合格")
    report = upload(base, course["id"], csv_bytes(rows)).json()
    assert (report["updated"], report["unchanged"], report["certificates_revoked"]) == (1, 1, 1)
    again = upload(base, course["id"], csv_bytes(rows)).json()  # nothing more to revoke
    assert (again["unchanged"], again["certificates_revoked"]) == (2, 0)
    with talent_db.unit_of_work() as uow:
        [revocation] = uow.session.scalars(select(Revocation)).all()
        assert (revocation.certificate_no, revocation.cause) == (certificates[0], "result_changed")

    wait_for(lambda: CERT_REVOKED in codes(ledger_findings(registry_db, filing)))
    assert "考核结果更正为不合格" in ledger_findings(registry_db, filing)[-1]["message"]
    assert len(revocation_audits(registry_db, filing)) == 1
    state = certificate_at_registry(registry_db, certificates[0])
    assert state.revoked_on is not None and state.passed is False  # issued (failed), then revoked

    # an HTTP correction does the same for person 311
    corrected = attend(base, course["id"], 311, certificates[1], passed=False)
    assert corrected.status_code == 200 and corrected.json()["result"] == "updated"
    wait_for(lambda: getattr(certificate_at_registry(registry_db, certificates[1]), "revoked_on", None))
    answer = call("POST", base, REVOKE, json={"certificate_no": certificates[1], "reason": "另行撤销"})
    assert answer.status_code == 200 and answer.json()["cause"] == "result_changed"


def test_revocation_errors_and_scope(talent):
    base, _, _ = talent
    city_course = new_course(base).json()
    own = new_course(base, level="county", of="130921", role="county_officer", county="130921").json()
    city_certificate, own_certificate = number(), number()
    assert attend(base, city_course["id"], 320, city_certificate).status_code == 201
    assert attend(base, own["id"], 321, own_certificate, role="county_officer", county="130921").status_code == 201

    for body, status, code in [
            ({"certificate_no": number(), "reason": "舞弊"}, 404, "TRAINING_CERTIFICATE_NOT_FOUND"),
            ({"certificate_no": "CZ 2026", "reason": "舞弊"}, 422, "TRAINING_CERTIFICATE_NO_INVALID"),
            ({"certificate_no": resident_id_for(5), "reason": "舞弊"}, 422, "TRAINING_CERTIFICATE_NO_INVALID"),
            ({"certificate_no": "X" * 65, "reason": "舞弊"}, 422, "TRAINING_CERTIFICATE_NO_INVALID"),
            ({"certificate_no": 12, "reason": "舞弊"}, 422, "TRAINING_CERTIFICATE_NO_INVALID"),
            ({"reason": "舞弊"}, 422, "TRAINING_CERTIFICATE_NO_INVALID"),
            ({"certificate_no": city_certificate, "reason": "  "}, 422, "TRAINING_REVOCATION_REASON_INVALID"),
            ({"certificate_no": city_certificate, "reason": "因" * 201}, 422, "TRAINING_REVOCATION_REASON_INVALID"),
            ({"certificate_no": city_certificate}, 422, "TRAINING_REVOCATION_REASON_INVALID"),
            ({"certificate_no": city_certificate, "reason": f"证件{resident_id_for(320)}"}, 422,
             "TRAINING_REVOCATION_REASON_INVALID")]:
        answer = call("POST", base, REVOKE, json=body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (body, answer.text)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.json()["detail"])
        assert resident_id_for(5) not in answer.text and resident_id_for(320) not in answer.text

    # a county officer: their own county's courses only; an enterprise: never
    refused = call("POST", base, REVOKE, "county_officer", county="130921",
                   json={"certificate_no": city_certificate, "reason": "舞弊"})
    assert refused.status_code == 403
    other = call("POST", base, REVOKE, "county_officer", county="130922",
                 json={"certificate_no": own_certificate, "reason": "舞弊"})
    assert other.status_code == 403
    enterprise = call("POST", base, REVOKE, "enterprise", uscc=uscc_for("130921", 321),
                      json={"certificate_no": own_certificate, "reason": "舞弊"})
    assert enterprise.status_code == 403
    done = call("POST", base, REVOKE, "county_officer", county="130921",
                json={"certificate_no": own_certificate, "reason": "舞弊"})
    assert done.status_code == 201 and done.json()["revoked_by"]
