"""The decisions message the registry writes without marshmallow is the schema's dump."""
import json
import uuid
from datetime import date, datetime, timezone

from shared.contracts import DecisionBatchSchema
from services.registry.register.intake import decisions_wire


def test_decisions_wire_is_the_schemas_dump():
    answers = [
        {"filing_id": str(uuid.uuid4()), "version": 2, "county": "130921",
         "uscc": "91130921MA0000000X", "outcome": "accepted",
         "reasons": [{"code": "LATE", "message": "逾期报送"}],
         "findings": [{"code": "TRAINING_CERTIFICATE_UNVERIFIED", "article": "第六条",
                       "message": "培训合格证明尚未核验", "severity": "warning",
                       "added_on": "2026-12-03"}],
         "late": True, "days_late": 3, "deadline": date(2026, 3, 31),
         "decided_at": datetime(2026, 12, 3, 7, 0, 1, 123456, tzinfo=timezone.utc)},
        {"filing_id": str(uuid.uuid4()), "version": 1, "county": "130921",
         "uscc": "91130921MA0000001X", "outcome": "rejected", "reasons": [], "findings": [],
         "late": False, "days_late": 0, "deadline": None,
         "decided_at": datetime(2026, 12, 3, 7, 0, 1)},
    ]
    expected = DecisionBatchSchema().dump({"county": "130921", "decisions": answers})
    made = decisions_wire("130921", answers)
    assert made == expected
    assert json.dumps(made, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
