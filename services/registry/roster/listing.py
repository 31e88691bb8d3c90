"""Reading the roster (art. 4): a page of a year's roster in the caller's scope, the import history, the template file."""
from __future__ import annotations

from sqlalchemy import select

from shared.auth import Principal
from shared.contracts import county_name
from shared.db import Database
from shared.paging import page_of
from shared.validators.uscc import make_uscc
from services.registry.counties import county_scope
from services.registry.models import RosterEntry, RosterImport
from services.registry.roster.layout import COLUMNS, LINE_FIELDS, ROSTER_CATEGORIES


# --- reading the roster -------------------------------------------------------------------
def list_entries(db: Database, principal: Principal, filters: dict) -> dict:
    """A page of one year's roster, scoped to what the caller may see."""
    county = county_scope(principal, filters.get("county"))
    query = select(RosterEntry).where(RosterEntry.year == filters["year"])
    if county:
        query = query.where(RosterEntry.county == county)
    if filters.get("category"):
        query = query.where(RosterEntry.category == filters["category"])
    if filters.get("uscc"):
        query = query.where(RosterEntry.uscc == filters["uscc"])
    page, page_size = filters["page"], filters["page_size"]
    with db.unit_of_work() as uow:
        total, found = page_of(uow.session, query.order_by(RosterEntry.county, RosterEntry.uscc),
                               page, page_size)
        items = [entry_dict(e) for e in found]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def entry_dict(entry: RosterEntry) -> dict:
    return {"year": entry.year, "uscc": entry.uscc, "name": entry.name, "county": entry.county,
            "county_name": county_name(entry.county), "category": entry.category,
            "category_name": ROSTER_CATEGORIES.get(entry.category, entry.category),
            "contact_person": entry.contact_person, "phone": entry.phone, "email": entry.email}


def list_imports(db: Database, limit: int = 50) -> list[dict]:
    with db.unit_of_work() as uow:
        found = uow.session.scalars(select(RosterImport).order_by(RosterImport.id.desc())
                                    .limit(limit)).all()
        return [{"import_id": r.id, "at": r.at, "actor": r.actor, "source": r.source,
                 "sha256": r.sha256, "format": r.file_format, "encoding": r.encoding,
                 "years": [int(y) for y in r.years.split(",") if y],
                 "total_rows": r.total_rows, "accepted": r.accepted, "inserted": r.inserted,
                 "updated": r.updated, "unchanged": r.unchanged, "rejected": r.rejected}
                for r in found]


def template_rows() -> list[list[str]]:
    """Header and one example row of a roster file (for `cqo roster template`)."""
    return [[COLUMNS[name][0] for name in LINE_FIELDS],
            [make_uscc(division="130921"), "沧州示例机械制造有限公司", "130921", "规模以上工业", "2026",
             "张三", "0317-1234567", "zhangsan@example.cn"]]
