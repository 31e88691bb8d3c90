"""Writing checked attendance of one course, in batches, inside the caller's unit of
work: what `POST /courses/{id}/attendance` (one row) and the import (thousands) share.

A person is found again by (course, `id_hmac`): the same row again is unchanged, a
changed result, certificate or name updates the row and raises its revision. Every row
written with a certificate number is announced as `talent.certificate.issued` in the
same transaction. Batches cost a few statements each, never one per row: the existing
rows and the certificates in use are read with one query per thousand keys, new rows
are inserted together (`shared.db.insert_rows`), their events queued together
(`shared.messaging.events.publish_many`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update

from shared import clock
from shared.db import UnitOfWork, insert_rows
from shared.keys import Keys
from shared.messaging.events import publish_many
from shared.personal_data import IdCipher, id_hmac
from services.talent.domain.training import AttendanceRow, certificate_event_id
from services.talent.training.models import Attendance, Course

INSERTED, UPDATED, UNCHANGED = "inserted", "updated", "unchanged"
CERTIFICATE_ISSUED = "talent.certificate.issued"
_KEYS_PER_QUERY = 1000
# what a re-import may change; the ID number itself is the row's key
_DATA = ("person_name", "uscc", "enterprise_name", "passed", "certificate_no", "issued_on")
_table = Attendance.__table__


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


@dataclass
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


class Recorder:
    """Writes the attendance of one course (locked by the caller) in batches."""

    def __init__(self, uow: UnitOfWork, course: Course, keys: PersonKeys, actor: str):
        self.uow, self.course, self.keys, self.actor = uow, course, keys, actor[:200]
        self.conn = uow.session.connection()
        self.attendees = self.conn.execute(
            select(func.count()).select_from(_table).where(_table.c.course_id == course.id)).scalar_one()
        self.announced = 0

    def _existing(self, hmacs: list[str]) -> dict[str, dict]:
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
        """Write a batch (no two rows of one person or one certificate); one answer per row."""
        existing = self._existing([p.id_hmac for p in batch])
        holders = self._certificate_holders([p.row.certificate_no for p in batch if p.row.certificate_no])
        now = clock.now_utc()
        answers: list[Written] = []
        inserts, insert_of, updates = [], {}, []
        for pending in batch:
            row, old = pending.row, existing.get(pending.id_hmac)
            holder = holders.get(row.certificate_no) if row.certificate_no else None
            if holder is not None and (old is None or holder != old["id"]):
                answers.append(Written(None, reasons=[f"证书编号“{row.certificate_no}”已用于其他培训记录"],
                                       code="TRAINING_CERTIFICATE_TAKEN"))
                continue
            values = {c: getattr(row, c) for c in _DATA}
            if old is None:
                if self.attendees >= self.course.capacity:
                    answers.append(Written(None, reasons=[f"课程人数已满（容量{self.course.capacity}人）"],
                                           code="TRAINING_COURSE_FULL"))
                    continue
                self.attendees += 1
                insert_of[pending.id_hmac] = len(answers)
                answers.append(Written(INSERTED))
                inserts.append({"course_id": self.course.id, **values, "id_type": row.id_type,
                                "id_hmac": pending.id_hmac, "id_encrypted": self.keys.cipher.encrypt(row.id_number),
                                "id_masked": row.id_masked, "revision": 1, "recorded_by": self.actor,
                                "recorded_at": now, "updated_at": now})
            elif all(old[c] == values[c] for c in _DATA):
                answers.append(Written(UNCHANGED, old["id"]))
            else:
                answers.append(Written(UPDATED, old["id"]))
                updates.append({"_id": old["id"], **{f"_{c}": v for c, v in values.items()},
                                "_revision": old["revision"] + 1, "_updated_at": now})
        for attendance_id, hmac in insert_rows(self.conn, _table, inserts, returning=("id", "id_hmac")):
            answers[insert_of[hmac]].attendance_id = attendance_id
        if updates:
            self.conn.execute(update(_table).where(_table.c.id == bindparam("_id"))
                              .values({c: bindparam(f"_{c}") for c in (*_DATA, "revision", "updated_at")}), updates)
        self._announce(batch, answers, inserts, updates)
        return answers

    def _announce(self, batch, answers, inserts, updates) -> None:
        """One `talent.certificate.issued` per written row that has a certificate."""
        revisions = {u["_id"]: u["_revision"] for u in updates}
        items = []
        for pending, answer in zip(batch, answers):
            row = pending.row
            if answer.outcome not in (INSERTED, UPDATED) or not row.certificate_no:
                continue
            revision = revisions.get(answer.attendance_id, 1)
            items.append((row.certificate_no, {
                "certificate_no": row.certificate_no, "course_id": self.course.id,
                "course_kind": self.course.kind, "county": self.course.county,
                "person_name": row.person_name, "id_type": row.id_type, "id_hmac": pending.id_hmac,
                "id_masked": row.id_masked, "passed": row.passed, "issued_on": row.issued_on,
            }, certificate_event_id(row.certificate_no, answer.attendance_id, revision)))
        publish_many(self.uow, CERTIFICATE_ISSUED, items, source="talent")
        self.announced += len(items)
