"""The offices' contacts: the city bureau's and each county department's people to tell.
City officers and admins keep all of them; a county officer only its own county's."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock
from shared.auth import OFFICERS, Principal, county_scope
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.personal_data import mask_email, mask_phone
from services.notify.models import OfficeContact

EDITORS = OFFICERS


def view(row: OfficeContact) -> dict:
    return {"id": row.id, "level": row.level, "county": row.county, "name": row.name, "person": row.person,
            "phone_masked": mask_phone(row.phone) or None, "email_masked": mask_email(row.email) or None,
            "updated_at": clock.aware(row.updated_at)}


def _may_edit(principal: Principal, level: str, county: str | None) -> None:
    principal.require_role(*EDITORS)
    if principal.role == "county_officer":
        if level != "county":
            principal.require_role("city_officer", "admin")  # a county does not keep the city's
        principal.require_county(county)


def listing(uow: UnitOfWork, principal: Principal, query: dict) -> dict:
    county = county_scope(principal, query.get("county"))
    stmt = select(OfficeContact).order_by(OfficeContact.level, OfficeContact.county, OfficeContact.id)
    if county is not None:
        stmt = stmt.where(OfficeContact.county == county)
    return {"items": [view(r) for r in uow.session.scalars(stmt)]}


def create(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    _may_edit(principal, data["level"], data.get("county"))
    row = OfficeContact(level=data["level"], county=data.get("county"), name=data["name"],
                        person=data.get("person"), phone=data.get("phone"), email=data.get("email"),
                        updated_by=principal.subject, updated_at=clock.now_utc())
    uow.session.add(row)
    uow.flush()
    uow.commit()
    return view(row)


def _get(uow: UnitOfWork, principal: Principal, contact_id: int) -> OfficeContact:
    row = uow.session.get(OfficeContact, contact_id)
    if row is None or (principal.role == "county_officer" and row.county != principal.county):
        raise NotFound("没有这个联系人", code="CONTACT_NOT_FOUND")
    return row


def replace(uow: UnitOfWork, principal: Principal, contact_id: int, data: dict) -> dict:
    row = _get(uow, principal, contact_id)
    _may_edit(principal, row.level, row.county)
    _may_edit(principal, data["level"], data.get("county"))
    row.level, row.county, row.name = data["level"], data.get("county"), data["name"]
    row.person, row.phone, row.email = data.get("person"), data.get("phone"), data.get("email")
    row.updated_by, row.updated_at = principal.subject, clock.now_utc()
    uow.commit()
    return view(row)


def delete(uow: UnitOfWork, principal: Principal, contact_id: int) -> None:
    row = _get(uow, principal, contact_id)
    _may_edit(principal, row.level, row.county)
    uow.session.delete(row)
    uow.commit()
