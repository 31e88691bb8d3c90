"""Use case: import a course's attendance from a CSV or XLSX file (art. 6, art. 15 教育培训).

Every row is checked on its own (the domain's `check_attendance`): a bad row is
reported with its line number and the reasons in Chinese and never stops the good
ones. A person is found again by (course, `id_hmac`), so importing the same file again
changes nothing ("unchanged") and a corrected result or certificate is "updated"
(announced again, as a new event). The whole import is one unit of work, with the
course locked: one writer per course, and a failure half-way leaves it as it was.
Rows are written `CHUNK_ROWS` at a time (`recording.Recorder`).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import IntegrityError

from shared import clock
from shared.auth import Principal
from shared.db import Database
from shared.personal_data import mask_id
from services.talent.domain.training import check_attendance, shown
from services.talent.training import courses
from services.talent.training.attendance import certificate_conflict
from services.talent.training.files import TrainingFileError, open_table
from services.talent.training.recording import INSERTED, UPDATED, PersonKeys, Pending, Recorder, Written

log = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
REPORTED_REJECTS = 1_000  # rejected rows kept in the report (all are counted)


@dataclass
class ImportReport:
    course_id: int
    source: str
    sha256: str
    file_format: str = ""
    encoding: str | None = None
    header_line: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    certificates_announced: int = 0
    certificates_revoked: int = 0
    rejected_rows: list[dict] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def reject(self, line: int, name: str, id_masked: str, reasons: list[str]) -> dict:
        entry = {"line": line, "person_name": name, "id_masked": id_masked, "reasons": reasons}
        self.rejected += 1
        if self.rejected <= REPORTED_REJECTS:
            self.rejected_rows.append(entry)
        return entry

    def summary(self) -> str:
        counts = f"新增{self.inserted}、更新{self.updated}、未变化{self.unchanged}"
        outcome = "，被拒绝的行未写入，其余行已导入" if self.rejected else ""
        return f"共读取{self.total_rows}行：接受{self.accepted}行（{counts}），拒绝{self.rejected}行{outcome}"

    def to_dict(self) -> dict:
        return {"course_id": self.course_id, "source": self.source, "format": self.file_format,
                "encoding": self.encoding, "sha256": self.sha256, "header_line": self.header_line,
                "ignored_columns": self.ignored_columns, "total_rows": self.total_rows,
                "accepted": self.accepted, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "certificates_announced": self.certificates_announced,
                "certificates_revoked": self.certificates_revoked,
                "rejected_rows": sorted(self.rejected_rows, key=lambda r: r["line"]),
                "rejected_rows_truncated": self.rejected > len(self.rejected_rows),
                "summary": self.summary()}


def _count(report: ImportReport, batch: list[Pending], answers: list[Written], reject) -> None:
    for pending, written in zip(batch, answers):
        if written.outcome is None:
            reject(pending.line, pending.row.person_name, pending.row.id_number, written.reasons)
        elif written.outcome == INSERTED:
            report.inserted += 1
        elif written.outcome == UPDATED:
            report.updated += 1
        else:
            report.unchanged += 1


def import_attendance(db: Database, content: bytes, *, course_id: int, principal: Principal,
                      keys: PersonKeys, source: str,
                      on_reject: Callable[[dict], None] | None = None,
                      chunk_rows: int = CHUNK_ROWS) -> ImportReport:
    """Import a file's rows into the course; returns the report. Raises NotFound or
    Forbidden (the course), TrainingFileError (the file as a whole); nothing is written
    then. `on_reject` sees every rejected row, the report keeps the first ones."""
    report = ImportReport(course_id=course_id, source=source[:300],
                          sha256=hashlib.sha256(content).hexdigest())

    def reject(line: int, name, number, reasons: list[str]) -> None:
        entry = report.reject(line, shown(name, 100), mask_id(str(number or "").strip()[:40]), reasons)
        if on_reject is not None:
            on_reject(entry)

    with db.unit_of_work() as uow:
        course = courses.managed(uow, principal, course_id)  # 404 / 403 before the file is read
        table = open_table(content)
        try:
            report.file_format, report.encoding = table.file_format, table.encoding
            report.header_line, report.ignored_columns = table.header_line, table.ignored
            recorder = Recorder(uow, course, keys, principal.subject or principal.role)
            today = clock.today()
            people: dict[str, int] = {}        # id_hmac -> the line it was first seen on
            certificates: dict[str, int] = {}  # certificate number -> the same
            batch: list[Pending] = []
            for line, cells in table.rows():
                if not any(v not in (None, "") and str(v).strip() for v in cells.values()):
                    continue  # a blank line, or a row of empty cells
                report.total_rows += 1
                row, problems = check_attendance(cells, course_kind=course.kind,
                                                 course_starts_on=course.starts_on, today=today)
                reasons = [reason for found in problems.values() for reason in found]
                if row is not None:
                    hmac = keys.hmac(row)
                    first = people.setdefault(hmac, line)
                    if first != line:
                        reasons.append(f"与第{first}行为同一人（证件相同），以第{first}行为准")
                    elif row.certificate_no:
                        first = certificates.setdefault(row.certificate_no, line)
                        if first != line:
                            del people[hmac]
                            reasons.append(f"证书编号“{row.certificate_no}”与第{first}行重复")
                if reasons:
                    reject(line, cells.get("person_name"), cells.get("id_number"), reasons)
                    continue
                batch.append(Pending(line, row, hmac))
                if len(batch) >= chunk_rows:
                    _count(report, batch, recorder.write(batch), reject)
                    batch = []
                    time.sleep(0)  # under eventlet: let the service's other workers run
            if batch:
                _count(report, batch, recorder.write(batch), reject)
            if report.total_rows == 0:
                raise TrainingFileError("文件中没有数据行（表头之下为空）", code="TRAINING_EMPTY")
            report.certificates_announced = recorder.announced
            report.certificates_revoked = recorder.revoked
            uow.commit()
        except IntegrityError:  # a certificate written by another course's import meanwhile
            raise certificate_conflict() from None
        finally:
            table.close()
    log.info("training import into course %s by %s: %s", course_id, principal.subject,
             {k: v for k, v in report.to_dict().items() if k != "rejected_rows"})
    return report
