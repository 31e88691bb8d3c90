"""Writing checked attendance of one course, in batches, inside the caller's unit of
work: what `POST /courses/{id}/attendance` (one row) and the import (thousands) share.

A person is found again by (course, `id_hmac`): the same row again is unchanged, a
changed result, certificate or name updates the row and raises its revision. Every row
written with a certificate number is announced as `talent.certificate.issued` in the
same transaction. Batches cost a few statements each, never one per row: the existing
rows and the certificates in use are read with one query per thousand keys, new rows
are inserted together (on PostgreSQL one COPY straight into the table, fed as the
server reads it; elsewhere `shared.db.insert_rows`), their events queued together
(`shared.messaging.events.publish_many`).
"""
from __future__ import annotations

import csv
import io
import itertools
import operator
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import bindparam, func, select, update

from shared import clock
from shared.db import UnitOfWork, copy_from_stdin, insert_rows
from shared.keys import Keys
from shared.messaging.events import publish_many
from shared.personal_data import IdCipher, id_hmac
from services.talent.domain.training import RESULT_CHANGED, REVOCATION_CAUSES, AttendanceRow, certificate_event_id, \
    revoked_by_correction
from services.talent.training.models import Attendance, Course, Revocation
from services.talent.training.revocations import Revoking, revoke_many, revoked_among

INSERTED, UPDATED, UNCHANGED = "inserted", "updated", "unchanged"
CERTIFICATE_ISSUED = "talent.certificate.issued"
_KEYS_PER_QUERY = 1000
# what a re-import may change; the ID number itself is the row's key
_DATA = ("person_name", "uscc", "enterprise_name", "passed", "certificate_no", "issued_on")
_data_of = operator.attrgetter(*_DATA)  # a checked row's _DATA, as a tuple
_table = Attendance.__table__
_COLUMNS = ("course_id", *_DATA, "id_type", "id_hmac", "id_encrypted", "id_masked", "revision", "recorded_by",
            "recorded_at", "updated_at")
_NEXT_IDS = ("SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence('training_attendance', 'id')::regclass"
             " AS seq) q CROSS JOIN generate_series(1, %s)")
_COPY_TABLE = f"COPY training_attendance (id, {', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
_STAGE = ("CREATE TEMPORARY TABLE training_stage ON COMMIT DROP AS "
          f"SELECT id, {', '.join(_COLUMNS)} FROM training_attendance WITH NO DATA")
_COPY_STAGE = f"COPY training_stage (id, {', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
_FROM_STAGE = (f"INSERT INTO training_attendance (id, {', '.join(_COLUMNS)}) SELECT id, {', '.join(_COLUMNS)} "
               f"FROM training_stage ON CONFLICT DO NOTHING RETURNING id, id_hmac")


@dataclass(frozen=True)
class PersonKeys:
    """The city-wide key of `id_hmac` and this service's cipher of ID numbers at rest."""

    hmac_key: str
    cipher: IdCipher

    @classmethod
    def from_config(cls, config: dict) -> "PersonKeys":
        keys = Keys(config)
        return cls(keys.get("ID_HMAC_KEY"), keys.id_cipher())

    def hmac(self, row: AttendanceRow) -> str:
        return id_hmac(self.hmac_key, row.id_type, row.id_number)


@dataclass(slots=True)  # thousands held per batch: no instance dictionary each
class Pending:
    """A checked row on its way in: where it came from, and its person's hash."""

    line: int
    row: AttendanceRow
    id_hmac: str


@dataclass
class Written:
    """What became of a row: an outcome (inserted, updated, unchanged) and the stored
    row's id, or the reasons it was refused and their code."""

    outcome: str | None
    attendance_id: int | None = None
    reasons: list[str] | None = None
    code: str | None = None


def _refused(reason: str, code: str) -> Written:
    return Written(None, reasons=[reason], code=code)


def _taken(certificate_no: str) -> Written:
    return _refused(f"证书编号“{certificate_no}”已用于其他培训记录", "TRAINING_CERTIFICATE_TAKEN")


def _revoked(certificate_no: str) -> Written:
    return _refused(f"证书编号“{certificate_no}”已撤销，不能再次使用", "TRAINING_CERTIFICATE_REVOKED")


class _CsvStream:
    """What COPY ... FROM STDIN reads: rows made into CSV a few hundred at a time, when
    the driver asks for more, not all before the COPY starts."""

    ROWS_PER_READ = 500

    def __init__(self, rows: Iterator[tuple]):
        self.rows, self.buffer = rows, io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def read(self, size: int = -1) -> str:  # the driver asks for `size`; less is as good
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerows(itertools.islice(self.rows, self.ROWS_PER_READ))
        return self.buffer.getvalue()


