"""Use cases: the city's read model of training certificates (art. 6) and the filings
that were decided before their certificate was known.

Deciding never calls the talent service (its RPC has no timeout and intake holds
enterprise row locks): it reads this read model, fed by `talent.certificate.*` on
`registry.events` (docs/events.md). A filed number the read model does not know is
未核验 at the decision (a warning) and the filing waits in `certificate_rechecks`:

- when talent announces the certificate, its result (in order, or what is wrong with
  it) is added to the ledger row's findings with an audit entry;
- when talent revokes a certificate that a CURRENT appointment holds, the appointment's
  newest accepted ledger row gets TRAINING_CERTIFICATE_REVOKED, audited
  (`appointment.certificate_revoked`);
- when it is still unknown `certificate_grace_days` after the decision and the read
  model has heard of a certificate event that happened after that day (talent is up
  and caught up), TRAINING_CERTIFICATE_UNKNOWN is added; the filing stays waiting, so
  a certificate announced even later still completes the record.

The county gets no new decision: what the city learns later is its own record.
"""
from __future__ import annotations

import json
import logging
from typing import Iterable

from sqlalchemy import bindparam, delete, exists, func, select, update

from shared import clock
from shared.contracts import events
from shared.db import UnitOfWork, conflict_insert, insert_rows
from shared.domain.qualification import (CERT_REVOKED, Certificate, RuleSet, certificate_verified,
                                         check_certificate, unknown_certificate)
from shared.errors import CqoError
from services.registry.domain.certificates import (ISSUED, REVOKED, CertificateState, apply, revocation_noted,
                                                   revoked_in_force)
from services.registry.domain.register import ACCEPTED
from services.registry.register.locked_register import (APPOINTMENTS, AUDIT, CERTIFICATES, ENTERPRISES, LEDGER,
                                                        RECHECKS, CertificateLookup)

log = logging.getLogger(__name__)
CONSUMER = "registry.events"
ACTOR = "registry.certificates"
SWEEP_BATCH = 500


class UnexpectedEvent(CqoError):
    """An event on `registry.events` that this consumer does not read (dead-lettered)."""

    code = "EVENT_NOT_EXPECTED"


def receive(uow: UnitOfWork, rules: RuleSet, body) -> list[CertificateState]:
    """`talent.certificate.issued|revoked` events (one, or a batch of an import): the read
    model updated, and the filings waiting for each certificate completed, in the
    caller's unit of work."""
    return [receive_one(uow, rules, envelope, data) for envelope, data in events.load_all(body)]


def receive_one(uow: UnitOfWork, rules: RuleSet, envelope: dict, data: dict) -> CertificateState:
    if envelope["type"] not in (ISSUED, REVOKED):
        raise UnexpectedEvent(f"登记服务不处理事件类型 {envelope['type']}")
    now = clock.now_utc()
    state = record(uow.session, envelope, data, now)
    postgres = uow.session.get_bind().dialect.name == "postgresql"
    query = select(RECHECKS).where(RECHECKS.c.certificate_no == state.certificate_no)
    _complete(uow.session, rules, query.with_for_update() if postgres else query, now,
              event_id=envelope["event_id"])
    if envelope["type"] == REVOKED and revoked_in_force(state):
        _note_revocation(uow.session, rules, state, now, envelope["event_id"])
    log.info("certificate event %s (%s) applied", envelope["event_id"], envelope["type"])
    return state


def record(session, envelope: dict, data: dict, now) -> CertificateState:
    """Apply one event to the read model (idempotent; out-of-order events keep the
    newest: services/registry/domain/certificates.py)."""
    data = {**data, "certificate_no": data["certificate_no"].strip()}
    number, at, event_id = data["certificate_no"], envelope["occurred_at"], envelope["event_id"]
    fresh = apply(None, envelope["type"], at, event_id, data)
    # the first event of a certificate inserts it; a concurrent one waits for that
    # insert on PostgreSQL, then finds the row and updates it under its lock
    inserted = session.execute(conflict_insert(session)(CERTIFICATES).values(
        **_columns(fresh), updated_at=now).on_conflict_do_nothing(
        index_elements=["certificate_no"])).rowcount
    if inserted:
        return fresh
    query = select(CERTIFICATES).where(CERTIFICATES.c.certificate_no == number)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query).one()
    known = CertificateState(**{k: v for k, v in row._mapping.items() if k != "updated_at"})
    state = apply(known, envelope["type"], at, event_id, data)
    if state != known:
        session.execute(update(CERTIFICATES).where(CERTIFICATES.c.certificate_no == number)
                        .values(**_columns(state), updated_at=now))
    return state


