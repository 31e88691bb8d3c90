"""The CQO's ID number stays at this county: encrypted at rest, and only a keyed hash,
a copy sealed for the city and a masked form leave the intake (docs/architecture.md,
Identity protection)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from shared.personal_data import id_hmac, mask_id, seal

from services.filing.base import jsonable
from services.filing.settings import Settings


@dataclass(frozen=True)
class ProtectedId:
    id_type: str
    encrypted: str
    hmac: str
    sealed: str
    masked: str


def protect(settings: Settings, cqo: Mapping) -> ProtectedId:
    """The clear number stays here: encrypted at rest, keyed hash and sealed copy
    for the city, masked for display."""
    number, id_type = cqo["id_number"], cqo["id_type"]
    s = settings
    return ProtectedId(id_type, s.cipher.encrypt(number), id_hmac(s.hmac_key, id_type, number),
                       seal(s.city_public_key, number), mask_id(number))


def stored_form(data: Mapping) -> dict:
    """The intake form as a version keeps it: without the clear ID number."""
    stored = jsonable(dict(data))
    stored["cqo"] = {k: v for k, v in stored["cqo"].items() if k != "id_number"}
    return stored
