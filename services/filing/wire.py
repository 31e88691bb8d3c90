"""The bodies of what this county sends the city, in the form of shared/contracts.py: a
filing version, a batch chunk, a withdrawal request, a campaign progress snapshot."""
from __future__ import annotations

from datetime import datetime

from shared.auth import Principal
from shared.contracts import (PROGRESS_TYPE, WITHDRAWAL_TYPE, CampaignProgressSchema,
                              FilingBatchSchema, FilingMessageSchema, WithdrawalRequestSchema)
from shared.messaging.outbox import RawJson

from services.filing.models import Filing, FilingVersion

_progress_schema = CampaignProgressSchema()


def wire_message(filing: Filing, version: FilingVersion) -> dict:
    """The FilingMessageSchema body of one approved version (no clear ID number)."""
    data = version.data
    cqo = data["cqo"]
    message = {
        "filing_id": filing.id, "version": version.version, "county": filing.county,
        "kind": filing.kind, "channel": filing.channel, "campaign_year": filing.campaign_year,
        "submitted_to_county_on": filing.submitted_to_county_on.isoformat(),
        "approved_on": filing.approved_on.isoformat(), "approved_by": filing.approved_by,
        "enterprise": dict(data["enterprise"]),
        "cqo": {
            "name": cqo["name"], "id_type": version.id_type, "id_hmac": version.id_hmac,
            "id_sealed": version.id_sealed, "id_masked": version.id_masked,
            **{k: cqo.get(k) for k in (
                "phone", "email", "position", "is_decision_level", "education_level",
                "title_level", "years_quality_work", "training_certificate",
                "attests_law_knowledge", "attests_organisational_ability")},
        },
        "appointment": dict(data["appointment"]),
        "effective_on": data.get("effective_on"),
        "end_reason": data.get("end_reason"),
        "findings": list(version.findings or []),
    }
    schema = FilingMessageSchema()
    # load checks the contract where the message is made; dump gives its exact wire form
    return schema.dump(schema.load(message))


def batch_chunk(batch_id: str, county: str, number: int, chunks: int, wires: list[str]) -> RawJson:
    """One FilingBatchSchema chunk; the filings are the wire documents fixed at approval,
    as stored (JSON text), never decoded and encoded again."""
    return RawJson.object({"batch_id": batch_id, "county": county, "chunk": number,
                           "chunks": chunks}, {"filings": wires})


def batch_message_check(body: dict) -> None:
    """Contract check of a batch chunk (tests use it on what was published)."""
    FilingBatchSchema().load(body)
    for filing in body["filings"]:
        FilingMessageSchema().load(filing)


def withdrawal_request(filing: Filing, principal: Principal, now: datetime) -> dict:
    """The WithdrawalRequestSchema body asking the city to withdraw the current version."""
    schema = WithdrawalRequestSchema()
    return schema.dump(schema.load({
        "type": WITHDRAWAL_TYPE, "filing_id": filing.id, "version": filing.version,
        "county": filing.county, "uscc": filing.uscc, "requested_at": now.isoformat(),
        "requested_by": principal.subject}))


def progress_snapshot(county: str, year: int, as_of: datetime, counts: dict[str, int]) -> dict:
    """The CampaignProgressSchema body of one campaign year's counts."""
    return _progress_schema.dump({"type": PROGRESS_TYPE, "county": county, "year": year,
                                  "as_of": as_of, "counts": counts})
