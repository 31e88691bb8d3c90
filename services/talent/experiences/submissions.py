"""A county submits a typical experience of one of its enterprises, corrects it while the
city has not approved it, and records the enterprise's consent to publication (art. 10:
the enterprise's secrets are published only with its consent)."""
from __future__ import annotations

from shared import clock
from shared.auth import Principal
from shared.db import UnitOfWork
from services.talent.domain import experiences as rules
from services.talent.experiences import records
from services.talent.experiences.models import Experience


def _apply_consent(experience: Experience, consent: dict, principal: Principal) -> None:
    rules.check_consent(consent["consented"], consent.get("document_ref"), consent.get("consented_on"),
                        clock.today())
    experience.consented = consent["consented"]
    experience.consent_document_ref = consent.get("document_ref")
    experience.consented_on = consent.get("consented_on")
    experience.consent_recorded_by = records.actor(principal)
    experience.consent_recorded_at = clock.now_utc()


def submit(uow: UnitOfWork, principal: Principal, data: dict) -> int:
    """A county officer submits for an enterprise of their own county."""
    principal.require_role("county_officer")
    county = data.get("county") or principal.county
    principal.require_county(county)
    now = clock.now_utc()
    experience = Experience(county=county, uscc=data["uscc"], enterprise_name=data["enterprise_name"],
                            title=data["title"], text=data["text"], status=rules.SUBMITTED,
                            consented=False, submitted_by=records.actor(principal), submitted_at=now,
                            updated_at=now)
    if data.get("consent"):
        _apply_consent(experience, data["consent"], principal)
    uow.session.add(experience)
    uow.flush()
    records.record(uow, experience, "submitted", principal)
    if data.get("consent"):
        records.record(uow, experience, "consent", principal, _consent_note(experience))
    uow.commit()
    return experience.id


def edit(uow: UnitOfWork, principal: Principal, experience_id: int, changes: dict) -> None:
    """The county corrects its experience before approval; a returned one is submitted again."""
    principal.require_role("county_officer")
    experience = records.load(uow, principal, experience_id, lock=True)
    rules.require_editable(experience.status)
    for name, value in changes.items():
        setattr(experience, name, value)
    resubmitted = experience.status == rules.RETURNED
    experience.status = rules.status_after_edit(experience.status)
    records.record(uow, experience, "resubmitted" if resubmitted else "edited", principal)
    uow.commit()


def record_consent(uow: UnitOfWork, principal: Principal, experience_id: int, consent: dict) -> None:
    """Consent recorded or withdrawn; withdrawn, a published experience leaves the public list."""
    experience = records.load(uow, principal, experience_id, lock=True)
    _apply_consent(experience, consent, principal)
    records.record(uow, experience, "consent", principal, _consent_note(experience))
    if experience.status == rules.PUBLISHED and not experience.consented:
        experience.status, experience.published_on = rules.APPROVED, None
        records.record(uow, experience, rules.UNPUBLISH, principal, "企业撤回公开同意，自动撤销发布")
    uow.commit()


def _consent_note(experience: Experience) -> str:
    evidence = "，".join(x for x in (experience.consent_document_ref,
                                     experience.consented_on and experience.consented_on.isoformat()) if x)
    return ("企业同意公开" if experience.consented else "企业不同意公开") + (f"（{evidence}）" if evidence else "")
