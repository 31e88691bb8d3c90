"""What is read of typical experiences: officers see their county's (the city every
county's) in every status; the public sees published ones only, without the review,
the consent's evidence or the USCC."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from shared.auth import Principal
from shared.contracts import county_name
from shared.db import Database
from shared.paging import page_of
from services.talent.domain import experiences as rules
from services.talent.experiences import records
from services.talent.experiences.models import Experience, ExperienceAttachment, ExperienceEvent
from services.talent.experiences.schemas import (ExperienceOut, ExperiencePageOut, OfficerAttachmentOut,
                                                 PublicExperienceOut, PublicExperiencePageOut)

OFFICER_PATH = "/api/v1/experiences/{}/attachments/{}"
PUBLIC_PATH = "/api/v1/public/experiences/{}/attachments/{}"
_detail_out, _page_out = ExperienceOut(), ExperiencePageOut()
_public_out, _public_page_out = PublicExperienceOut(), PublicExperiencePageOut()
_attachment_out = OfficerAttachmentOut()


def _attachments(session, ids: list[int]) -> dict[int, list[ExperienceAttachment]]:
    """Attachments of these experiences, without their bytes (the column is deferred)."""
    found: dict[int, list[ExperienceAttachment]] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(select(ExperienceAttachment)
                               .where(ExperienceAttachment.experience_id.in_(ids))
                               .order_by(ExperienceAttachment.id))
        for row in rows:
            found[row.experience_id].append(row)
    return found


def _attachment(a: ExperienceAttachment, path: str, officer: bool) -> dict:
    out = {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
           "sha256": a.sha256, "download": path.format(a.experience_id, a.id)}
    if officer:
        out.update(uploaded_by=a.uploaded_by, uploaded_at=a.uploaded_at)
    return out


def detail(db: Database, principal: Principal, experience_id: int) -> dict:
    with db.unit_of_work() as uow:
        e = records.load(uow, principal, experience_id)
        attachments = _attachments(uow.session, [e.id])[e.id]
        history = uow.session.scalars(select(ExperienceEvent).where(ExperienceEvent.experience_id == e.id)
                                      .order_by(ExperienceEvent.seq)).all()
        return _detail_out.dump({
            "id": e.id, "title": e.title, "text": e.text, "uscc": e.uscc, "enterprise_name": e.enterprise_name,
            "county": e.county, "county_name": county_name(e.county), "status": e.status,
            "status_name": rules.STATUS_NAMES.get(e.status, e.status),
            "consent": {"consented": e.consented, "document_ref": e.consent_document_ref,
                        "consented_on": e.consented_on, "recorded_by": e.consent_recorded_by,
                        "recorded_at": e.consent_recorded_at},
            "submitted_by": e.submitted_by, "submitted_at": e.submitted_at,
            "review_comment": e.review_comment, "reviewed_by": e.reviewed_by, "reviewed_at": e.reviewed_at,
            "published_on": e.published_on,
            "attachments": [_attachment(a, OFFICER_PATH, True) for a in attachments],
            "history": [{"action": h.action, "comment": h.comment, "actor": h.actor, "at": h.at}
                        for h in history]})


def listing(db: Database, principal: Principal, filters: dict) -> dict:
    """A page of experiences in the caller's scope, newest first."""
    county = filters.get("county")
    if principal.role == "county_officer":
        if county is not None:
            principal.require_county(county)
        county = principal.county
    query = select(Experience).order_by(Experience.id.desc())
    if county:
        query = query.where(Experience.county == county)
    for name in ("status", "uscc"):
        if filters.get(name):
            query = query.where(getattr(Experience, name) == filters[name])
    with db.unit_of_work() as uow:
        total, rows = page_of(uow.session, query, filters["page"], filters["page_size"])
        counts = {i: len(a) for i, a in _attachments(uow.session, [e.id for e in rows]).items()}
        items = [{"id": e.id, "title": e.title, "uscc": e.uscc, "enterprise_name": e.enterprise_name,
                  "county": e.county, "county_name": county_name(e.county), "status": e.status,
                  "status_name": rules.STATUS_NAMES.get(e.status, e.status), "consented": e.consented,
                  "submitted_at": e.submitted_at, "published_on": e.published_on,
                  "attachment_count": counts[e.id]} for e in rows]
    return _page_out.dump({"total": total, "page": filters["page"], "page_size": filters["page_size"],
                           "items": items})


def _public(e: Experience, attachments: list[ExperienceAttachment]) -> dict:
    return {"id": e.id, "title": e.title, "text": e.text, "enterprise_name": e.enterprise_name,
            "county": e.county, "county_name": county_name(e.county), "published_on": e.published_on,
            "attachments": [_attachment(a, PUBLIC_PATH, False) for a in attachments]}


def public_listing(db: Database, filters: dict) -> dict:
    query = (select(Experience).where(Experience.status == rules.PUBLISHED)
             .order_by(Experience.published_on.desc(), Experience.id.desc()))
    if filters.get("county"):
        query = query.where(Experience.county == filters["county"])
    if filters.get("year"):
        year = filters["year"]
        query = query.where(Experience.published_on >= date(year, 1, 1),
                            Experience.published_on < date(year + 1, 1, 1))
    with db.unit_of_work() as uow:
        total, rows = page_of(uow.session, query, filters["page"], filters["page_size"])
        attachments = _attachments(uow.session, [e.id for e in rows])
        items = [_public(e, attachments[e.id]) for e in rows]
    return _public_page_out.dump({"total": total, "page": filters["page"],
                                  "page_size": filters["page_size"], "items": items})


def public_detail(db: Database, experience_id: int) -> dict:
    with db.unit_of_work() as uow:
        e = uow.session.get(Experience, experience_id)
        if e is None or e.status != rules.PUBLISHED:  # unpublished is not there for the public
            raise records.not_found(experience_id)
        return _public_out.dump(_public(e, _attachments(uow.session, [e.id])[e.id]))


def attachment(db: Database, experience_id: int, attachment_id: int) -> dict:
    """One attachment as officers see it (just uploaded: the caller's scope was checked)."""
    with db.unit_of_work() as uow:
        a = uow.session.get(ExperienceAttachment, attachment_id)
        return _attachment_out.dump(_attachment(a, OFFICER_PATH, True))