class Recorder:
    """Writes the attendance of one course (locked by the caller) in batches."""

    def __init__(self, uow: UnitOfWork, course: Course, keys: PersonKeys, actor: str):
        self.uow, self.course, self.keys, self.actor = uow, course, keys, actor[:200]
        self.conn = uow.session.connection()
        self.attendees = self.conn.execute(
            select(func.count()).select_from(_table).where(_table.c.course_id == course.id)).scalar_one()
        self.started_empty = self.attendees == 0
        self.staged = False
        self.announced = 0
        self.revoked = 0
        # revocations are rare: asked about per batch only once there is one
        self.any_revoked = self.conn.execute(select(Revocation.id).limit(1)).first() is not None

    def _existing(self, hmacs: list[str]) -> dict[str, dict]:
        if self.started_empty:  # nobody to find: a Recorder never sees a person twice
            return {}
        found = {}
        for start in range(0, len(hmacs), _KEYS_PER_QUERY):
            part = hmacs[start:start + _KEYS_PER_QUERY]
            for row in self.conn.execute(
                    select(_table.c.id, _table.c.id_hmac, _table.c.revision, *(_table.c[c] for c in _DATA))
                    .where(_table.c.course_id == self.course.id, _table.c.id_hmac.in_(part))).mappings():
                found[row["id_hmac"]] = dict(row)
        return found

    def _certificate_holders(self, numbers: list[str]) -> dict[str, int]:
        holders = {}
        for start in range(0, len(numbers), _KEYS_PER_QUERY):
            part = numbers[start:start + _KEYS_PER_QUERY]
            holders.update(self.conn.execute(select(_table.c.certificate_no, _table.c.id)
                                             .where(_table.c.certificate_no.in_(part))).all())
        return holders

    def write(self, batch: list[Pending]) -> list[Written]:
        """Write a batch; one answer per row. No person comes twice to one Recorder, and
        no certificate twice in one batch (the import sees to both)."""
        existing = self._existing([p.id_hmac for p in batch])
        revoked = self._revoked_among(batch, existing)
        now = clock.now_utc()
        answers: list[Written] = []
        inserts: dict[str, tuple[int, Pending]] = {}             # id_hmac -> (answer, row)
        updates: dict[int, tuple[int, dict, str | None]] = {}    # id -> (answer, values, old certificate)
        revoking: list[tuple[int, Revoking]] = []                # (answer, a passed row corrected to failed)
        capacity = self.course.capacity
        for pending in batch:
            row, old = pending.row, (existing.get(pending.id_hmac) if existing else None)
            if row.certificate_no in revoked and (old is None or old["certificate_no"] != row.certificate_no):
                answers.append(_revoked(row.certificate_no))  # final: no other row takes it up
                continue
            if old is None:
                if self.attendees >= capacity:
                    answers.append(_refused(f"课程人数已满（容量{capacity}人）", "TRAINING_COURSE_FULL"))
                    continue
                self.attendees += 1
                inserts[pending.id_hmac] = len(answers), pending
                answers.append(Written(INSERTED))
                continue
            values = dict(zip(_DATA, _data_of(pending.row)))
            if all(old[c] == values[c] for c in _DATA):
                answers.append(Written(UNCHANGED, old["id"]))
            else:
                updates[old["id"]] = len(answers), {
                    "_id": old["id"], **{f"_{c}": v for c, v in values.items()},
                    "_revision": old["revision"] + 1, "_updated_at": now}, old["certificate_no"]
                if old["certificate_no"] not in revoked and \
                        revoked_by_correction(old["passed"], old["certificate_no"], row.passed):
                    revoking.append((len(answers), Revoking(
                        old["certificate_no"], old["id"], pending.id_hmac, row.id_masked, RESULT_CHANGED,
                        REVOCATION_CAUSES[RESULT_CHANGED])))
                answers.append(Written(UPDATED, old["id"]))
        self._insert(inserts, answers, now)
        revisions = self._update(updates, answers)
        revoking = [r for at, r in revoking if answers[at].outcome == UPDATED]
        # a row corrected to failed is announced as such, its revocation after it
        self._announce(batch, answers, revisions, revoked)
        revoke_many(self.uow, self.course, revoking, self.actor, clock.now_utc())
        self.revoked += len(revoking)
        self.any_revoked = self.any_revoked or bool(revoking)
        return answers

    def _revoked_among(self, batch: list[Pending], existing: dict[str, dict]) -> set[str]:
        """The revoked numbers among those the batch writes or its rows held."""
        if not self.any_revoked:
            return set()
        numbers = {p.row.certificate_no for p in batch} | {old["certificate_no"] for old in existing.values()}
        numbers.discard(None)
        return revoked_among(self.conn, sorted(numbers))


    def _new_rows(self, pendings: list[Pending]) -> Iterator[tuple]:
        """The new rows' values in _COLUMNS order but the two instants; the ID number
        encrypted here, as each row is about to be written."""
        course_id, actor, encrypt = self.course.id, self.actor, self.keys.cipher.encrypt
        for pending in pendings:
            row = pending.row
            yield (course_id, *_data_of(row), row.id_type, pending.id_hmac, encrypt(row.id_number),
                   row.id_masked, 1, actor)

    def _insert(self, inserts: dict[str, tuple[int, Pending]], answers: list[Written], now) -> None:
        """A certificate that another course's attendance holds makes the unique key
        refuse the new row: one statement, no lookup."""
        pendings = [pending for _, pending in inserts.values()]
        if self.conn.dialect.name == "postgresql" and len(pendings) > 1:
            inserted = self._copy_in(pendings, now)
        else:
            inserted = insert_rows(self.conn, _table, [dict(zip(_COLUMNS, (*row, now, now)))
                                                       for row in self._new_rows(pendings)],
                                   returning=("id", "id_hmac"), skip_conflicts=True)
        for attendance_id, hmac in inserted:
            answers[inserts.pop(hmac)[0]].attendance_id = attendance_id
        for at, pending in inserts.values():  # left out by the unique key
            self.attendees -= 1
            answers[at] = _taken(pending.row.certificate_no)

    def _copy_in(self, pendings: list[Pending], now) -> list[tuple[int, str]]:
        """PostgreSQL: the rows' ids drawn from the table's sequence, then the rows COPied
        straight into the table (COPY is parsed several times faster than a statement's
        parameters, and no staging table is written), encrypted and formatted as the
        COPY reads them, so the server checks the keys of the rows sent while the next
        ones are made. A certificate another course holds makes the unique key refuse
        the COPY: back to before it (a savepoint), and the same rows go through a
        staging table and INSERT ... ON CONFLICT DO NOTHING, which leaves out only the
        refused ones."""
        from psycopg2.errors import UniqueViolation

        stamp = now.isoformat()  # one instant per batch, formatted once

        def lines():
            return _CsvStream((attendance_id, *row, stamp, stamp)
                              for attendance_id, row in zip(ids, self._new_rows(pendings)))

        with self.conn.connection.dbapi_connection.cursor() as cursor:
            cursor.execute(_NEXT_IDS, (len(pendings),))
            ids = [attendance_id for (attendance_id,) in cursor.fetchall()]
            cursor.execute("SAVEPOINT training_copy")
            try:
                copy_from_stdin(cursor, _COPY_TABLE, lines())
            except UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT training_copy")
            else:
                cursor.execute("RELEASE SAVEPOINT training_copy")
                return [(attendance_id, pending.id_hmac) for attendance_id, pending in zip(ids, pendings)]
            if not self.staged:
                cursor.execute(_STAGE)
                self.staged = True
            else:
                cursor.execute("TRUNCATE training_stage")
            copy_from_stdin(cursor, _COPY_STAGE, lines())
            cursor.execute(_FROM_STAGE)
            return cursor.fetchall()

    def _update(self, updates: dict[int, tuple[int, dict, str | None]], answers: list[Written]) -> dict[int, int]:
        """Changed rows, each to its next revision; a certificate it takes over from
        another row is checked first. Returns {id: revision} of the updated rows."""
        holders = self._certificate_holders([values["_certificate_no"] for _, values, old in updates.values()
                                             if values["_certificate_no"] not in (None, old)])
        params = []
        for attendance_id, (at, values, _) in updates.items():
            if holders.get(values["_certificate_no"], attendance_id) != attendance_id:
                answers[at] = _taken(values["_certificate_no"])
            else:
                params.append(values)
        if params:
            self.conn.execute(update(_table).where(_table.c.id == bindparam("_id"))
                              .values({c: bindparam(f"_{c}") for c in (*_DATA, "revision", "updated_at")}), params)
        return {values["_id"]: values["_revision"] for values in params}

    def _announce(self, batch: list[Pending], answers: list[Written], revisions: dict[int, int],
                  revoked: set[str]) -> None:
        """One `talent.certificate.issued` per written row that has a certificate, unless
        it was revoked before (final: its revocation stays its last word)."""
        items = []
        course = {"course_id": self.course.id, "course_kind": self.course.kind, "county": self.course.county}
        for pending, answer in zip(batch, answers):
            row = pending.row
            if answer.outcome not in (INSERTED, UPDATED) or not row.certificate_no or row.certificate_no in revoked:
                continue
            revision = revisions.get(answer.attendance_id, 1)
            issued_on = row.issued_on
            items.append((row.certificate_no, {
                "certificate_no": row.certificate_no, **course,
                "person_name": row.person_name, "id_type": row.id_type, "id_hmac": pending.id_hmac,
                "id_masked": row.id_masked, "passed": row.passed,
                "issued_on": issued_on and issued_on.isoformat(),  # what the event carries; formatted here once
            }, certificate_event_id(row.certificate_no, answer.attendance_id, revision)))
        publish_many(self.uow, CERTIFICATE_ISSUED, items, source="talent")
        self.announced += len(items)
