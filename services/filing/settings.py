"""The county filing service's settings: read and checked when the service is built or
its container starts, so a bad value stops the start instead of failing a request."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from shared.contracts import jurisdiction, use_jurisdiction
from shared.domain.qualification import RuleSet, rules_from_config
from shared.errors import ValidationFailed
from shared.keys import Keys
from shared.personal_data import IdCipher
from shared.validators import Jurisdiction

DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 1000  # FilingBatchSchema's limit


@dataclass(frozen=True)
class Settings:
    county: str
    county_name: str
    hmac_key: str
    city_public_key: str
    cipher: IdCipher = field(repr=False)
    rules: RuleSet = field(default_factory=RuleSet)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_body_bytes: int = 64 * 1024
    batch_max_body_bytes: int = 2 * 1024 * 1024

    @property
    def decisions_consumer(self) -> str:
        return f"filing_{self.county}.decisions"

    @property
    def notices_consumer(self) -> str:
        return f"filing_{self.county}.notices"

    @classmethod
    def from_config(cls, config: Mapping) -> "Settings":
        county = check_county_code(config)
        keys = Keys(dict(config))
        chunk_size = int(config.get("BATCH_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE)
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"BATCH_CHUNK_SIZE must be between 1 and {MAX_CHUNK_SIZE}")
        return cls(
            county=county, county_name=jurisdiction().name(county),
            hmac_key=keys.get("ID_HMAC_KEY"), city_public_key=keys.get("CITY_PUBLIC_KEY"),
            cipher=keys.id_cipher(),
            rules=rules_from_config(config),
            chunk_size=chunk_size,
            max_body_bytes=int(config.get("MAX_BODY_BYTES") or 64 * 1024),
            batch_max_body_bytes=int(config.get("BATCH_MAX_BODY_BYTES") or 2 * 1024 * 1024))


def check_county_code(config: Mapping) -> str:
    """COUNTY_CODE from config, checked against the deployment's jurisdiction."""
    if config.get("JURISDICTION_CSV"):
        use_jurisdiction(Jurisdiction.from_csv(config["JURISDICTION_CSV"]))
    county = str(config.get("COUNTY_CODE") or "").strip()
    if not county:
        raise ValueError("备案服务必须配置县级区划代码 COUNTY_CODE（或使用 --county）")
    try:
        jurisdiction().validate(county)
    except ValidationFailed as exc:
        raise ValueError(f"COUNTY_CODE 无效：{exc.message}") from None
    return county


def progress_interval(config: Mapping) -> float:
    """Seconds between two checks of the campaign counts (PROGRESS_INTERVAL_S, default 10)."""
    value = float(config.get("PROGRESS_INTERVAL_S") or 10)
    if not 0.1 <= value <= 3600:
        raise ValueError("PROGRESS_INTERVAL_S must be between 0.1 and 3600 seconds")
    return value
