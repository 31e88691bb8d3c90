"""How values JSON does not know become JSON text (responses, bulk-insert documents,
the lookup's document): dates and times in ISO 8601, decimals and ids as strings."""
from __future__ import annotations

import datetime as _dt
import decimal
import uuid


def json_default(value):
    """`default=` for json.dumps."""
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
