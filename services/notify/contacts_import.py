"""Use case: the offices' contacts imported from a CSV or XLSX file (`POST
/api/v1/contacts/import`, `cqo contacts import`).

Columns in Chinese as the other imports: 单位级别 (市局 | 县级), 县区代码, 名称, 联系人,
手机, 邮箱. Each row is checked on its own (the same rules as `POST /contacts`): a bad
row is reported with its line number and reasons, never stopping the good ones. A
contact is found again by (level, county, name, person), so importing the same file
again changes nothing and a new phone or e-mail updates the row. A county officer
imports only their county's rows (others are rejected, row by row); city officers
and admins import every county's and the city's. One unit of work: a failure half-way
leaves the contacts as they were."""
from __future__ import annotations

import hashlib
import logging

from marshmallow import ValidationError
from sqlalchemy import select

from shared import clock
from shared.auth import Principal
from shared.contracts.filings import jurisdiction
from shared.db import UnitOfWork
from shared.errors import CqoError
from shared.file_import import ImportCounts
from shared.http import field_errors
from shared.personal_data import mask_email, mask_phone
from shared.tabular import read_table
from services.notify.contacts import EDITORS
from services.notify.models import OfficeContact
from services.notify.schemas import ContactIn

log = logging.getLogger(__name__)

COLUMNS = {
    "level": ("单位级别", ("单位级别", "级别", "层级", "level")),
    "county": ("县区代码", ("县区代码", "县（市、区）代码", "县(市、区)代码", "区划代码", "县区", "county")),
    "name": ("名称", ("名称", "单位名称", "部门名称", "name")),
    "person": ("联系人", ("联系人", "联系人姓名", "姓名", "person")),
    "phone": ("手机", ("手机", "手机号码", "手机号", "电话", "联系电话", "phone")),
    "email": ("邮箱", ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail")),
}
REQUIRED = ("level", "name")
LEVELS = {"市局": "city", "市级": "city", "市": "city", "city": "city",
          "县级": "county", "县局": "county", "县": "county", "县区": "county", "county": "county"}
REPORTED_REJECTS = 1_000
_schema = ContactIn()


def _key(level: str, county: str | None, name: str, person: str | None) -> tuple:
    return level, county or "", name, person or ""


def _check(principal: Principal, raw: dict) -> tuple[dict | None, list[str]]:
    """The row as `ContactIn` loads it, or the reasons it is refused."""
    level = LEVELS.get(raw["level"].lower()) if raw.get("level") else None
    if raw.get("level") and level is None:
        return None, [f"单位级别“{raw['level']}”无效，应为“市局”或“县级”"]
    try:
        data = _schema.load({"level": level, "county": raw.get("county") or None, "name": raw.get("name") or None,
                             "person": raw.get("person") or None, "phone": raw.get("phone") or None,
                             "email": raw.get("email") or None})
    except ValidationError as exc:
        names = {k: v[0] for k, v in COLUMNS.items()}
        return None, [f"{names.get(f, f)}：{m}" for f, ms in field_errors(exc.messages).items() for m in ms]
    if data.get("county"):
        try:
            jurisdiction().validate(data["county"])
        except CqoError as exc:
            return None, [f"县区代码：{exc.message}"]
    if principal.role == "county_officer" and (data["level"] != "county" or data["county"] != principal.county):
        return None, ["县级监管人员只能导入本县（市、区）的联系人"]
    return data, []


def import_contacts(uow: UnitOfWork, principal: Principal, content: bytes, *, source: str) -> dict:
    principal.require_role(*EDITORS)
    table = read_table(content, COLUMNS, REQUIRED, prefix="CONTACTS")
    counts = ImportCounts()
    rejected: list[dict] = []
    session, now = uow.session, clock.now_utc()
    stmt = select(OfficeContact).order_by(OfficeContact.id)
    if principal.role == "county_officer":
        stmt = stmt.where(OfficeContact.county == principal.county)
    existing: dict[tuple, OfficeContact] = {}
    for row in session.scalars(stmt):
        existing.setdefault(_key(row.level, row.county, row.name, row.person), row)
    for line, raw in table.rows():
        counts.total_rows += 1
        data, reasons = _check(principal, raw)
        if data is None:
            counts.rejected += 1
            if len(rejected) < REPORTED_REJECTS:  # addresses masked: the report is logged and shown
                rejected.append({"line": line, "name": raw.get("name") or "", "county": raw.get("county") or None,
                                 "phone_masked": mask_phone(raw.get("phone")) or None,
                                 "email_masked": mask_email(raw.get("email")) or None, "reasons": reasons})
            continue
        key = _key(data["level"], data.get("county"), data["name"], data.get("person"))
        row = existing.get(key)
        if row is None:
            row = OfficeContact(level=data["level"], county=data.get("county"), name=data["name"],
                                person=data.get("person"), phone=data.get("phone"), email=data.get("email"),
                                updated_by=principal.subject, updated_at=now)
            session.add(row)
            existing[key] = row
            counts.inserted += 1
        elif (row.phone, row.email) != (data.get("phone"), data.get("email")):
            row.phone, row.email = data.get("phone"), data.get("email")
            row.updated_by, row.updated_at = principal.subject, now
            counts.updated += 1
        else:
            counts.unchanged += 1
    uow.commit()
    log.info("contacts import %s by %s: %s", source, principal.subject, counts.summary())
    return {"source": source, "format": table.file_format, "encoding": table.encoding,
            "sha256": hashlib.sha256(content).hexdigest(), "header_line": table.header_line,
            "ignored_columns": table.ignored, **counts.to_dict(),
            "rejected_rows": rejected, "rejected_rows_truncated": counts.rejected > len(rejected)}
