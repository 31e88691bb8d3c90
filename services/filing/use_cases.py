"""Write use cases of the county filing service: intake, corrected resubmission,
withdrawal, pre-review with proactive forwarding, and batch submission.

Each use case is one unit of work: it reads, asks the domain, writes (and appends its
outbox messages) and commits once, so a failure anywhere writes nothing; a concurrent
submission for the same enterprise comes back as the 409 of the one open filing. What
is read lives in views.py, what the city sends in inbound.py, the message bodies in
wire.py; the entrypoints in service.py only translate in and out of these calls.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Callable, Mapping

from sqlalchemy import Text, and_, cast, select, update
from sqlalchemy.exc import IntegrityError

from shared.auth import Principal
from shared.contracts import (FILING_KINDS, FILINGS_EXCHANGE, WITHDRAWAL_TYPE, filing_routing_key,
                              withdrawal_message_id, withdrawal_routing_key)
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.messaging.outbox import Outbox

from services.filing import access, announcements, domain, identity, wire
from services.filing.base import CountyUseCases, in_chunks, load_filing, open_campaign
from services.filing.models import Batch, Filing, FilingVersion, Review
from services.filing.schemas import BatchOut
from services.filing.views import detail

log = logging.getLogger(__name__)


class FilingApp(CountyUseCases):
    # -- intake -------------------------------------------------------------------------
    def _open_filing(self, session, uscc: str, exclude: str | None = None) -> Filing | None:
        stmt = select(Filing).where(Filing.uscc == uscc, Filing.status.in_(domain.OPEN_STATUSES))
        if exclude:
            stmt = stmt.where(Filing.id != exclude)
        return session.execute(stmt.limit(1)).scalar_one_or_none()

    def _filed(self, session, uscc: str, exclude: str | None = None) -> bool:
        stmt = (select(Filing.kind).where(Filing.uscc == uscc, Filing.status == domain.ACCEPTED)
                .order_by(Filing.decided_at.desc(), Filing.updated_at.desc()).limit(1))
        if exclude:
            stmt = stmt.where(Filing.id != exclude)
        return domain.has_filed_cqo(session.execute(stmt).scalar_one_or_none())

    def _findings(self, kind: str, data: Mapping, filed: bool) -> list[dict]:
        findings = domain.intake_findings(kind, data["cqo"], data["appointment"], filed,
                                          self.settings.rules)
        blocking = [f for f in findings if f.blocking]
        if blocking:
            errors: dict[str, list[str]] = {}
            for f in blocking:
                errors.setdefault(domain.FINDING_FIELDS.get(f.code, "cqo"), []).append(f.message)
            raise ValidationFailed(
                "首席质量官不符合任职条件，备案未提交：" + "；".join(f.message for f in blocking),
                code="QUALIFICATION_NOT_MET",
                details={"findings": [f.to_dict() for f in findings], "errors": errors})
        return [f.to_dict() for f in findings]

    def _new_version(self, filing_id: str, version: int, principal: Principal, data: Mapping,
                     protected: identity.ProtectedId, findings: list[dict],
                     now: datetime) -> FilingVersion:
        return FilingVersion(
            filing_id=filing_id, version=version, submitted_at=now, submitted_by=principal.subject,
            data=identity.stored_form(data), id_type=protected.id_type,
            id_encrypted=protected.encrypted, id_hmac=protected.hmac, id_sealed=protected.sealed,
            id_masked=protected.masked, findings=findings)

    def submit(self, principal: Principal, data: Mapping) -> dict:
        """POST /filings: art. 6 check, consistency rules, first version, status 待预审."""
        uscc = data["enterprise"]["uscc"]
        access.require_enterprise(principal, self.settings, uscc)
        access.check_own_county(data, self.settings)
        protected = identity.protect(self.settings, data["cqo"])  # CPU only: outside the transaction
        filing_id, now = str(uuid.uuid4()), self.now()
        with self.db.unit_of_work() as uow:
            s = uow.session
            existing = self._open_filing(s, uscc)
            if existing is not None:
                raise domain.open_filing_conflict(existing.id, existing.status)
            filed = self._filed(s, uscc)
            domain.check_kind_allowed(data["kind"], filed)
            findings = self._findings(data["kind"], data, filed)
            channel, year = domain.channel_for(open_campaign(s, self.clock()))
            enterprise = data["enterprise"]
            filing = Filing(
                id=filing_id, county=self.county, uscc=uscc, enterprise_name=enterprise["name"],
                category=enterprise["category"], kind=data["kind"], channel=channel,
                campaign_year=year, status=domain.SUBMITTED, version=1,
                submitted_to_county_on=domain.first_submission_day(None, self.clock()),
                created_at=now, updated_at=now, created_by=principal.subject,
                cqo_name=data["cqo"]["name"], cqo_id_masked=protected.masked)
            s.add(filing)
            version = self._new_version(filing_id, 1, principal, data, protected, findings, now)
            # the parent row is flushed first (filing_versions references it); on
            # PostgreSQL a concurrent submission surfaces at that flush
            self._commit_or_conflict(uow, uscc, lambda: (s.flush(), s.add(version)))
            log.info("filing %s submitted (%s, %s, channel %s)", filing_id, data["kind"], uscc, channel,
                     extra={"filing_id": str(filing_id)})
            return detail(s, filing, versions=[version], reviews=[], decisions=[])

    def _commit_or_conflict(self, uow, uscc: str, before: Callable[[], object] | None = None) -> None:
        try:
            if before is not None:
                before()
            uow.commit()
        except IntegrityError:
            # a concurrent submission for the same enterprise won the unique index
            uow.rollback()
            with self.db.unit_of_work() as again:
                existing = self._open_filing(again.session, uscc)
                if existing is None:
                    raise
                # read inside: leaving the unit of work rolls back, expiring the object
                raise domain.open_filing_conflict(existing.id, existing.status) from None

    def resubmit(self, principal: Principal, filing_id: str, data: Mapping) -> dict:
        """PUT /filings/{id}: a returned (or refused) filing corrected as a new version."""
        uscc = data["enterprise"]["uscc"]
        access.require_enterprise(principal, self.settings, uscc)
        access.check_own_county(data, self.settings)
        protected = identity.protect(self.settings, data["cqo"])
        now = self.now()
        with self.db.unit_of_work() as uow:
            s = uow.session
            filing = load_filing(s, filing_id, lock=True)
            if filing.uscc != uscc:
                raise Forbidden("企业只能修改本企业的备案", code="AUTH_FORBIDDEN")
            domain.check_resubmittable(filing.status)
            if data["kind"] != filing.kind:
                raise ValidationFailed(
                    f"修改重报不能改变备案类型（原为“{FILING_KINDS[filing.kind]}”）；"
                    "如需其他类型的备案，请撤回后重新提交", code="FILING_KIND_FIXED", field="kind")
            if filing.status == domain.REJECTED:  # it becomes open again
                existing = self._open_filing(s, uscc, exclude=filing.id)
                if existing is not None:
                    raise domain.open_filing_conflict(existing.id, existing.status)
            filed = self._filed(s, uscc, exclude=filing.id)
            domain.check_kind_allowed(data["kind"], filed)
            findings = self._findings(data["kind"], data, filed)
            version = filing.version + 1
            s.add(self._new_version(filing.id, version, principal, data, protected, findings, now))
            enterprise = data["enterprise"]
            filing.version, filing.status, filing.updated_at = version, domain.SUBMITTED, now
            filing.enterprise_name, filing.category = enterprise["name"], enterprise["category"]
            filing.cqo_name, filing.cqo_id_masked = data["cqo"]["name"], protected.masked
            # submitted_to_county_on stays: art. 14 counts from the first submission
            filing.approved_on = filing.approved_by = filing.forwarded_at = filing.batch_id = None
            filing.decision_outcome = filing.decided_at = filing.late = filing.days_late = None
            self._commit_or_conflict(uow, uscc)
            log.info("filing %s resubmitted as version %d", filing_id, version, extra={"filing_id": str(filing_id)})
            return detail(s, filing)

    def withdraw(self, principal: Principal, filing_id: str) -> dict:
        """POST /filings/{id}/withdraw: before approval the county withdraws it; while the
        city holds it for its predecessor the county asks the city (filing.<county>.withdraw,
        through the outbox, with the status) and shows 撤回申请中 until the city answers."""
        principal.require_role("enterprise")
        with self.db.unit_of_work() as uow:
            filing = load_filing(uow.session, filing_id, lock=True)
            access.require_enterprise(principal, self.settings, filing.uscc)
            status, now = domain.after_withdraw(filing.status), self.now()
            if status == filing.status:
                return detail(uow.session, filing)  # already asked: nothing to send again
            if status == domain.WITHDRAWING:
                Outbox.add(uow, FILINGS_EXCHANGE, withdrawal_routing_key(self.county),
                           wire.withdrawal_request(filing, principal, now),
                           headers={"x-cqo-type": WITHDRAWAL_TYPE},
                           message_id=withdrawal_message_id(filing.id, filing.version))
                log.info("filing %s v%d: withdrawal asked of the city", filing.id, filing.version,
                         extra={"filing_id": str(filing.id)})
            filing.status, filing.updated_at = status, now
            uow.commit()
            return detail(uow.session, filing)

    # -- pre-review and forwarding --------------------------------------------------------
    def review(self, principal: Principal, filing_id: str, decision: str,
               comment: str | None) -> dict:
        """POST /filings/{id}/review (art. 12). Approving a proactive filing forwards it in
        the same transaction (art. 14): the outbox row commits with the status; returning
        one announces `filing.<county>.returned` the same way."""
        access.require_officer(principal, self.settings)
        now, day = self.now(), self.clock()
        with self.db.unit_of_work() as uow:
            s = uow.session
            filing = load_filing(s, filing_id, lock=True)
            status = domain.after_review(filing.status, decision, filing.channel)
            s.add(Review(filing_id=filing.id, version=filing.version, decision=decision,
                         comment=comment, reviewer=principal.subject, reviewed_at=now))
            if decision == "approve":
                version = s.get(FilingVersion, (filing.id, filing.version))
                filing.approved_on, filing.approved_by = day, principal.subject
                version.wire = wire.wire_message(filing, version)
                if status == domain.FORWARDED:
                    version.forward_message_id = Outbox.add(
                        uow, FILINGS_EXCHANGE, filing_routing_key(self.county, filing.kind),
                        version.wire, headers={"x-cqo-type": "filing"},
                        message_id=domain.filing_message_id(filing.id, filing.version))
                    filing.forwarded_at = now
            else:  # the enterprise hears of it from the city's notify service
                announcements.filing_returned(uow, filing, s.get(FilingVersion, (filing.id, filing.version)),
                                              comment=comment, day=day, now=now)
            filing.status, filing.updated_at = status, now
            uow.commit()
            log.info("filing %s reviewed: %s -> %s", filing_id, decision, status)
            return detail(s, filing)

    def submit_batch(self, principal: Principal, filing_ids: list[str] | None = None,
                     campaign_year: int | None = None) -> dict:
        """POST /batches (集中报送, art. 13): all approved campaign filings (or the listed
        ones) as chunked FilingBatchSchema messages, written with the status change."""
        access.require_officer(principal, self.settings)
        batch_id, now = str(uuid.uuid4()), self.now()
        size = self.settings.chunk_size
        with self.db.unit_of_work() as uow:
            s = uow.session
            # the wire documents stay text: they are forwarded as stored, never decoded
            base = (select(Filing.id, Filing.status, Filing.channel, Filing.campaign_year,
                           cast(FilingVersion.wire, Text).label("wire"))
                    .join(FilingVersion, and_(FilingVersion.filing_id == Filing.id,
                                              FilingVersion.version == Filing.version))
                    .order_by(Filing.submitted_to_county_on, Filing.created_at, Filing.id)
                    .with_for_update(of=Filing))
            if filing_ids:
                rows = []
                for ids in in_chunks(filing_ids):
                    rows.extend(s.execute(base.where(Filing.id.in_(ids))).all())
                self._check_batch_selection(filing_ids, rows, campaign_year)
            else:
                stmt = base.where(Filing.status == domain.APPROVED,
                                  Filing.channel == domain.CAMPAIGN)
                if campaign_year is not None:
                    stmt = stmt.where(Filing.campaign_year == campaign_year)
                rows = s.execute(stmt).all()
            if not rows:
                raise ValidationFailed("没有可以集中报送的备案：集中报送只报送“预审通过”的集中报送备案",
                                       code="BATCH_EMPTY")
            unsealed = [r.id for r in rows if r.wire is None]
            if unsealed:  # approval writes the wire document; without it nothing can go
                raise Conflict("以下备案缺少报送内容，整批未报送，请重新预审后再报送："
                               + "、".join(unsealed[:5]), code="BATCH_WIRE_MISSING",
                               details={"filing_ids": unsealed})
            chunks = list(domain.chunked(rows, size))
            for number, chunk in enumerate(chunks, start=1):
                message_id = Outbox.add(
                    uow, FILINGS_EXCHANGE, filing_routing_key(self.county, domain.BATCH_ROUTING_KIND),
                    wire.batch_chunk(batch_id, self.county, number, len(chunks), [r.wire for r in chunk]),
                    headers={"x-cqo-type": "filing.batch"},
                    message_id=domain.batch_message_id(batch_id, number))
                ids = [r.id for r in chunk]
                # the current version of each: the one the chunk carries (trace)
                s.execute(update(FilingVersion)
                          .where(FilingVersion.filing_id.in_(ids),
                                 FilingVersion.version == select(Filing.version)
                                 .where(Filing.id == FilingVersion.filing_id).scalar_subquery())
                          .values(forward_message_id=message_id)
                          .execution_options(synchronize_session=False))
                s.execute(update(Filing)
                          .where(Filing.id.in_(ids), Filing.status == domain.APPROVED)
                          .values(status=domain.FORWARDED, forwarded_at=now, batch_id=batch_id,
                                  updated_at=now)
                          .execution_options(synchronize_session=False))
            years = sorted({r.campaign_year for r in rows if r.campaign_year is not None})
            s.add(Batch(id=batch_id, county=self.county, created_at=now,
                        created_by=principal.subject, count=len(rows), chunks=len(chunks),
                        campaign_years=years))
            uow.commit()
        log.info("batch %s: %d filings in %d chunks", batch_id, len(rows), len(chunks))
        return BatchOut().dump({"batch_id": batch_id, "county": self.county, "count": len(rows),
                                "chunks": len(chunks), "chunk_size": size,
                                "campaign_years": years, "created_at": now,
                                "created_by": principal.subject})

    @staticmethod
    def _check_batch_selection(filing_ids: list[str], rows, campaign_year: int | None) -> None:
        found = {r.id: r for r in rows}
        errors: dict[str, list[str]] = {}
        for index, fid in enumerate(filing_ids):
            row = found.get(fid)
            if row is None:
                errors[f"filing_ids.{index}"] = [f"备案 {fid} 不存在（或不属于本县）"]
                continue
            reason = domain.check_batchable(row.status, row.channel)
            if reason is None and campaign_year is not None and row.campaign_year != campaign_year:
                reason = f"该备案属于{row.campaign_year}年度集中报送，不属于{campaign_year}年度"
            if reason:
                errors[f"filing_ids.{index}"] = [f"备案 {fid}：{reason}"]
        if errors:
            raise Conflict("所列备案中有不能集中报送的，整批未报送：" + "；".join(
                m for messages in list(errors.values())[:5] for m in messages),
                code="BATCH_NOT_ALLOWED", details={"errors": errors})
