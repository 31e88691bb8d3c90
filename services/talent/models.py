"""The talent service's declarative base; each area keeps its tables in its own
`models.py` (training/, pool/, draws/, experiences/)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase

BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


class TalentBase(DeclarativeBase):
    pass
