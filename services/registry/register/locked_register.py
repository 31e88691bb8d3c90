"""The enterprises of one forwarded message, locked in USCC order, with what deciding needs loaded in a few queries and written back in a handful of statements."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, or_, select, update

from shared import clock
from shared.db import insert_rows
from shared.domain.qualification import Certificate, certificate_number
from shared.tracing import Forwarded
from services.registry import announcements
from services.registry.domain.register import ACCEPTED, REJECTED, WAITING, Decision
from services.registry.models import (Appointment, AuditEntry, CertificateRecheck, Enterprise,
                                      LedgerEntry, TrainingCertificate)


@dataclass
class Item:
    raw: dict
    filing_id: str
    version: int
    data: dict | None = None          # loaded FilingMessageSchema
    error: Decision | None = None     # why it cannot be decided on its merits


ENTERPRISES = Enterprise.__table__
APPOINTMENTS = Appointment.__table__
LEDGER = LedgerEntry.__table__
AUDIT = AuditEntry.__table__
CERTIFICATES = TrainingCertificate.__table__
RECHECKS = CertificateRecheck.__table__
# what deciding may change on rows that already exist (history is never rewritten)
_APPOINTMENT_CHANGES = ("ended_on", "end_reason", "ended_by_filing_id", "cqo_name", "phone",
                        "email", "position", "is_decision_level", "education_level",
                        "title_level", "years_quality_work", "training_certificate")
_LEDGER_CHANGES = ("outcome", "decided_at", "reasons", "findings", "late", "days_late",
                   "deadline", "appointment_id", "payload", "decision_message_id")


class Row(SimpleNamespace):
    """A register row as plain attributes: read with Core, or new (id None until written)."""


class CertificateLookup:
    """The read model of training certificates as deciding asks it (`get(number)`):
    the numbers of a message's filings are loaded in one query; a number asked for
    besides (a held filing decided now) is read alone. None: not heard of."""

    def __init__(self, session):
        self.session = session
        self._known: dict[str, Certificate | None] = {}

    def load(self, numbers) -> None:
        wanted = sorted(set(numbers) - set(self._known))
        if not wanted:
            return
        self._known.update(dict.fromkeys(wanted))
        for r in self.session.execute(select(
                CERTIFICATES.c.certificate_no, CERTIFICATES.c.id_hmac, CERTIFICATES.c.course_kind,
                CERTIFICATES.c.passed, CERTIFICATES.c.issued_on, CERTIFICATES.c.revoked_on,
                CERTIFICATES.c.revoked_reason).where(CERTIFICATES.c.certificate_no.in_(wanted))):
            self._known[r.certificate_no] = Certificate(**r._mapping)

    def get(self, number: str) -> Certificate | None:
        if number not in self._known:
            self.load([number])
        return self._known[number]


class LockedRegister:
    """The enterprises of one message, locked, with what deciding needs loaded in a few
    queries: current appointments, which had appointments before, the ledger rows of
    the message's filings, the filings held for a predecessor and the training
    certificates the filings name. Kept up to date in
    memory while the message's filings are applied; `flush` writes what changed in a
    handful of statements (new appointments first, for the ids the ledger points to).
    `message_id` is the message being answered (its decisions' ids derive from it),
    `forwarded` the shovel hop it came by: both are kept on the ledger rows for the trace."""

    def __init__(self, session, message_id: str | None = None, forwarded: Forwarded | None = None):
        self.session = session
        self.message_id, self.forwarded = message_id, forwarded
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.enterprises: dict[str, Row] = {}
        self.current: dict[str, Row] = {}
        self.with_history: set[str] = set()
        self.ledger: dict[str, dict[int, Row]] = defaultdict(dict)  # filing -> version -> row
        self.waiting: dict[str, list[Row]] = defaultdict(list)  # uscc -> rows held
        self.accepted_on: dict[str, object] = {}  # uscc -> latest day accepted in this message
        self.rejected_establishment: dict[str, bool] = {}  # uscc -> its ledger holds a refused one
        self._new_appointments: list[Row] = []
        self._new_ledger: list[Row] = []
        self._changed_appointments: dict[int, Row] = {}
        self._changed_ledger: dict[int, Row] = {}
        self._audit: list[dict] = []
        self._rechecks: list[dict] = []
        self.certificates = CertificateLookup(session)
        self._announced: list[tuple[str, Row, dict]] = []  # events, queued by flush
        self._arrivals = count()

    @classmethod
    def lock(cls, session, items: list[Item], now: datetime, message_id: str | None = None,
             forwarded: Forwarded | None = None) -> "LockedRegister":
        """Create unknown enterprises, lock all of them in USCC order (no deadlocks), load."""
        register = cls(session, message_id, forwarded)
        first: dict[str, dict] = {}
        numbers = set()
        for item in items:
            if item.data:
                first.setdefault(item.data["enterprise"]["uscc"], item.data["enterprise"])
                numbers.add(certificate_number(item.data["cqo"]))
        numbers.discard(None)
        usccs = sorted(first)
        if usccs:
            insert_rows(session.connection(), ENTERPRISES, [
                {"uscc": u, "name": first[u]["name"], "county": first[u]["county"],
                 "category": first[u]["category"], "created_at": now, "updated_at": now}
                for u in usccs], skip_conflicts=True)
            register.enterprises = {r.uscc: Row(**r._mapping)
                                    for r in session.execute(register.enterprises_locked(usccs))}
            for r in session.execute(select(APPOINTMENTS).where(
                    APPOINTMENTS.c.uscc.in_(usccs)).order_by(APPOINTMENTS.c.id)):
                register.with_history.add(r.uscc)
                if r.ended_on is None:
                    register.current[r.uscc] = Row(**r._mapping)
        wanted = LEDGER.c.filing_id.in_(sorted({i.filing_id for i in items}))
        if usccs:
            wanted = or_(wanted, and_(LEDGER.c.uscc.in_(usccs), LEDGER.c.outcome == WAITING))
        query = select(LEDGER).where(wanted).order_by(LEDGER.c.id)
        if register.postgres:
            # the held filings are settled from memory at the end: locked now, so that
            # expire_waiting (SKIP LOCKED) cannot reject one in between
            query = query.with_for_update()
        for r in session.execute(query):
            register._known_ledger(Row(**r._mapping, appointment=None, arrival=(0, r.id)))
        register.certificates.load(numbers)
        return register

    def enterprises_locked(self, usccs: list[str]):
        """The enterprises, locked in USCC order: the city works on one enterprise at a
        time (docs/architecture.md, "Ordering per enterprise"); SQLite's BEGIN IMMEDIATE
        already serialises every writer."""
        query = select(ENTERPRISES).where(ENTERPRISES.c.uscc.in_(usccs)).order_by(ENTERPRISES.c.uscc)
        return query.with_for_update() if self.postgres else query

    def _known_ledger(self, row: Row) -> None:
        self.ledger[row.filing_id][row.version] = row
        if row.outcome == WAITING:
            self.waiting[row.uscc].append(row)

    # -- changes, written by flush --------------------------------------------------
    def add_ledger(self, row: Row) -> None:
        row.arrival = (1, next(self._arrivals))
        self._new_ledger.append(row)
        self._known_ledger(row)

    def ledger_changed(self, row: Row) -> None:
        if row.id is not None:
            self._changed_ledger[row.id] = row

    def add_appointment(self, row: Row) -> None:
        self._new_appointments.append(row)

    def appointment_changed(self, row: Row) -> None:
        if row.id is not None:
            self._changed_appointments[row.id] = row

    def audit(self, **entry) -> None:
        self._audit.append(entry)

    def recheck(self, **row) -> None:
        """An accepted filing whose certificate is 未核验: checked again later
        (services/registry/register/certificates.py)."""
        self._rechecks.append(row)

    def announce(self, event_type: str, row: Row, **facts) -> None:
        """An event about `row` (docs/events.md), queued once the row is written."""
        self._announced.append((event_type, row, facts))

    def accepted(self, uscc: str, day) -> None:
        self.accepted_on[uscc] = max(day, self.accepted_on.get(uscc, day))

    def held(self, uscc: str) -> list[Row]:
        """Filings of the enterprise waiting for a predecessor, in the order to decide them."""
        return sorted((r for r in self.waiting.get(uscc, ()) if r.outcome == WAITING),
                      key=lambda r: (r.submitted_to_county_on, r.version, r.arrival))

    def establishment_rejected(self, uscc: str) -> bool:
        """The enterprise never had an appointment and the city refused an establishment of
        it: a change, renewal, update or end has no predecessor on its way to wait for."""
        if uscc in self.with_history:
            return False
        if uscc not in self.rejected_establishment:
            self.rejected_establishment[uscc] = self.session.execute(select(LEDGER.c.id).where(
                LEDGER.c.uscc == uscc, LEDGER.c.kind == "establishment",
                LEDGER.c.outcome == REJECTED).limit(1)).first() is not None
        return self.rejected_establishment[uscc]

    def later_filing_applied(self, uscc: str, day) -> bool:
        """An accepted filing that reached its county after `day` is already applied."""
        if uscc in self.accepted_on and self.accepted_on[uscc] > day:
            return True
        if uscc not in self.with_history:
            return False  # never had an appointment: nothing of it was accepted before
        return self.session.execute(select(LEDGER.c.id).where(
            LEDGER.c.uscc == uscc, LEDGER.c.outcome == ACCEPTED,
            LEDGER.c.submitted_to_county_on > day).limit(1)).first() is not None

    def update_enterprise(self, enterprise: Row, changes: dict, now: datetime) -> None:
        for key, (_, value) in changes.items():
            setattr(enterprise, key, value)
        enterprise.updated_at = now
        # through the ORM entity: an Enterprise the session already holds (recommendations
        # reads it) is updated in place instead of going stale
        self.session.execute(update(Enterprise).where(Enterprise.uscc == enterprise.uscc)
                             .values(updated_at=now, **{k: v for k, (_, v) in changes.items()}))

    def flush(self) -> None:
        conn = self.session.connection()
        if self._new_appointments:
            columns = [c.name for c in APPOINTMENTS.columns if c.name != "id"]
            inserted = insert_rows(conn, APPOINTMENTS,
                                   [{c: getattr(r, c) for c in columns} for r in self._new_appointments],
                                   returning=("id", "filing_id", "filing_version"))
            # a filing version creates at most one appointment: it names the new row
            ids = {(filing_id, version): new_id for new_id, filing_id, version in inserted}
            for row in self._new_appointments:
                row.id = ids[(row.filing_id, row.filing_version)]
        if self._changed_appointments:
            conn.execute(update(APPOINTMENTS).where(APPOINTMENTS.c.id == bindparam("_id"))
                         .values({c: bindparam(c) for c in _APPOINTMENT_CHANGES}),
                         [{"_id": r.id, **{c: getattr(r, c) for c in _APPOINTMENT_CHANGES}}
                          for r in self._changed_appointments.values()])
        for row in (*self._new_ledger, *self._changed_ledger.values()):
            if row.appointment is not None:
                row.appointment_id = row.appointment.id
        if self._new_ledger:
            columns = [c.name for c in LEDGER.columns if c.name != "id"]
            insert_rows(conn, LEDGER, [{c: getattr(r, c) for c in columns} for r in self._new_ledger])
        if self._changed_ledger:
            conn.execute(update(LEDGER).where(LEDGER.c.id == bindparam("_id"))
                         .values({c: bindparam(c) for c in _LEDGER_CHANGES}),
                         [{"_id": r.id, **{c: getattr(r, c) for c in _LEDGER_CHANGES}}
                          for r in self._changed_ledger.values()])
        if self._audit:
            insert_rows(conn, AUDIT, [
                {**{k: v for k, v in e.items() if k != "appointment"},
                 "appointment_id": e["appointment"].id if e["appointment"] is not None else None}
                for e in self._audit])
        if self._rechecks:
            insert_rows(conn, RECHECKS, self._rechecks)
        self._new_appointments, self._new_ledger, self._audit, self._rechecks = [], [], [], []
        self._changed_appointments, self._changed_ledger = {}, {}

    def publish_announced(self) -> None:
        """Queue the events of what was flushed (call after the decisions are queued)."""
        if self._announced:
            announcements.publish_all(self.session, self._announced, clock.now_utc())
            self._announced = []
