"""The read side of the county filing service: filings (list and detail), batches, the
current campaign and the city's notices, each shown only to whom access.py allows.
`detail` is also the answer of every writing use case, from its own transaction."""
from __future__ import annotations

from typing import Mapping

from sqlalchemy import func, or_, select

from shared import tracing
from shared.auth import Principal
from shared.clock import aware
from shared.contracts import CATEGORIES, CHANNELS, FILING_KINDS, OUTCOMES
from shared.errors import Forbidden, NotFound
from shared.messaging.outbox import written_and_sent
from shared.validators import ID_TYPE_NAMES

from services.filing import access, domain, notices
from services.filing.base import CountyUseCases, load_filing, open_campaign
from services.filing.models import Batch, Campaign, Decision, Filing, FilingVersion, Notice, Review
from services.filing.schemas import (BatchOut, CampaignOut, FilingDetailOut, FilingPageOut,
                                     NoticePageOut, as_date)


class FilingViews(CountyUseCases):
    def list_filings(self, principal: Principal, query: Mapping) -> dict:
        access.require_reader(principal, self.settings)
        conditions = []
        uscc = query.get("uscc")
        if principal.role == "enterprise":
            if uscc and uscc != principal.uscc:
                raise Forbidden("企业只能查看本企业的备案", code="AUTH_FORBIDDEN")
            uscc = principal.uscc
        if uscc:
            conditions.append(Filing.uscc == uscc)
        if query.get("status"):
            conditions.append(Filing.status.in_(query["status"]))
        if query.get("kind"):
            conditions.append(Filing.kind.in_(query["kind"]))
        for name in ("channel", "campaign_year", "category"):
            if query.get(name) is not None:
                conditions.append(getattr(Filing, name) == query[name])
        if query.get("batch_id"):
            conditions.append(Filing.batch_id == str(query["batch_id"]))
        if query.get("submitted_from"):
            conditions.append(Filing.submitted_to_county_on >= query["submitted_from"])
        if query.get("submitted_to"):
            conditions.append(Filing.submitted_to_county_on <= query["submitted_to"])
        if query.get("late") is not None:
            conditions.append(Filing.late.is_(True) if query["late"]
                              else Filing.late.is_not(True))
        page, page_size = query.get("page", 1), query.get("page_size", 50)
        with self.db.unit_of_work() as uow:
            s = uow.session
            total = s.execute(select(func.count()).select_from(Filing).where(*conditions)).scalar_one()
            items = s.execute(select(Filing).where(*conditions)
                              .order_by(Filing.created_at.desc(), Filing.id)
                              .offset((page - 1) * page_size).limit(page_size)).scalars().all()
            return FilingPageOut().dump({"items": [summary(f) for f in items], "total": total,
                                         "page": page, "page_size": page_size})

    def get(self, principal: Principal, filing_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            filing = load_filing(uow.session, filing_id)
            access.require_reader(principal, self.settings, filing)
            return detail(uow.session, filing)

    def trace(self, principal: Principal, filing_id: str) -> dict:
        """The hops this county saw of each version (shared/tracing.py): intake,
        pre-review, its outbox message written and published, the city's decisions as
        they arrived (with the shovel hop they came by). Officers only (the entrypoint
        admits no enterprise): a county's own, or a city-wide one."""
        access.require_reader(principal, self.settings)
        with self.db.unit_of_work() as uow:
            s = uow.session
            load_filing(s, filing_id)
            versions = s.execute(select(FilingVersion.version, FilingVersion.submitted_at,
                                        FilingVersion.forward_message_id)
                                 .where(FilingVersion.filing_id == filing_id)).all()
            reviews = s.execute(select(Review.version, Review.decision, Review.reviewed_at)
                                .where(Review.filing_id == filing_id)).all()
            decisions = s.execute(select(Decision.version, Decision.outcome, Decision.applied,
                                         Decision.received_at, Decision.message_id,
                                         Decision.shovelled_at, Decision.shovel)
                                  .where(Decision.filing_id == filing_id)).all()
            outbox = written_and_sent(s, (v.forward_message_id for v in versions))
        hops = []
        for v in versions:
            hops.append(tracing.Hop("submitted", v.version, aware(v.submitted_at)))
            written, sent = outbox.get(v.forward_message_id, (None, None))
            if written is not None:
                hops.append(tracing.Hop("outbox_written", v.version, written, v.forward_message_id))
            if sent is not None:
                hops.append(tracing.Hop("published", v.version, sent, v.forward_message_id))
        for r in reviews:
            hops.append(tracing.Hop("reviewed", r.version, aware(r.reviewed_at),
                                    detail=domain.REVIEW_DECISIONS.get(r.decision, r.decision)))
        for d in decisions:
            if d.shovelled_at is not None:
                hops.append(tracing.Hop("decision_shovelled", d.version, aware(d.shovelled_at),
                                        d.message_id, by=d.shovel, precision_s=1))
            outcome = OUTCOMES.get(d.outcome, d.outcome)
            hops.append(tracing.Hop("decision_applied", d.version, aware(d.received_at), d.message_id,
                                    detail=outcome if d.applied else f"{outcome}（已记录，未改变备案状态）"))
        return tracing.answer(filing_id, site=tracing.COUNTY, county=self.county, hops=hops)

    def get_batch(self, principal: Principal, batch_id: str) -> dict:
        access.require_reader(principal, self.settings)
        if principal.role == "enterprise":
            raise Forbidden("企业无权查看集中报送批次", code="AUTH_FORBIDDEN")
        with self.db.unit_of_work() as uow:
            batch = uow.session.get(Batch, str(batch_id))
            if batch is None:
                raise NotFound("报送批次不存在", code="BATCH_NOT_FOUND")
            return BatchOut().dump({
                "batch_id": batch.id, "county": batch.county, "count": batch.count,
                "chunks": batch.chunks, "chunk_size": None, "campaign_years": batch.campaign_years,
                "created_at": aware(batch.created_at), "created_by": batch.created_by})

    def current_campaign(self) -> dict:
        with self.db.unit_of_work() as uow:
            window = open_campaign(uow.session, self.clock())
            if window is None:
                raise NotFound("当前没有正在进行的首席质量官集中报送活动", code="CAMPAIGN_NOT_OPEN")
            campaign = uow.session.get(Campaign, window.year)
            return CampaignOut().dump({
                "year": campaign.year, "notice_number": campaign.notice_number,
                "title": campaign.title, "text": campaign.text, "opens_on": campaign.opens_on,
                "closes_on": campaign.closes_on, "status": campaign.status})

    def list_notices(self, principal: Principal, query: Mapping) -> dict:
        """County officers see all of the county's notices; an enterprise those addressed
        to it and those addressed to everyone."""
        access.require_reader(principal, self.settings)
        conditions = []
        if principal.role == "enterprise":
            if query.get("uscc") not in (None, principal.uscc):
                raise Forbidden("企业只能查看发给本企业的通知", code="AUTH_FORBIDDEN")
            conditions.append(or_(Notice.audience == "all",
                                  (Notice.audience == "enterprise") & (Notice.uscc == principal.uscc)))
        if query.get("uscc"):
            conditions.append(Notice.uscc == query["uscc"])
        kind = query.get("type")
        if kind:
            conditions.append(Notice.type.startswith(kind, autoescape=True) if kind.endswith(".")
                              else Notice.type == kind)
        page, page_size = query.get("page", 1), query.get("page_size", 50)
        with self.db.unit_of_work() as uow:
            s = uow.session
            total = s.execute(select(func.count()).select_from(Notice).where(*conditions)).scalar_one()
            rows = s.execute(select(Notice).where(*conditions)
                             .order_by(Notice.received_at.desc(), Notice.id.desc())
                             .offset((page - 1) * page_size).limit(page_size)).scalars().all()
            items = [notice_view(n) for n in rows]
        return NoticePageOut().dump({"items": items, "total": total, "page": page,
                                     "page_size": page_size})


# -- one row as shown --------------------------------------------------------------------------

def detail(session, filing: Filing, *, versions=None, reviews=None, decisions=None) -> dict:
    """The filing with its versions, reviews and decisions; a writing use case passes
    what it already holds and answers from its own transaction (no second round)."""
    if versions is None:
        versions = session.execute(select(FilingVersion).where(FilingVersion.filing_id == filing.id)
                                   .order_by(FilingVersion.version)).scalars().all()
    if reviews is None:
        reviews = session.execute(select(Review).where(Review.filing_id == filing.id)
                                  .order_by(Review.reviewed_at, Review.id)).scalars().all()
    if decisions is None:
        decisions = session.execute(select(Decision).where(Decision.filing_id == filing.id)
                                    .order_by(Decision.received_at, Decision.id)).scalars().all()
    views = [version_view(v) for v in versions]
    current = views[-1] if views else None
    applied = [d for d in decisions if d.version == filing.version and d.applied]
    return FilingDetailOut().dump({
        **summary(filing),
        "findings": current["findings"] if current else [],
        "current": current,
        "versions": views,
        "reviews": [{"version": r.version, "decision": r.decision,
                     "decision_name": domain.REVIEW_DECISIONS.get(r.decision, r.decision),
                     "comment": r.comment, "reviewer": r.reviewer,
                     "reviewed_at": aware(r.reviewed_at)} for r in reviews],
        "decision": decision_view(applied[-1]) if applied else None,
        "decisions": [decision_view(d) for d in decisions],
    })


def summary(f: Filing) -> dict:
    return {
        "id": f.id, "county": f.county, "uscc": f.uscc, "enterprise_name": f.enterprise_name,
        "category": f.category, "category_name": CATEGORIES.get(f.category, f.category),
        "kind": f.kind, "kind_name": FILING_KINDS.get(f.kind, f.kind),
        "channel": f.channel, "channel_name": CHANNELS.get(f.channel, f.channel),
        "campaign_year": f.campaign_year, "status": f.status,
        "status_name": domain.status_name(f.status), "version": f.version,
        "cqo_name": f.cqo_name, "cqo_id_masked": f.cqo_id_masked,
        "submitted_to_county_on": f.submitted_to_county_on, "created_at": aware(f.created_at),
        "updated_at": aware(f.updated_at), "approved_on": f.approved_on,
        "forwarded_at": aware(f.forwarded_at), "batch_id": f.batch_id,
        "decision_outcome": f.decision_outcome, "decided_at": aware(f.decided_at),
        "late": f.late, "days_late": f.days_late,
    }


def version_view(v: FilingVersion) -> dict:
    data = v.data
    enterprise = dict(data["enterprise"])
    enterprise["category_name"] = CATEGORIES.get(enterprise.get("category"), "")
    cqo = {**data["cqo"], "id_type": v.id_type, "id_type_name": ID_TYPE_NAMES.get(v.id_type, ""),
           "id_masked": v.id_masked}
    return {"version": v.version, "submitted_at": aware(v.submitted_at),
            "submitted_by": v.submitted_by, "enterprise": enterprise, "cqo": cqo,
            "appointment": data["appointment"], "effective_on": data.get("effective_on"),
            "end_reason": data.get("end_reason"), "findings": v.findings or []}


def decision_view(d: Decision) -> dict:
    return {"version": d.version, "outcome": d.outcome,
            "outcome_name": OUTCOMES.get(d.outcome, d.outcome), "reasons": d.reasons or [],
            "findings": d.findings or [], "late": d.late, "days_late": d.days_late,
            "deadline": as_date(d.deadline), "decided_at": aware(d.decided_at),
            "received_at": aware(d.received_at), "applied": d.applied}


def notice_view(n: Notice) -> dict:
    payload = n.payload or {}
    name = payload.get("enterprise_name")  # the city's text: shown only when it is one
    return {"id": n.id, "type": n.type, "type_name": notices.type_name(n.type),
            "audience": n.audience, "audience_name": notices.AUDIENCES.get(n.audience, n.audience),
            "uscc": n.uscc, "enterprise_name": name if isinstance(name, str) else None,
            "title": n.title, "message": n.message, "received_at": aware(n.received_at),
            "data": payload}