def sweep(uow: UnitOfWork, rules: RuleSet, now, limit: int = SWEEP_BATCH) -> int:
    """The timer's pass over the waiting filings; returns how many it completed (call
    again while it returns `limit`). Completes those whose certificate is known by now
    (one decided while its certificate's event was being applied), and says unknown
    what is past its grace period while talent has been heard from since."""
    session = uow.session
    postgres = session.get_bind().dialect.name == "postgresql"
    known = exists().where(CERTIFICATES.c.certificate_no == RECHECKS.c.certificate_no)
    query = select(RECHECKS).where(known).order_by(RECHECKS.c.due_at).limit(limit)
    done = _complete(session, rules, query.with_for_update(skip_locked=True) if postgres else query, now)
    if done >= limit:
        return done
    heard_until = session.scalar(select(func.max(CERTIFICATES.c.event_at)))
    if heard_until is None:
        return done  # talent has not been heard from at all: nothing is unknown yet
    query = (select(RECHECKS).where(RECHECKS.c.unknown_added.is_(False),
                                    RECHECKS.c.due_at <= heard_until, ~known)
             .order_by(RECHECKS.c.due_at).limit(limit - done))
    overdue = session.execute(query.with_for_update(skip_locked=True) if postgres else query).all()
    if overdue:
        _add_to_record(session, [(r, [unknown_certificate(r.certificate_no, rules)]) for r in overdue],
                       now, {"grace_days": rules.certificate_grace_days})
        session.execute(update(RECHECKS).where(RECHECKS.c.filing_id == bindparam("_f"),
                                               RECHECKS.c.version == bindparam("_v"))
                        .values(unknown_added=True),
                        [{"_f": r.filing_id, "_v": r.version} for r in overdue])
    return done + len(overdue)


def _complete(session, rules: RuleSet, query, now, event_id: str | None = None) -> int:
    """Add the certificate's result to the record of each waiting filing `query` selects
    whose certificate is known, and stop waiting for it."""
    waiting = session.execute(query).all()
    lookup = CertificateLookup(session)
    lookup.load(r.certificate_no for r in waiting)
    results = []
    for r in waiting:
        certificate = lookup.get(r.certificate_no)
        if certificate is None:
            continue
        found = check_certificate({"training_certificate": r.certificate_no, "id_hmac": r.id_hmac},
                                  certificate, rules)
        results.append((r, found or [certificate_verified(r.certificate_no)]))
    if not results:
        return 0
    _add_to_record(session, results, now, {"event_id": event_id} if event_id else {})
    session.execute(delete(RECHECKS).where(RECHECKS.c.filing_id == bindparam("_f"),
                                           RECHECKS.c.version == bindparam("_v")),
                    [{"_f": r.filing_id, "_v": r.version} for r, _ in results])
    return len(results)


