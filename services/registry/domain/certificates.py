"""The city's read model of training certificates (art. 6), fed by talent's
`talent.certificate.issued|revoked` events (docs/events.md).

Events may arrive twice or out of order. The newest event by its time wins; an older
one only fills in what the certificate does not know yet: an issue older than a
revocation still counts for the course and the result when it is the newest issue heard
of (a correction to failed is announced, then revoked, in two messages that may be taken
in either order). So a certificate revoked before it was (belatedly) heard of as issued
stays revoked, and one issued again after its revocation (a corrected attendance) is in
force again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Iterable, Mapping

ISSUED = "talent.certificate.issued"
REVOKED = "talent.certificate.revoked"


@dataclass(frozen=True)
class CertificateState:
    certificate_no: str
    id_hmac: str
    course_kind: str | None
    passed: bool | None
    issued_on: date | None
    revoked_on: date | None
    revoked_reason: str | None
    event_at: datetime   # time of the newest event applied
    last_event_id: str
    issue_event_at: datetime | None = None  # the newest issue applied (None: only revoked)
    issue_event_id: str | None = None


def apply(state: CertificateState | None, event_type: str, occurred_at: datetime,
          event_id: str, data: Mapping[str, Any]) -> CertificateState:
    """The certificate after one event (`data` loaded with its contract schema)."""
    newer = state is None or (occurred_at, event_id) > (state.event_at, state.last_event_id)
    if event_type == ISSUED:
        issued = {"course_kind": data["course_kind"], "passed": data["passed"],
                  "issued_on": data.get("issued_on"), "issue_event_at": occurred_at,
                  "issue_event_id": event_id}
        if state is None:
            return CertificateState(data["certificate_no"], data["id_hmac"], revoked_on=None,
                                    revoked_reason=None, event_at=occurred_at,
                                    last_event_id=event_id, **issued)
        if newer:
            return replace(state, id_hmac=data["id_hmac"], revoked_on=None, revoked_reason=None,
                           event_at=occurred_at, last_event_id=event_id, **issued)
        # older than a revocation: its course and result count if no newer issue did
        if state.issue_event_at is None or \
                (occurred_at, event_id) > (state.issue_event_at, state.issue_event_id):
            return replace(state, **issued)
        return state
    if event_type == REVOKED:
        if state is None:
            return CertificateState(data["certificate_no"], data["id_hmac"], course_kind=None,
                                    passed=None, issued_on=None, revoked_on=data["revoked_on"],
                                    revoked_reason=data.get("reason"), event_at=occurred_at,
                                    last_event_id=event_id)
        if newer:
            return replace(state, revoked_on=data["revoked_on"], revoked_reason=data.get("reason"),
                           event_at=occurred_at, last_event_id=event_id)
        return state  # an issue after it already superseded this revocation
    raise ValueError(f"not a certificate event: {event_type}")


def revoked_in_force(state: CertificateState) -> bool:
    """After a revocation was applied: whether the certificate stands revoked (not an old
    revocation that a newer issue already superseded)."""
    return state.revoked_on is not None


def revocation_noted(findings_of_records: Iterable[Iterable[Mapping[str, Any]]], number: str,
                     code: str) -> bool:
    """Whether an appointment's records already say that `number` is revoked: found at
    the decision (the number in its message) or noted since (`certificate_no`). A
    revocation is final, so a second event of it (a relay's resend under another message
    id) notes nothing."""
    said = f"{number}已于"  # how check_certificate's message names the revoked number
    return any(f.get("code") == code and (f.get("certificate_no") == number or said in str(f.get("message")))
               for findings in findings_of_records for f in findings)
