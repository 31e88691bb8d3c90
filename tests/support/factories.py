"""Valid test and benchmark data: enterprises, CQOs and filing messages as a county sends them."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from shared.contracts import FilingMessageSchema
from shared.personal_data import id_hmac, mask_id, seal
from shared.validators.person_id import make_resident_id
from shared.validators.uscc import make_uscc

_ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # the USCC alphabet
_filing_schema = FilingMessageSchema()


def uscc_for(county: str, n: int) -> str:
    """A deterministic valid USCC: the n-th enterprise of a county."""
    body = ""
    value = n
    for _ in range(7):
        value, digit = divmod(value, len(_ORG_CHARS))
        body = _ORG_CHARS[digit] + body
    return make_uscc("9", "1", county, "M" + body)


def resident_id_for(n: int, division: str = "130921") -> str:
    birth = date(1960, 1, 1) + timedelta(days=n % 12000)
    return make_resident_id(division, birth, n % 1000)


def cqo(n: int, *, hmac_key: str, city_public_key: str, **overrides) -> dict:
    number = resident_id_for(n)
    data = {
        "name": f"质量官{n}", "id_type": "resident_id",
        "id_hmac": id_hmac(hmac_key, "resident_id", number),
        "id_sealed": seal(city_public_key, number), "id_masked": mask_id(number),
        "phone": "13800000000", "email": f"cqo{n}@example.cn", "position": "副总经理",
        "is_decision_level": True, "education_level": "bachelor", "title_level": "intermediate",
        "years_quality_work": 5, "training_certificate": f"CZ-PX-{n:06d}",
        "attests_law_knowledge": True, "attests_organisational_ability": True,
    }
    data.update(overrides)
    return data


def filing_message(*, county: str, uscc: str, person: int, hmac_key: str, city_public_key: str,
                   kind: str = "establishment", version: int = 1, filing_id: str | None = None,
                   appointed_on: date = date(2026, 1, 5), submitted: date = date(2026, 1, 20),
                   effective_on: date | None = None, channel: str = "proactive",
                   category: str = "industrial_above_scale", cqo_overrides: dict | None = None,
                   enterprise_name: str | None = None) -> dict:
    """A FilingMessageSchema document exactly as a county's relay publishes it."""
    if kind in ("change", "end") and effective_on is None:
        effective_on = appointed_on
    return _filing_schema.dump({
        "filing_id": filing_id or str(uuid.uuid4()), "version": version, "county": county,
        "kind": kind, "channel": channel, "campaign_year": 2026 if channel == "campaign" else None,
        "submitted_to_county_on": submitted, "approved_on": submitted, "approved_by": "县局预审员",
        "enterprise": {"uscc": uscc, "name": enterprise_name or f"沧州测试企业{uscc[-6:]}有限公司",
                       "county": county, "category": category},
        "cqo": cqo(person, hmac_key=hmac_key, city_public_key=city_public_key, **(cqo_overrides or {})),
        "appointment": {"appointed_by": "王总经理", "appointed_by_top_manager": True,
                        "appointed_on": appointed_on, "letter_number": f"任字〔2026〕{person}号",
                        "letter_date": appointed_on, "letter_sha256": None,
                        "term_end": appointed_on + relativedelta(years=3)},
        "effective_on": effective_on, "end_reason": None, "findings": [],
    })