def _add_to_record(session, results: Iterable[tuple], now, detail: dict) -> None:
    """Append findings to the ledger rows of the filings (the decision stays as sent)
    and audit each addition."""
    results = list(results)
    rows = {(r.filing_id, r.version): r for r in session.execute(
        select(LEDGER.c.id, LEDGER.c.filing_id, LEDGER.c.version, LEDGER.c.findings,
               LEDGER.c.appointment_id)
        .where(LEDGER.c.filing_id.in_(sorted({w.filing_id for w, _ in results}))))}
    added_on = clock.today().isoformat()
    updates, audit = [], []
    for waiting, found in results:
        ledger = rows.get((waiting.filing_id, waiting.version))
        if ledger is None:  # cannot happen: written with the ledger row, never without it
            continue
        findings = json.loads(ledger.findings or "[]") + [
            {**f.to_dict(), "added_on": added_on} for f in found]
        updates.append({"_id": ledger.id, "findings": json.dumps(findings, ensure_ascii=False)})
        audit.append({"at": now, "actor": ACTOR, "action": "filing.certificate_checked",
                      "uscc": waiting.uscc, "appointment_id": ledger.appointment_id,
                      "filing_id": waiting.filing_id, "detail": json.dumps(
                          {"version": waiting.version, "certificate_no": waiting.certificate_no,
                           "findings": [f.code for f in found], **detail}, ensure_ascii=False)})
    if updates:
        session.execute(update(LEDGER).where(LEDGER.c.id == bindparam("_id"))
                        .values(findings=bindparam("findings")), updates)
        insert_rows(session.connection(), AUDIT, audit)


def _note_revocation(session, rules: RuleSet, state: CertificateState, now, event_id: str) -> int:
    """TRAINING_CERTIFICATE_REVOKED added to the record of each current appointment that
    holds the certificate (its newest accepted ledger row; the decision stays as sent),
    audited; returns how many. The enterprises are locked first, as intake locks them:
    the city works on one enterprise at a time."""
    number = state.certificate_no
    holders = session.execute(select(APPOINTMENTS.c.id, APPOINTMENTS.c.uscc, APPOINTMENTS.c.id_hmac).where(
        APPOINTMENTS.c.training_certificate == number, APPOINTMENTS.c.ended_on.is_(None),
        APPOINTMENTS.c.lapsed_on.is_(None))).all()
    if not holders:
        return 0
    usccs = sorted({a.uscc for a in holders})
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.uscc.in_(usccs))
                        .order_by(ENTERPRISES.c.uscc).with_for_update())
    records: dict[int, list] = {}  # appointment -> its accepted ledger rows, oldest first
    for r in session.execute(select(LEDGER.c.id, LEDGER.c.filing_id, LEDGER.c.version, LEDGER.c.findings,
                                    LEDGER.c.appointment_id)
                             .where(LEDGER.c.uscc.in_(usccs), LEDGER.c.outcome == ACCEPTED,
                                    LEDGER.c.appointment_id.in_([a.id for a in holders]))
                             .order_by(LEDGER.c.id)):
        records.setdefault(r.appointment_id, []).append((r, json.loads(r.findings or "[]")))
    certificate = Certificate(**{k: getattr(state, k) for k in Certificate.__dataclass_fields__})
    added_on, updates, audit = clock.today().isoformat(), [], []
    for appointment in holders:
        rows = records.get(appointment.id)
        if not rows or revocation_noted((found for _, found in rows), number, CERT_REVOKED):
            continue
        newest, findings = rows[-1]
        found = [f for f in check_certificate({"training_certificate": number, "id_hmac": appointment.id_hmac},
                                              certificate, rules) if f.code == CERT_REVOKED]
        findings += [{**f.to_dict(), "certificate_no": number, "added_on": added_on} for f in found]
        updates.append({"_id": newest.id, "findings": json.dumps(findings, ensure_ascii=False)})
        audit.append({"at": now, "actor": ACTOR, "action": "appointment.certificate_revoked",
                      "uscc": appointment.uscc, "appointment_id": appointment.id, "filing_id": newest.filing_id,
                      "detail": json.dumps({"version": newest.version, "certificate_no": number,
                                            "revoked_on": state.revoked_on.isoformat(),
                                            "reason": state.revoked_reason, "event_id": event_id},
                                           ensure_ascii=False)})
    if updates:
        session.execute(update(LEDGER).where(LEDGER.c.id == bindparam("_id"))
                        .values(findings=bindparam("findings")), updates)
        insert_rows(session.connection(), AUDIT, audit)
        log.info("certificate %s revoked: noted on %d current appointment(s)", number, len(updates))
    return len(updates)


def _columns(state: CertificateState) -> dict:
    return {name: getattr(state, name) for name in CertificateState.__dataclass_fields__}
